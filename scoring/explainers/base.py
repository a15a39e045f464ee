"""What the model explainers (TabularExplainer, MimicExplainer) share: checked inputs,
transformations, classes and the assembly of :class:`~scoring.Explanation` objects."""

from __future__ import annotations

from typing import Any

import numpy as np

from scoring.core.explanation import Explanation
from scoring.model.spec import ModelSpec


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

    Attributes set here: ``spec_`` (:class:`~scoring.model.spec.ModelSpec`, what the
    model takes and gives), ``rows_`` (the validated initialization examples) and
    ``engineered_rows_`` (the same rows as the model takes them).
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
        self.spec_, self.rows_ = ModelSpec.from_training_rows(
            model, initialization_examples, features=self.features, classes=self.classes,
            transformations=transformations, model_output=model_output)
        self.engineered_rows_ = self.spec_.transform(self.rows_)

    def _explanation(self, values: np.ndarray, expected: Any, data: Any, get_raw: bool,
                     method: str, extra: dict | None = None,
                     players: str = "engineered") -> Explanation:
        """Validate and transform ``data``, then lay out ``values(X)`` as an explanation;
        ``values`` gets the rows as the model takes them and gives one value per
        ``players`` column (``"engineered"`` or ``"raw"``)."""
        rows = self.spec_.validate(data)
        X = self.spec_.transform(rows)
        # the SDK's get_raw=True is "per raw column when there are transformations": None
        raw = None if get_raw else False
        self.spec_.layout.raw_values(raw, players)  # refuse before computing anything
        return self.spec_.layout.explanation(values(X), expected, rows, X, raw, method,
                                             extra, players=players)


def global_from_local(local: Explanation, include_local: bool = True) -> Explanation:
    """The global explanation (mean absolute local value) of a local explanation."""
    return local if include_local else local.without_local()


def as_3d(values: Any, n_rows: int, n_features: int) -> np.ndarray:
    """shap's ``(n, M)`` or ``(n, M, O)`` (or a list of ``(n, M)`` per output) ->
    ``(n, M, O)``."""
    if isinstance(values, list):
        values = np.stack([np.asarray(v, dtype=float) for v in values], axis=-1)
    values = np.asarray(values, dtype=float)
    return values.reshape(n_rows, n_features, -1)
