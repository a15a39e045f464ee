"""The explained rows the dashboard draws, and every view of them as a bounded payload."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from scoring.core.explanation import Explanation
from scoring.core.plain import plain
from scoring.model.schema import InputError

# every payload is bounded whatever the number of explained rows: points are a uniform
# sample (one fixed random order of the rows, so every view shows the same rows)
# defaults: few enough points that the browser draws each view as SVG without a visible
# wait, since SVG drawing time grows with the points; more are drawn only when asked for
DEFAULT_MAX_POINTS = 1_000
MAX_POINTS = 20_000
DEFAULT_SUMMARY_POINTS = 150  # per feature, in the summary (beeswarm) view
MAX_SUMMARY_POINTS = 2_000
DEFAULT_TOP_K = 10
DEFAULT_GRID_POINTS = 25
MAX_GRID_POINTS = 200
# axes of the scatter views: the explained model output, a feature's value, its importance
OUTPUT_AXIS = "output"
PREDICTED_AXIS = "predicted"  # the class of largest output (classifiers)
VALUE_PREFIX = "value:"
IMPORTANCE_PREFIX = "importance:"


class DashboardData:
    """Explained rows (an :class:`Explanation` with local values and its rows) ready to be
    drawn: columns by feature, the explained model output per row rebuilt from the values
    (``values.sum(-1) + expected_values``, exact for every scoring explainer), global
    importances per output, one fixed random order of the rows for sampling.

    ``kinds`` (``"numeric"`` / ``"categorical"`` per feature) and ``categories`` come from
    the bundle's input schema when the explanation is per raw column; otherwise a column is
    numeric when all its values are numbers. ``source`` says where the rows came from;
    ``engineered`` whether the service can explain a row per engineered column too.
    """

    def __init__(self, explanation: Explanation, *, kinds: Sequence[str] | None = None,
                 categories: dict[str, list] | None = None, source: str = "",
                 engineered: bool = False, random_state: int = 0) -> None:
        if not explanation.has_local or explanation.data is None:
            raise ValueError("the dashboard needs an explanation with local values and the "
                             "explained rows (data)")
        values = explanation.local_importance_values
        self.values = values if values.ndim == 3 else values[None]
        self.expected = np.atleast_1d(np.asarray(explanation.expected_values, dtype=float))
        self.outputs = self.values.sum(-1).T + self.expected
        self.features = list(explanation.features)
        self.output_names = ["prediction"] if explanation.classes is None else [
            str(c) for c in explanation.classes]
        self.explanation = explanation
        self.source = source
        self.engineered = engineered
        data = np.asarray(explanation.data, dtype=object)
        categories = categories or {}
        self.kinds: list[str] = []
        self.columns: list[np.ndarray] = []
        self.categories: dict[str, list] = {}
        for j, name in enumerate(self.features):
            column, kind = _column(data[:, j], None if kinds is None else kinds[j])
            self.kinds.append(kind)
            self.columns.append(column)
            if kind == "categorical":
                seen = sorted({v for v in column if v is not None}, key=str)
                self.categories[name] = plain(categories.get(name) or seen)
        self._ranges = [(np.nanmin(c), np.nanmax(c)) if k == "numeric" else (0.0, 0.0)
                        for c, k in zip(self.columns, self.kinds, strict=True)]
        self.order = np.random.default_rng(random_state).permutation(self.n_rows)
        self.importance = np.abs(self.values).mean(axis=1)  # (n_outputs, n_features)

    @property
    def n_rows(self) -> int:
        return int(self.values.shape[1])

    # -- views -------------------------------------------------------------------------
    def summary(self) -> dict:
        """What the page needs first: features (kind, range or categories), outputs,
        expected values, the number of rows and the payload limits; ``first_row``, the
        first of the sampled rows every view draws (where the local views start), and
        ``engineered`` (whether the page offers the per-engineered-column view)."""
        features = []
        for name, kind, (low, high) in zip(self.features, self.kinds, self._ranges,
                                           strict=True):
            entry: dict[str, Any] = {"name": name, "kind": kind}
            if kind == "numeric":
                entry.update(min=_finite_or_none(low), max=_finite_or_none(high))
            else:
                entry["categories"] = self.categories[name]
            features.append(entry)
        e = self.explanation
        return plain({"n_rows": self.n_rows, "features": features,
                      "outputs": self.output_names, "is_classification": e.is_classification,
                      "expected_values": self.expected, "method": e.method,
                      "model_output": e.model_output, "raw": e.raw, "source": self.source,
                      "first_row": int(self.order[0]), "engineered": self.engineered,
                      "limits": {"max_points": MAX_POINTS, "default_max_points":
                                 DEFAULT_MAX_POINTS, "max_summary_points": MAX_SUMMARY_POINTS,
                                 "max_grid_points": MAX_GRID_POINTS}}, finite=True)

    def global_importance(self, output: int | None = None,
                          top_k: int | None = DEFAULT_TOP_K) -> dict:
        """Mean absolute importance per feature, largest first: of one output (a class's
        index) or, ``None``, over all outputs; the first ``top_k``."""
        importance = self._importance(output)
        order = np.argsort(-importance, kind="stable")[:self._top_k(top_k)]
        return {"features": [self.features[j] for j in order],
                "values": plain(importance[order], finite=True),
                "output": None if output is None else self.output_names[output],
                "n_rows": self.n_rows}

    def points(self, x: str, y: str, color: str | None = None, output: int = 0,
               max_points: int | None = DEFAULT_MAX_POINTS) -> dict:
        """A uniform sample of at most ``max_points`` rows as ``x``, ``y`` (and ``color``)
        coordinates; each axis is ``"output"`` (the model output of class ``output``),
        ``"predicted"`` (the class of largest output), ``"value:FEATURE"`` or
        ``"importance:FEATURE"`` (for class ``output``). ``rows`` are the rows' positions,
        for :meth:`row`."""
        index = self._sample(_bounded(max_points, MAX_POINTS, "max_points",
                                      reason="bad_max_points"))
        out = {"rows": index.tolist(), "n_rows": self.n_rows, "n_shown": len(index)}
        for field, spec in (("x", x), ("y", y), ("color", color)):
            if spec is None:
                continue
            label, values = self._axis(spec, field, self._output(output))
            out[field] = _plain_column(values[index])
            out[f"{field}_label"] = label
        return out

    def summary_points(self, output: int | None = 0, top_k: int | None = DEFAULT_TOP_K,
                       max_points: int | None = DEFAULT_SUMMARY_POINTS) -> dict:
        """shap's summary plot: for the ``top_k`` most important features, the importances
        of a uniform sample of rows and each row's feature value scaled to [0, 1] (its
        colour; ``None`` when missing; categories by their rank)."""
        output = self._output(output)
        n = _bounded(max_points, MAX_SUMMARY_POINTS, "max_points", reason="bad_max_points")
        index = self._sample(n)
        top = np.argsort(-self.importance[output], kind="stable")[:self._top_k(top_k)]
        return {"features": [self.features[j] for j in top],
                "rows": index.tolist(),
                "importances": [plain(self.values[output, index, j], finite=True)
                                for j in top],
                "colors": [_plain_column(self._scaled(j, index)) for j in top],
                "output": self.output_names[output], "n_rows": self.n_rows}

    def row(self, row: int) -> dict:
        """One explained row: its values by feature, its importances and model output per
        output, the expected values."""
        if not isinstance(row, (int, np.integer)) or not 0 <= row < self.n_rows:
            raise InputError(f"row must be an integer from 0 to {self.n_rows - 1}, got "
                             f"{row!r}", reason="bad_row", field="row")
        return plain({"row": int(row),
                      "values": {name: column[row] for name, column in
                                 zip(self.features, self.columns, strict=True)},
                      "features": self.features, "outputs": self.output_names,
                      "importances": self.values[:, row, :],
                      "model_output": self.outputs[row], "expected_values": self.expected},
                     finite=True)

    def feature_grid(self, feature: str, n_points: int | None = DEFAULT_GRID_POINTS) -> list:
        """The values an ICE curve visits: ``n_points`` evenly spaced from the feature's
        smallest to its largest value in these rows (integers when the column holds only
        integers), or every category."""
        j = self.feature_index(feature)
        n = _bounded(n_points, MAX_GRID_POINTS, "n_points", reason="bad_n_points")
        if self.kinds[j] == "categorical":
            return list(self.categories[feature])
        column = self.columns[j]
        finite = column[np.isfinite(column)]
        if finite.size == 0:
            raise InputError(f"feature {feature!r} has no value to vary", reason="bad_feature",
                             field="feature")
        grid = np.linspace(finite.min(), finite.max(), max(n, 2))
        if np.all(finite == np.round(finite)):
            grid = np.unique(np.round(grid))
        return grid.tolist()

    def feature_index(self, feature: str) -> int:
        try:
            return self.features.index(feature)
        except ValueError:
            raise InputError(f"unknown feature {feature!r}; features are {self.features}",
                             reason="bad_feature", field="feature") from None

    # -- steps -------------------------------------------------------------------------
    def _sample(self, n: int) -> np.ndarray:
        return self.order[:n]

    def _importance(self, output: int | None) -> np.ndarray:
        if output is None:
            return self.importance.mean(axis=0)
        return self.importance[self._output(output)]

    def _output(self, output: int | None) -> int:
        if output is None:
            return 0
        if isinstance(output, bool) or not isinstance(output, (int, np.integer)) or not (
                0 <= output < len(self.output_names)):
            raise InputError(f"output must be an integer from 0 to {len(self.output_names) - 1}"
                             f" (one of {self.output_names}), got {output!r}",
                             reason="bad_output", field="output")
        return int(output)

    def _top_k(self, top_k: int | None) -> int:
        if top_k is None:
            return len(self.features)
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise InputError(f"top_k must be a positive integer, got {top_k!r}",
                             reason="bad_top_k", field="top_k")
        return int(top_k)

    def _axis(self, spec: str, field: str, output: int) -> tuple[str, np.ndarray]:
        if spec == OUTPUT_AXIS:
            return f"model output ({self.output_names[output]})", self.outputs[:, output]
        if spec == PREDICTED_AXIS and len(self.output_names) > 1:
            names = np.asarray(self.output_names, dtype=object)
            return "predicted class", names[np.argmax(self.outputs, axis=1)]
        for prefix in (VALUE_PREFIX, IMPORTANCE_PREFIX):
            if spec.startswith(prefix) and spec[len(prefix):] in self.features:
                j = self.features.index(spec[len(prefix):])
                if prefix == VALUE_PREFIX:
                    return self.features[j], self.columns[j]
                return f"importance of {self.features[j]}", self.values[output, :, j]
        raise InputError(f"{field} must be 'output', 'predicted' (classifiers), "
                         f"'value:FEATURE' or 'importance:FEATURE' with a feature of "
                         f"{self.features}, got {spec!r}",
                         reason="bad_axis", field=field)

    def _scaled(self, j: int, index: np.ndarray) -> np.ndarray:
        """Feature ``j``'s values at rows ``index`` scaled to [0, 1] over all rows."""
        column = self.columns[j]
        if self.kinds[j] == "categorical":
            rank = {c: i for i, c in enumerate(self.categories[self.features[j]])}
            codes = np.array([rank.get(v, np.nan) if v is not None else np.nan
                              for v in column[index]], dtype=float)
            return codes / max(len(rank) - 1, 1)
        low, high = self._ranges[j]
        values = column[index]
        return (values - low) / (high - low) if high > low else np.zeros_like(values)


def _column(values: np.ndarray, kind: str | None) -> tuple[np.ndarray, str]:
    """A feature's values as floats (numeric, NaN when missing) or as objects (categorical,
    ``None`` when missing)."""
    if kind != "categorical":
        numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
        given = pd.notna(pd.Series(values)).to_numpy()
        if kind == "numeric" or not np.any(given & np.isnan(numbers)):
            return numbers, "numeric"
    missing = pd.isna(pd.Series(values)).to_numpy()
    column = values.astype(object).copy()
    column[missing] = None
    return column, "categorical"


def _plain_column(values: np.ndarray) -> list:
    if values.dtype == object:
        return [None if v is None else plain(v) for v in values]
    return plain(values, finite=True)


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _bounded(n: int | None, limit: int, field: str, *, reason: str) -> int:
    """``n`` rows or points, at most ``limit`` (``None``: the limit)."""
    if n is None:
        return limit
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= limit:
        raise InputError(f"{field} must be an integer from 1 to {limit}, got {n!r}",
                         reason=reason, field=field)
    return int(n)
