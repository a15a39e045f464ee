"""What the model explainers (TabularExplainer, MimicExplainer) share: checked inputs,
transformations, classes and the assembly of :class:`~scoring.Explanation` objects."""

from __future__ import annotations

from typing import Any

import numpy as np

from scoring.explanation import Explanation
from scoring.model_input import ModelInput


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

    Attributes set here: ``model_input_`` (:class:`~scoring.model_input.ModelInput`) and,
    from it, ``model_function_``, ``input_schema_``, ``raw_feature_map_``,
    ``engineered_features_``, ``raw_features_``, ``classes_``, ``rows_`` (validated
    initialization examples) and ``engineered_rows_`` (what the model takes).
    """

    def __init__(self, model: Any, initialization_examples: Any, features: Any = None,
                 classes: Any = None, transformations: Any = None,
                 model_output: str | None = None) -> None:
        self.model = model
        self.initialization_examples = initialization_examples
        self.features = None if features is None else [str(f) for f in features]
        self.classes = None if classes is None else list(classes)
        self.transformations = transformations
        self.model_output = model_output
        self._setup()

    def _setup(self) -> None:
        inputs = ModelInput(self.model, self.initialization_examples, features=self.features,
                            classes=self.classes, transformations=self.transformations,
                            model_output=self.model_output)
        self.model_input_ = inputs
        self.model_function_ = inputs.model_function
        self.input_schema_ = inputs.input_schema
        self.raw_feature_map_ = inputs.raw_feature_map
        self.rows_ = inputs.rows
        self.engineered_rows_ = inputs.engineer(inputs.rows)
        self.raw_features_ = inputs.raw_features
        self.engineered_features_ = inputs.engineered_features
        self.classes_ = inputs.classes

    def _engineer(self, rows: Any) -> Any:
        return self.model_input_.engineer(rows)

    def validate(self, data: Any) -> Any:
        """Check rows against the initialization examples' schema (raises ``InputError``
        naming the row and field) and return them as the model or transformations take them."""
        return self.input_schema_.validate(data)


def global_from_local(local: Explanation, include_local: bool = True) -> Explanation:
    """The global explanation (mean absolute local value) of a local explanation."""
    if include_local:
        return local
    return Explanation(local.features, global_importance_values=local.global_importance_values,
                       expected_values=local.expected_values, classes=local.classes,
                       method=local.method, model_output=local.model_output, raw=local.raw,
                       extra={**local.extra, "n_rows": local.num_examples})


def as_3d(values: Any, n_rows: int, n_features: int) -> np.ndarray:
    """shap's ``(n, M)`` or ``(n, M, O)`` (or a list of ``(n, M)`` per output) ->
    ``(n, M, O)``."""
    if isinstance(values, list):
        values = np.stack([np.asarray(v, dtype=float) for v in values], axis=-1)
    values = np.asarray(values, dtype=float)
    return values.reshape(n_rows, n_features, -1)
