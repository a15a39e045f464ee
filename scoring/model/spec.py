"""What a model takes and gives, read once from its training rows: the input schema, the
transformations, the explained output, the class names and the output layout."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from scoring.core.codec import decode, encode
from scoring.core.plain import plain
from scoring.model.boosters import booster_library
from scoring.model.function import ModelFunction, check_model, model_fingerprint
from scoring.model.layout import OutputLayout
from scoring.model.rows import dense, n_rows, take_rows
from scoring.model.schema import InputSchema
from scoring.model.transformations import RawFeatureMap

_N_PROBE_ROWS = 5


class ModelSpec:
    """The one place that turns user rows into model input and model output into the
    public layout. Explainers, bundles and the service share it.

    Build it with :meth:`from_training_rows`. Request path: :meth:`validate` (user rows ->
    checked raw rows), :meth:`transform` (raw rows -> what the model takes), then
    :meth:`outputs` (the explained output) or :meth:`predict`.

    Attributes
    ----------
    schema : :class:`~scoring.InputSchema` of the raw rows.
    raw_map : :class:`~scoring.RawFeatureMap`, or ``None`` without transformations.
    function : :class:`~scoring.model.function.ModelFunction`, the explained output.
    layout : :class:`~scoring.model.layout.OutputLayout`.
    classes, raw_features, engineered_features : names.
    fingerprint : sha256 of the model's pickle at build time.
    probe_rows, probe_outputs : a few training rows and the model's outputs on them, to
        check later that a model object is the one this spec describes (:meth:`verify`).
    """

    def __init__(self, schema: InputSchema, raw_map: RawFeatureMap | None,
                 function: ModelFunction, classes: list | None, probe_rows: Any,
                 split_pipeline: bool = False) -> None:
        self.schema = schema
        self.split_pipeline = split_pipeline
        self.raw_map = raw_map
        self.function = function
        self.classes = classes
        self._derive_layout()
        self.fingerprint = model_fingerprint(function.model)
        self.probe_rows = probe_rows
        self.probe_outputs = self.outputs(self.transform(probe_rows))

    def _derive_layout(self) -> None:
        """Column names and the output layout, from the schema, map, output and classes."""
        self.raw_features = list(self.schema.columns)
        self.engineered_features = (self.raw_map.engineered_features
                                    if self.raw_map is not None else list(self.raw_features))
        self.layout = OutputLayout(self.classes, self.function.output,
                                   None if self.raw_map is None else self.raw_map.matrix,
                                   self.raw_features, self.engineered_features)

    @classmethod
    def from_training_rows(cls, model: Any, X: Any, *, features: Any = None,
                           classes: Any = None, transformations: Any = None,
                           model_output: str | None = None) -> tuple[ModelSpec, Any]:
        """The spec of ``model`` read from its training rows ``X``, and ``X`` validated.

        ``model`` takes the rows as given (a whole ``Pipeline`` may take raw DataFrames),
        or, with ``transformations`` (a fitted ``ColumnTransformer`` or a list of
        ``(columns, transformer)`` tuples, see :class:`~scoring.RawFeatureMap`), the
        transformed rows. ``features`` names the columns of ``X``; ``classes`` names the
        classes in the order of ``model.classes_``; ``model_output`` is
        ``"predict_proba"``, ``"predict"`` or ``"decision_function"``.

        A ``Pipeline`` whose steps before the last are one ``ColumnTransformer`` with
        one-to-many transformers (imputers, scalers, one-hot encoders...) is split there, as
        if ``transformations`` had been given: its estimator is explained on the transformed
        rows (the transformations run once per request) and values map back to the raw
        columns. Other pipelines are explained as black boxes on the raw rows.
        """
        check_model(model)
        if X is None or n_rows(X) == 0:
            raise ValueError("initialization_examples is empty; pass the training rows "
                             "(at least 2) the explainer summarises as background")
        features = None if features is None else [str(f) for f in features]
        split = _split_map(model, X) if transformations is None else None
        if split is not None:
            raw_map, model = split
        elif transformations is not None:
            raw_map = RawFeatureMap(transformations, X)
        else:
            raw_map = None
        function = ModelFunction(model, model_output)
        if raw_map is None:
            _refuse_native_categories(model, X)
        if raw_map is not None:
            if features is not None and features != raw_map.raw_features:
                raise ValueError(f"features {features} do not match the raw columns of "
                                 f"initialization_examples {raw_map.raw_features}")
            schema = InputSchema.from_data(X)
        else:
            schema = InputSchema.from_data(X, features)
        schema.allow_nan = True  # read the training rows as they are
        rows = schema.validate(X)
        if len(rows) < 2:
            raise ValueError(f"initialization_examples has {len(rows)} row(s); at least 2 are "
                             "needed to form a background")
        transform = raw_map.transform if raw_map is not None else (lambda r: r)
        schema.allow_nan = accepts_nan(function, transform, schema, rows)
        if not schema.allow_nan:
            schema.validate(rows)  # InputError naming the row with a missing value
        names = _resolve_classes(model, function.output,
                                 None if classes is None else list(classes))
        return cls(schema, raw_map, function, names, take_rows(rows, slice(0, _N_PROBE_ROWS)),
                   split_pipeline=split is not None), rows

    # -- request path ------------------------------------------------------------------
    def validate(self, data: Any, unseen: list | None = None) -> Any:
        """Check user rows against the training schema (raises ``InputError`` naming the
        row and field) and return them as raw rows (``unseen``: see
        :meth:`InputSchema.validate <scoring.model.schema.InputSchema.validate>`)."""
        return self.schema.validate(data, unseen)

    def transform(self, rows: Any) -> Any:
        """Validated raw rows -> what the model takes (the transformations applied)."""
        return rows if self.raw_map is None else self.raw_map.transform(rows)

    def outputs(self, X: Any) -> np.ndarray:
        """The explained model output for model-input rows, ``(n_rows, n_outputs)``."""
        return self.function(X)

    def predict(self, X: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """The model's predictions for model-input rows, and its probabilities (``None``
        without ``predict_proba``)."""
        model = self.function.model
        X = self.function.named(X)
        probabilities = model.predict_proba(X) if hasattr(model, "predict_proba") else None
        if probabilities is not None and _predicts_by_argmax(model):
            # what these estimators' own predict computes from predict_proba, without a
            # second pass through every tree
            return model.classes_.take(np.argmax(probabilities, axis=1), axis=0), probabilities
        return model.predict(X), probabilities

    @property
    def model(self) -> Any:
        """The model the rows are explained for (the final estimator with transformations)."""
        return self.function.model

    def verify(self, model: Any) -> None:
        """Raise ``ValueError`` unless ``model`` gives the outputs recorded on the probe
        rows when this spec was built (a split pipeline on the raw probe rows)."""
        rows = self.probe_rows if self.split_pipeline else self.transform(self.probe_rows)
        probe = ModelFunction(model, self.function.output)(rows)
        if probe.shape != self.probe_outputs.shape or not np.allclose(
                probe, self.probe_outputs, rtol=1e-7, atol=1e-10):
            raise ValueError(
                "this explainer was built for a different model: its outputs on the probe "
                "rows differ from the ones recorded at fit time (model fingerprint "
                f"{self.fingerprint[:12]})")

    # -- saved state (data only; the models live in a skops file) -----------------------
    def to_state(self, arrays: Any) -> dict:
        """The spec as JSON (arrays put in ``arrays``, see :mod:`scoring.artifacts.state`).
        The model objects are not in it: :meth:`models` gives them for the model file."""
        schema = self.schema
        return {
            "schema": {"columns": schema.columns, "kinds": schema.kinds,
                       "categories": encode(schema.categories, arrays, "schema.categories"),
                       "allow_nan": schema.allow_nan, "from_dataframe": schema.from_dataframe,
                       "dtypes": schema.dtypes},
            "raw_map": None if self.raw_map is None else self.raw_map.to_state(arrays),
            "output": self.function.output,
            "classes": encode(self.classes, arrays, "classes"),
            "fingerprint": self.fingerprint,
            "split_pipeline": self.split_pipeline,
            "probe_rows": encode(self.probe_rows, arrays, "probe_rows"),
            "probe_outputs": encode(self.probe_outputs, arrays, "probe_outputs"),
        }

    def models(self) -> dict:
        """The objects :meth:`from_state` needs back: the explained model and the
        transformations (stored in the skops model file)."""
        return {"explained_model": self.function.model,
                "transformations": None if self.raw_map is None else
                self.raw_map.transformations}

    @classmethod
    def from_state(cls, state: dict, arrays: Any, models: dict) -> ModelSpec:
        """The spec :meth:`to_state` saved, explaining ``models["explained_model"]``."""
        spec = cls.__new__(cls)
        s = state["schema"]
        spec.schema = InputSchema(list(s["columns"]), list(s["kinds"]),
                                  decode(s["categories"], arrays), allow_nan=bool(s["allow_nan"]),
                                  from_dataframe=bool(s["from_dataframe"]),
                                  dtypes=dict(s["dtypes"]))
        spec.split_pipeline = bool(state["split_pipeline"])
        spec.probe_rows = decode(state["probe_rows"], arrays)
        spec.raw_map = None if state["raw_map"] is None else RawFeatureMap.from_state(
            state["raw_map"], arrays, models.get("transformations"), spec.probe_rows)
        spec.function = ModelFunction(models["explained_model"], state["output"])
        spec.classes = decode(state["classes"], arrays)
        spec._derive_layout()
        spec.fingerprint = str(state["fingerprint"])
        spec.probe_outputs = decode(state["probe_outputs"], arrays)
        return spec

    def bind(self, model: Any) -> None:
        """Explain with ``model`` from now on (say, the copy a bundle loaded) once
        :meth:`verify` accepts it."""
        self.verify(model)
        if self.split_pipeline:
            column_transformer, model = split_pipeline(model)
            self.raw_map.bind(column_transformer, self.probe_rows)
        self.function = ModelFunction(model, self.function.output)


def _predicts_by_argmax(model: Any) -> bool:
    """Single-output classifiers whose ``predict`` is ``classes_[argmax(predict_proba)]``
    in their library's own code (scikit-learn's forests, histogram boosting, decision
    trees and calibrated classifiers; XGBoost's, LightGBM's and CatBoost's classifiers)."""
    if booster_library(model) is not None:
        return np.size(getattr(model, "classes_", [])) > 0
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.tree import DecisionTreeClassifier

    return isinstance(model, (RandomForestClassifier, ExtraTreesClassifier,
                              HistGradientBoostingClassifier, DecisionTreeClassifier,
                              CalibratedClassifierCV)) and getattr(model, "n_outputs_", 1) == 1


def split_pipeline(model: Any) -> tuple[ColumnTransformer, Any] | None:
    """``(column_transformer, estimator)`` of a ``Pipeline`` whose steps before the last
    are one ``ColumnTransformer`` (``None`` or ``"passthrough"`` steps aside), else
    ``None``."""
    if not isinstance(model, Pipeline) or len(model.steps) < 2:
        return None
    before = [step for _, step in model.steps[:-1] if step not in (None, "passthrough")]
    if len(before) != 1 or not isinstance(before[0], ColumnTransformer):
        return None
    return before[0], model.steps[-1][1]


def final_estimator(model: Any, X: Any) -> Any:
    """What a spec of ``model`` read from training rows ``X`` explains: the estimator of a
    pipeline it splits, else ``model`` itself."""
    split = _split_map(model, X)
    return model if split is None else split[1]


def _split_map(model: Any, X: Any) -> tuple[RawFeatureMap, Any] | None:
    """``(raw_map, estimator)`` of a pipeline :func:`split_pipeline` splits whose
    transformer maps each engineered column to one raw column of the DataFrame ``X``;
    ``None`` otherwise (the pipeline is then explained as a black box)."""
    split = split_pipeline(model) if isinstance(X, pd.DataFrame) else None
    if split is None:
        return None
    try:
        return RawFeatureMap(split[0], X), split[1]
    except (ValueError, TypeError):
        return None


def _refuse_native_categories(model: Any, X: Any) -> None:
    """An XGBoost, LightGBM or CatBoost model fed pandas ``category`` columns as they are:
    rows sent as JSON arrive as strings and the explainers work on numbers, so say what
    to do before any work."""
    if booster_library(model) is None or not isinstance(X, pd.DataFrame):
        return
    native = [str(c) for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    if native:
        raise TypeError(
            f"{type(model).__name__} takes the pandas 'category' column(s) {native[:5]} as "
            "they are (native categorical splits), which cannot be explained here: encode "
            "them in a Pipeline in front of it instead, e.g. ColumnTransformer([('cat', "
            "OneHotEncoder(handle_unknown='ignore'), columns), ...], remainder="
            "'passthrough'), and distill the Pipeline")


def _resolve_classes(model: Any, output: str, classes: list | None) -> list | None:
    model_classes = getattr(model, "classes_", None)
    if model_classes is None or output == "predict":
        if classes is not None and model_classes is None:
            raise ValueError(f"classes {classes} given for a regression model "
                             f"{type(model).__name__}; leave classes=None")
        return None
    names = plain(list(model_classes))
    if classes is not None:
        if len(classes) != len(names):
            raise ValueError(f"{len(classes)} class names given for a model with "
                             f"{len(names)} classes {names}")
        names = classes
    return names


def accepts_nan(function: Callable, transform: Callable, schema: InputSchema,
                rows: Any) -> bool:
    """Whether the model (after ``transform``) takes a missing value in the first numeric
    column (the first column when none is numeric): a pipeline with an imputer does, a bare
    SVC does not."""
    numeric = [c for c, k in zip(schema.columns, schema.kinds, strict=True) if k == "numeric"]
    if isinstance(rows, pd.DataFrame):
        probe = rows.iloc[:1].copy()
        probe[(numeric or schema.columns)[0]] = np.nan
    else:
        probe = np.array(rows[:1], dtype=float)
        probe[0, 0] = np.nan
    try:
        out = function(dense(transform(probe)))
    except (ValueError, TypeError):
        return False
    return bool(np.isfinite(out).all())
