"""What a model takes and what it gives, read once from its training rows: the input
schema, the transformations, the explained output and the class names."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from scoring.explanation import Explanation
from scoring.input_schema import InputSchema
from scoring.model_output import ModelFunction, check_model
from scoring.raw_features import RawFeatureMap


class ModelInput:
    """The checked inputs every explainer starts from.

    Parameters
    ----------
    model : a fitted model. With ``transformations`` it takes the transformed rows;
        otherwise the rows as given (a whole ``Pipeline`` may take raw DataFrames).
    X : training rows, ``(n_rows, n_features)`` array or DataFrame; raw rows (a DataFrame
        with the original columns) when ``transformations`` is given.
    features : names of the columns of ``X`` (optional).
    classes : class names, in the order of ``model.classes_`` (optional).
    transformations : fitted ``ColumnTransformer`` or list of ``(columns, transformer)``
        tuples turning raw rows into the model's input (see :class:`RawFeatureMap`).
    model_output : ``"predict_proba"``, ``"predict"`` or ``"decision_function"``.

    Attributes
    ----------
    model_function, input_schema, raw_feature_map (``None`` without transformations),
    raw_features, engineered_features, classes (``None`` for regression; for a binary
    classifier explained on its one log-odds output both classes are kept, see
    :func:`both_classes`), rows (the validated training rows).
    """

    def __init__(self, model: Any, X: Any, *, features: Any = None, classes: Any = None,
                 transformations: Any = None, model_output: str | None = None) -> None:
        check_model(model)
        if X is None or _n_rows(X) == 0:
            raise ValueError("initialization_examples is empty; pass the training rows "
                             "(at least 2) the explainer summarises as background")
        features = None if features is None else [str(f) for f in features]
        self.model_function = ModelFunction(model, model_output)
        if transformations is not None:
            self.raw_feature_map = RawFeatureMap(transformations, X)
            if features is not None and features != self.raw_feature_map.raw_features:
                raise ValueError(f"features {features} do not match the raw columns of "
                                 f"initialization_examples {self.raw_feature_map.raw_features}")
            self.input_schema = InputSchema.from_data(X)
        else:
            self.raw_feature_map = None
            self.input_schema = InputSchema.from_data(X, features)
        self.input_schema.allow_nan = True  # read the training rows as they are
        rows = self.input_schema.validate(X)
        if len(rows) < 2:
            raise ValueError(f"initialization_examples has {len(rows)} row(s); at least 2 are "
                             "needed to form a background")
        self.input_schema.allow_nan = accepts_nan(self.model_function, self.engineer,
                                                  self.input_schema, rows)
        if not self.input_schema.allow_nan:
            self.input_schema.validate(rows)  # InputError naming the row with a missing value
        self.rows = rows
        self.raw_features = list(self.input_schema.columns)
        self.engineered_features = (self.raw_feature_map.engineered_features
                                    if self.raw_feature_map is not None
                                    else list(self.raw_features))
        self.classes = _resolve_classes(model, self.model_function.output,
                                        None if classes is None else list(classes))

    def engineer(self, rows: Any) -> Any:
        """Validated rows -> what the model takes (the transformations applied)."""
        if self.raw_feature_map is None:
            return rows
        return self.raw_feature_map.transform(rows)

    def expected_layout(self, expected: Any) -> float | np.ndarray:
        """Expected values ``(n_outputs,)`` -> a float, or ``(n_classes,)``."""
        expected = np.asarray(expected, dtype=float).reshape(-1)
        if self.classes is None:
            return float(expected[0])
        return both_classes(expected[None, None, :], expected)[1]

    def layout(self, values: np.ndarray, expected: Any,
               get_raw: bool) -> tuple[np.ndarray, float | np.ndarray]:
        """``values (n_rows, n_engineered, n_outputs)`` -> the public layout
        ``(n_rows, n_features)`` or ``(n_classes, n_rows, n_features)`` and the expected
        values in the matching shape; summed onto raw columns when ``get_raw``."""
        if get_raw:
            if self.raw_feature_map is None:
                raise ValueError("get_raw=True needs an explainer fitted with transformations; "
                                 "this one explains the model's own input features")
            values = np.einsum("imo,mr->iro", values, self.raw_feature_map.matrix)
        expected = np.asarray(expected, dtype=float).reshape(-1)
        if self.classes is None:
            return values[:, :, 0], self.expected_layout(expected)
        values, _ = both_classes(values, expected)
        return np.transpose(values, (2, 0, 1)), self.expected_layout(expected)

    def explanation(self, values: np.ndarray, expected: Any, rows: Any, engineered: Any,
                    get_raw: bool, method: str, extra: dict | None = None) -> Explanation:
        """An :class:`Explanation` of validated ``rows`` (and ``engineered``, the same rows
        as the model takes them, which callers have already computed) from ``values
        (n_rows, n_engineered, n_outputs)``: per raw column when ``get_raw`` and
        transformations."""
        raw = bool(get_raw) or self.raw_feature_map is None
        local, ev = self.layout(values, expected, get_raw and self.raw_feature_map is not None)
        if self.raw_feature_map is not None and raw:
            features, shown = self.raw_features, rows
        else:
            features, shown = self.engineered_features, engineered
        data = shown.to_numpy() if isinstance(shown, pd.DataFrame) else np.asarray(shown)
        return Explanation(features, local_importance_values=local, expected_values=ev,
                           classes=self.classes, data=data, method=method,
                           model_output=self.model_function.output, raw=raw, extra=extra)


def _resolve_classes(model: Any, output: str, classes: list | None) -> list | None:
    model_classes = getattr(model, "classes_", None)
    if model_classes is None or output == "predict":
        if classes is not None and model_classes is None:
            raise ValueError(f"classes {classes} given for a regression model "
                             f"{type(model).__name__}; leave classes=None")
        return None
    names = [c.item() if isinstance(c, np.generic) else c for c in model_classes]
    if classes is not None:
        if len(classes) != len(names):
            raise ValueError(f"{len(classes)} class names given for a model with "
                             f"{len(names)} classes {names}")
        names = classes
    return names


def both_classes(values: np.ndarray, expected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A binary classifier's one margin output (log-odds of the second class) as two
    classes: the first class's log-odds are its negative."""
    if values.shape[-1] != 1:
        return values, expected
    return np.concatenate([-values, values], axis=-1), np.concatenate([-expected, expected])


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


def _n_rows(X: Any) -> int:
    if isinstance(X, (pd.DataFrame, np.ndarray)):
        return X.shape[0] if X.ndim else 0
    if isinstance(X, Sequence):
        return len(X)
    return 1
