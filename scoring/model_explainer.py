"""What the model explainers (TabularExplainer, MimicExplainer) share: checked inputs,
transformations, classes and the assembly of :class:`~scoring.Explanation` objects."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from scoring.explanation import Explanation
from scoring.input_schema import InputSchema
from scoring.model_output import ModelFunction, check_model
from scoring.raw_features import RawFeatureMap


class ModelExplainer:
    """Base class: validates the model and its initialization examples once.

    Parameters
    ----------
    model : a fitted model. With ``transformations`` it takes the transformed rows;
        otherwise it takes the rows as given (a whole ``Pipeline`` may take raw DataFrames).
    initialization_examples : training rows, ``(n_rows, n_features)`` array or DataFrame;
        raw rows (a DataFrame with the original columns) when ``transformations`` is given.
    features : names of the columns of ``initialization_examples`` (optional).
    classes : class names for classifiers, in the order of ``model.classes_`` (optional).
    transformations : fitted ``ColumnTransformer`` or list of ``(columns, transformer)``
        tuples turning raw rows into the model's input (see :class:`RawFeatureMap`).
    model_output : ``"predict_proba"``, ``"predict"`` or ``"decision_function"``.

    Attributes set here: ``model_function_``, ``input_schema_``, ``raw_feature_map_``,
    ``engineered_features_``, ``raw_features_``, ``classes_``, ``rows_`` (validated
    initialization examples) and ``engineered_rows_`` (what the model takes).
    """

    def __init__(self, model: Any, initialization_examples: Any, features: Any = None,
                 classes: Any = None, transformations: Any = None,
                 model_output: str | None = None) -> None:
        check_model(model)
        self.model = model
        self.initialization_examples = initialization_examples
        self.features = None if features is None else [str(f) for f in features]
        self.classes = None if classes is None else list(classes)
        self.transformations = transformations
        self.model_output = model_output
        self._setup()

    def _setup(self) -> None:
        X = self.initialization_examples
        if X is None or _n_rows(X) == 0:
            raise ValueError("initialization_examples is empty; pass the training rows "
                             "(at least 2) the explainer summarises as background")
        self.model_function_ = ModelFunction(self.model, self.model_output)
        if self.transformations is not None:
            self.raw_feature_map_ = RawFeatureMap(self.transformations, X)
            if self.features is not None and self.features != self.raw_feature_map_.raw_features:
                raise ValueError(f"features {self.features} do not match the raw columns of "
                                 f"initialization_examples {self.raw_feature_map_.raw_features}")
            self.input_schema_ = InputSchema.from_data(X)
        else:
            self.raw_feature_map_ = None
            self.input_schema_ = InputSchema.from_data(X, self.features)
        self.input_schema_.allow_nan = True  # read the training rows as they are
        rows = self.input_schema_.validate(X)
        if len(rows) < 2:
            raise ValueError(f"initialization_examples has {len(rows)} row(s); at least 2 are "
                             "needed to form a background")
        self.input_schema_.allow_nan = self._accepts_nan(rows)
        if not self.input_schema_.allow_nan:
            self.input_schema_.validate(rows)  # raises InputError naming a missing value
        self.rows_ = rows
        self.engineered_rows_ = self._engineer(rows)
        self.raw_features_ = list(self.input_schema_.columns)
        self.engineered_features_ = (self.raw_feature_map_.engineered_features
                                     if self.raw_feature_map_ is not None
                                     else list(self.raw_features_))
        self.classes_ = self._resolve_classes()

    def _resolve_classes(self) -> list | None:
        model_classes = getattr(self.model, "classes_", None)
        if model_classes is None or self.model_function_.output == "predict":
            if self.classes is not None and model_classes is None:
                raise ValueError(f"classes {self.classes} given for a regression model "
                                 f"{type(self.model).__name__}; leave classes=None")
            return None
        names = [c.item() if isinstance(c, np.generic) else c for c in model_classes]
        if self.classes is not None:
            if len(self.classes) != len(names):
                raise ValueError(f"{len(self.classes)} class names given for a model with "
                                 f"{len(names)} classes {names}")
            names = list(self.classes)
        return names

    def _accepts_nan(self, rows: Any) -> bool:
        return accepts_nan(self.model_function_, self._engineer, self.input_schema_, rows)

    def _engineer(self, rows: Any) -> Any:
        if self.raw_feature_map_ is None:
            return rows
        return self.raw_feature_map_.transform(rows)

    def validate(self, data: Any) -> Any:
        """Check rows against the initialization examples' schema (raises ``InputError``
        naming the row and field) and return them as the model or transformations take them."""
        return self.input_schema_.validate(data)

    # -- explanations ------------------------------------------------------------------
    def _explanation(self, values: np.ndarray, expected: np.ndarray, rows: Any,
                     get_raw: bool, method: str, model_output: str,
                     extra: dict | None = None) -> Explanation:
        """``values (n_rows, n_engineered, n_outputs)`` -> Explanation in the layout of
        :class:`Explanation`, summed onto raw columns when ``get_raw`` and transformations."""
        raw = bool(get_raw) or self.raw_feature_map_ is None
        if self.raw_feature_map_ is not None and raw:
            values = np.einsum("imo,mr->iro", values, self.raw_feature_map_.matrix)
            features, shown = self.raw_features_, rows
        else:
            features = self.raw_features_ if self.raw_feature_map_ is None \
                else self.engineered_features_
            shown = self._engineer(rows)
        expected = np.asarray(expected, dtype=float).reshape(-1)
        if self.classes_ is not None:
            values, expected = both_classes(values, expected)
            local, ev, classes = np.transpose(values, (2, 0, 1)), expected, self.classes_
        else:
            local, ev, classes = values[:, :, 0], float(expected[0]), None
        data = shown.to_numpy() if isinstance(shown, pd.DataFrame) else np.asarray(shown)
        return Explanation(features, local_importance_values=local, expected_values=ev,
                           classes=classes, data=data, method=method,
                           model_output=model_output, raw=raw, extra=extra)


def both_classes(values: np.ndarray, expected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A binary classifier's one margin output (log-odds of the second class) as two
    classes: the first class's log-odds are its negative."""
    if values.shape[-1] != 1:
        return values, expected
    return np.concatenate([-values, values], axis=-1), np.concatenate([-expected, expected])


def global_from_local(local: Explanation, include_local: bool = True) -> Explanation:
    """The global explanation (mean absolute local value) of a local explanation."""
    if include_local:
        return local
    return Explanation(local.features, global_importance_values=local.global_importance_values,
                       expected_values=local.expected_values, classes=local.classes,
                       method=local.method, model_output=local.model_output, raw=local.raw,
                       extra={**local.extra, "n_rows": local.num_examples})


def accepts_nan(model_function: Callable, engineer: Callable, schema: InputSchema,
                rows: Any) -> bool:
    """Whether the model (after ``engineer``) takes a missing value in the first numeric
    column: a pipeline with an imputer does, a bare SVC does not."""
    numeric = [c for c, k in zip(schema.columns, schema.kinds, strict=True) if k == "numeric"]
    if not numeric:
        return False
    if isinstance(rows, pd.DataFrame):
        probe = rows.iloc[:1].copy()
        probe[numeric[0]] = np.nan
    else:
        probe = np.array(rows[:1], dtype=float)
        probe[0, 0] = np.nan
    try:
        out = model_function(engineer(probe))
    except (ValueError, TypeError):
        return False
    return bool(np.isfinite(out).all())


def as_3d(values: Any, n_rows: int, n_features: int) -> np.ndarray:
    """shap's ``(n, M)`` or ``(n, M, O)`` (or a list of ``(n, M)`` per output) ->
    ``(n, M, O)``."""
    if isinstance(values, list):
        values = np.stack([np.asarray(v, dtype=float) for v in values], axis=-1)
    values = np.asarray(values, dtype=float)
    return values.reshape(n_rows, n_features, -1)


def _n_rows(X: Any) -> int:
    if isinstance(X, (pd.DataFrame, np.ndarray)):
        return X.shape[0] if X.ndim else 0
    if isinstance(X, Sequence):
        return len(X)
    return 1
