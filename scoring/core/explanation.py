"""The one explanation type that flows from the explainers to the HTTP response."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from scoring.core.bounded_json import check_depth, parse_json
from scoring.core.plain import plain

FORMAT = "scoring.Explanation"
FORMAT_VERSION = 1
# the one entry of ``extra`` holding values per feature (last axis): a global explanation's
# mean share of each feature in a row's attribution, the reference of the service's
# attribution monitoring (scoring.monitoring.attribution computes it)
REFERENCE_KEY = "mean_row_shares"


class Explanation:
    """Feature importances of a model: local (per row), global, or both.

    Array layout (the same as interpret-community's):

    - ``local_importance_values``: ``(n_rows, n_features)`` for regression,
      ``(n_classes, n_rows, n_features)`` for classification (one set per class,
      binary classification included).
    - ``expected_values``: a float for regression, ``(n_classes,)`` for classification.
      For additive methods ``local.sum(-1) + expected_values`` equals the model output.
    - ``global_importance_values``: ``(n_features,)``. Given explicitly (PFI, surrogate
      models) or derived from local values as the mean absolute value over rows and classes.

    Parameters
    ----------
    features : feature names, length ``n_features``.
    local_importance_values, expected_values, global_importance_values : see above.
    classes : class names for classification, ``None`` for regression.
    data : the explained rows ``(n_rows, n_features)`` in the explained feature space, optional.
    method : short name of the method that produced the values (``"kernel"``, ``"tree"``...).
    model_output : which model output is explained (``"predict_proba"``, ``"predict"``,
        ``"decision_function"``).
    raw : whether ``features`` are raw (pre-transformation) or engineered features.
    """

    def __init__(
        self,
        features: Sequence[str],
        *,
        local_importance_values: Any = None,
        expected_values: Any = None,
        global_importance_values: Any = None,
        classes: Sequence[Any] | None = None,
        data: Any = None,
        method: str = "",
        model_output: str = "",
        raw: bool = False,
        extra: dict | None = None,
    ) -> None:
        self.features = [str(f) for f in features]
        self.classes = None if classes is None else plain(list(classes))
        self.method = method
        self.model_output = model_output
        self.raw = bool(raw)
        self.extra = dict(extra or {})
        self.data = None if data is None else np.asarray(data)
        n_features = len(self.features)

        if local_importance_values is not None:
            local = np.asarray(local_importance_values, dtype=float)
            expected_ndim = 2 if self.classes is None else 3
            if local.ndim != expected_ndim or local.shape[-1] != n_features:
                layout = "(n_rows, n_features)" if self.classes is None else \
                    "(n_classes, n_rows, n_features)"
                raise ValueError(
                    f"local_importance_values has shape {local.shape}; expected {layout} "
                    f"with n_features={n_features}"
                    + ("" if self.classes is None else f" and n_classes={len(self.classes)}")
                )
            if self.classes is not None and local.shape[0] != len(self.classes):
                raise ValueError(
                    f"local_importance_values has {local.shape[0]} classes, "
                    f"classes has {len(self.classes)}"
                )
            self.local_importance_values = local
        else:
            self.local_importance_values = None

        if expected_values is not None:
            ev = np.asarray(expected_values, dtype=float)
            self.expected_values = float(ev.reshape(-1)[0]) if self.classes is None else ev
        else:
            self.expected_values = None

        if global_importance_values is not None:
            glob = np.asarray(global_importance_values, dtype=float).reshape(-1)
            if glob.shape[0] != n_features:
                raise ValueError(
                    f"global_importance_values has {glob.shape[0]} values for "
                    f"{n_features} features"
                )
            self._global = glob
        elif self.local_importance_values is not None:
            self._global = None  # derived from the local values when first read
        else:
            raise ValueError("an Explanation needs local or global importance values")

    @property
    def global_importance_values(self) -> np.ndarray:
        """``(n_features,)``: as given, or the mean absolute local value over rows and
        classes (computed when first read: the request path never reads it)."""
        if self._global is None:
            absolute = np.abs(self.local_importance_values)
            self._global = absolute.mean(axis=(0,) if absolute.ndim == 2 else (0, 1))
        return self._global

    # -- shape facts -------------------------------------------------------------------
    @property
    def is_classification(self) -> bool:
        return self.classes is not None

    @property
    def has_local(self) -> bool:
        return self.local_importance_values is not None

    @property
    def num_examples(self) -> int:
        self._require_local("num_examples")
        return int(self.local_importance_values.shape[-2])

    # -- global getters (the seed's names) ---------------------------------------------
    def _global_order(self) -> np.ndarray:
        # stable sort so ties keep the feature order: deterministic rankings
        return np.argsort(-self.global_importance_values, kind="stable")

    def get_ranked_global_values(self) -> list[float]:
        """Global importances, largest first."""
        return self.global_importance_values[self._global_order()].tolist()

    def get_ranked_global_names(self) -> list[str]:
        """Feature names ordered by global importance, largest first."""
        return [self.features[i] for i in self._global_order()]

    def get_feature_importance_dict(self, top_k: int | None = None) -> dict[str, float]:
        """``{feature: global importance}`` ordered by importance; only the first ``top_k``."""
        top_k = check_top_k(top_k, len(self.features))
        names = self.get_ranked_global_names()[:top_k]
        values = self.get_ranked_global_values()[:top_k]
        return dict(zip(names, values, strict=True))

    # -- local getters -----------------------------------------------------------------
    def _require_local(self, what: str) -> None:
        if self.local_importance_values is None:
            raise ValueError(
                f"{what} needs local importance values, but this explanation is global only "
                f"(method {self.method!r}); use explain_local on an explainer that supports it"
            )

    def ranked_local(self, top_k: int | None = None) -> tuple[list, list]:
        """``(names, values)`` per row ranked by absolute local importance, from one sort:
        ``[n_rows][k]`` for regression, ``[n_classes][n_rows][k]`` for classification,
        ``k`` the first ``top_k`` features (all by default)."""
        self._require_local("ranked_local")
        top_k = check_top_k(top_k, len(self.features))
        values = self.local_importance_values
        order = np.argsort(-np.abs(values), axis=-1, kind="stable")[..., :top_k]
        names = np.asarray(self.features, dtype=object)[order]
        return names.tolist(), np.take_along_axis(values, order, axis=-1).tolist()

    def get_ranked_local_names(self, top_k: int | None = None) -> list:
        """Feature names per row ranked by absolute local importance.

        ``[n_rows][n_features]`` for regression, ``[n_classes][n_rows][n_features]`` for
        classification; only the first ``top_k`` names per row when given.
        """
        return self.ranked_local(top_k)[0]

    def get_ranked_local_values(self, top_k: int | None = None) -> list:
        """Local importances per row, in the order of :meth:`get_ranked_local_names`."""
        return self.ranked_local(top_k)[1]

    # -- conversions -------------------------------------------------------------------
    def to_dict(self, top_k: int | None = None) -> dict:
        """Plain JSON-compatible dict. With ``top_k`` only the top global features are kept
        (as the seed's ``upload_model_explanation(top_k=...)``)."""
        if top_k is not None:
            return self.select_features(self.get_ranked_global_names()[: check_top_k(
                top_k, len(self.features))]).to_dict()
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "features": self.features,
            "classes": self.classes,
            "method": self.method,
            "model_output": self.model_output,
            "raw": self.raw,
            "expected_values": plain(self.expected_values),
            "local_importance_values": plain(self.local_importance_values),
            "global_importance_values": plain(self.global_importance_values),
            "data": plain(self.data),
            "extra": self.extra,
        }

    def to_json(self, top_k: int | None = None) -> str:
        """JSON text; ``Explanation.from_json(e.to_json())`` gives back an equal explanation
        (floats are written with full precision)."""
        return json.dumps(self.to_dict(top_k=top_k), allow_nan=True)

    @classmethod
    def from_dict(cls, payload: dict) -> Explanation:
        """An explanation read back from :meth:`to_dict`'s output, which may come from a
        file or another process: ``ValueError`` naming what is wrong when values are not
        finite numbers, shapes disagree with the feature and class names, or a field has
        the wrong type."""
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ValueError(f"not a serialised {FORMAT}: missing or wrong 'format' field")
        if payload.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"explanation format version {payload.get('format_version')} is not supported "
                f"(this library reads version {FORMAT_VERSION})"
            )
        check_depth(payload)
        fields = _checked_fields(payload)
        try:
            return cls(**fields)
        except TypeError as exc:
            raise ValueError(f"not a valid {FORMAT}: {exc}") from None

    @classmethod
    def from_json(cls, text: str) -> Explanation:
        """:meth:`from_dict` of JSON text (``ValueError`` for invalid JSON too)."""
        return cls.from_dict(parse_json(text))

    def select_features(self, names: Sequence[str]) -> Explanation:
        """A copy restricted to the given features (in that order)."""
        index = [self._feature_index(n) for n in names]
        extra = dict(self.extra)
        if REFERENCE_KEY in extra:  # per feature: keep the selected ones
            extra[REFERENCE_KEY] = np.asarray(extra[REFERENCE_KEY])[..., index].tolist()
        return Explanation(
            [self.features[i] for i in index],
            local_importance_values=None if self.local_importance_values is None
            else self.local_importance_values[..., index],
            expected_values=self.expected_values,
            global_importance_values=self.global_importance_values[index],
            classes=self.classes,
            data=None if self.data is None else self.data[:, index],
            method=self.method,
            model_output=self.model_output,
            raw=self.raw,
            extra=extra,
        )

    def without_local(self) -> Explanation:
        """The global explanation alone (local values and rows dropped); ``extra`` records
        how many rows it summarises as ``n_rows``."""
        extra = dict(self.extra)
        if self.has_local:
            extra["n_rows"] = self.num_examples
        return Explanation(self.features, global_importance_values=self.global_importance_values,
                           expected_values=self.expected_values, classes=self.classes,
                           method=self.method, model_output=self.model_output, raw=self.raw,
                           extra=extra)

    def _feature_index(self, name: str) -> int:
        try:
            return self.features.index(name)
        except ValueError:
            raise KeyError(f"unknown feature {name!r}; features are {self.features}") from None

    def to_shap(self, class_index: int | None = None):
        """Convert to ``shap.Explanation`` so shap's plots work.

        shap's layout is ``(n_rows, n_features)`` or ``(n_rows, n_features, n_classes)``;
        pass ``class_index`` to get the 2-D explanation of one class (what most plots need).
        """
        import shap

        self._require_local("to_shap")
        values = self.local_importance_values
        base = self.expected_values
        if self.is_classification:
            if class_index is None:
                values = np.transpose(values, (1, 2, 0))
                base = np.tile(np.asarray(base, dtype=float), (values.shape[0], 1))
            else:
                values = values[class_index]
                base = np.full(values.shape[0], float(np.asarray(base)[class_index]))
        else:
            base = np.full(values.shape[0], float(base))
        data = self.data
        if data is not None and data.dtype == object:
            data = None  # shap's plots need numbers; categorical raw rows are left out
        return shap.Explanation(
            values=values,
            base_values=base,
            data=data,
            feature_names=list(self.features),
            output_names=None if self.classes is None or class_index is not None
            else [str(c) for c in self.classes],
        )

    @classmethod
    def from_shap(cls, explanation, classes: Sequence[Any] | None = None,
                  method: str = "shap", model_output: str = "") -> Explanation:
        """Build from a ``shap.Explanation`` (2-D for one output, 3-D with classes last)."""
        values = np.asarray(explanation.values, dtype=float)
        base = np.asarray(explanation.base_values, dtype=float)
        names = explanation.feature_names
        if names is None:
            names = [f"x{i}" for i in range(values.shape[1])]
        if values.ndim == 3:
            local = np.transpose(values, (2, 0, 1))
            expected = base.reshape(values.shape[0], -1)[0]
            if classes is None:
                classes = explanation.output_names or list(range(values.shape[2]))
        else:
            local = values
            expected = float(base.reshape(-1)[0])
            classes = None
        return cls(names, local_importance_values=local, expected_values=expected,
                   classes=classes, data=explanation.data, method=method,
                   model_output=model_output)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Explanation):
            return NotImplemented
        return _json_equal(self.to_dict(), other.to_dict())

    __hash__ = None  # mutable arrays inside

    def __repr__(self) -> str:
        kind = "local" if self.has_local else "global"
        rows = f", n_rows={self.num_examples}" if self.has_local else ""
        classes = "" if self.classes is None else f", classes={self.classes}"
        return (f"Explanation({kind}, method={self.method!r}, n_features="
                f"{len(self.features)}{rows}{classes}, raw={self.raw})")


def check_top_k(top_k: Any, n_features: int) -> int:
    """The one ``top_k`` rule: ``None`` (every feature) or a positive integer, capped at
    ``n_features``; ``ValueError`` otherwise."""
    if top_k is None:
        return n_features
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
    return int(min(top_k, n_features))


def _checked_fields(payload: dict) -> dict:
    """The keyword arguments of :class:`Explanation` from a serialised one, each checked."""
    features = payload.get("features")
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise ValueError("'features' must be a list of feature names (strings)")
    classes = payload.get("classes")
    if classes is not None and not (isinstance(classes, list) and all(
            isinstance(c, (str, int)) for c in classes)):
        raise ValueError("'classes' must be null or a list of class names")
    for name in ("method", "model_output"):
        if not isinstance(payload.get(name, ""), str):
            raise ValueError(f"{name!r} must be a string")
    if not isinstance(payload.get("raw", False), bool):
        raise ValueError("'raw' must be true or false")
    extra = payload.get("extra") or {}
    if not isinstance(extra, dict) or not _finite_json(extra):
        raise ValueError("'extra' must be an object without NaN or infinite numbers")
    local = _finite("local_importance_values", payload.get("local_importance_values"))
    glob = _finite("global_importance_values", payload.get("global_importance_values"))
    expected = _finite("expected_values", payload.get("expected_values"))
    n_outputs = 1 if classes is None else len(classes)
    if glob is not None and glob.shape != (len(features),):
        raise ValueError(f"global_importance_values has shape {glob.shape}; expected "
                         f"({len(features)},), one per feature")
    if expected is not None and expected.size != n_outputs:
        raise ValueError(f"expected_values has {expected.size} values for {n_outputs} "
                         "output(s)")
    if REFERENCE_KEY in extra:
        shares = _finite(f"extra[{REFERENCE_KEY!r}]", extra[REFERENCE_KEY])
        if shares.shape not in ((len(features),), (n_outputs, len(features))):
            raise ValueError(f"extra[{REFERENCE_KEY!r}] has shape {shares.shape}; expected "
                             f"({len(features)},) or ({n_outputs}, {len(features)})")
    data = payload.get("data")
    if data is not None:
        data = _rows(data, len(features), None if local is None else local.shape[-2])
    return {"features": features, "local_importance_values": local,
            "expected_values": expected, "global_importance_values": glob,
            "classes": classes, "data": data, "method": payload.get("method", ""),
            "model_output": payload.get("model_output", ""),
            "raw": payload.get("raw", False), "extra": extra}


def _finite(name: str, values: Any) -> np.ndarray | None:
    """``values`` as a float array, ``None`` for ``None``; ``ValueError`` naming ``name``
    for anything but finite numbers in a regular nested list."""
    if values is None:
        return None
    try:
        array = np.asarray(values)
    except ValueError:
        raise ValueError(f"{name} is not a regular array of numbers (ragged lists)") from None
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold numbers only")
    array = array.astype(float)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return array


def _rows(values: Any, n_features: int, n_rows: int | None) -> np.ndarray:
    """The explained rows: ``(n_rows, n_features)`` of numbers (NaN: missing), strings,
    booleans and nulls."""
    try:
        rows = _array(values)
    except ValueError:
        raise ValueError("data is not a regular table of rows (ragged lists)") from None
    if rows.ndim != 2 or rows.shape[1] != n_features or (
            n_rows is not None and rows.shape[0] != n_rows):
        expected = "n_rows" if n_rows is None else n_rows
        raise ValueError(f"data has shape {rows.shape}; expected ({expected}, {n_features}): "
                         "one row per explained row, one column per feature")
    if rows.dtype == object and not all(
            v is None or isinstance(v, (str, bool, int, float)) for v in rows.ravel()):
        raise ValueError("data must hold numbers, strings, booleans or nulls")
    return rows


def _finite_json(value: Any) -> bool:
    """Whether ``value`` (already bounded in depth) holds no NaN or infinite number."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return False
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return True


def _array(values: Any) -> np.ndarray:
    """Numbers as floats; rows holding strings (raw categorical data) as objects."""
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return np.asarray(values, dtype=object)


def _json_equal(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
