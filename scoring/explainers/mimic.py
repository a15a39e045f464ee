"""MimicExplainer: a global surrogate model trained on the model's outputs explains it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import r2_score

from scoring.core.explanation import Explanation
from scoring.explainers.base import ModelExplainer, global_from_local
from scoring.explainers.progress import check_show_progress, over_rows, progress_bar
from scoring.explainers.surrogates import ExplainableModel


class MimicExplainer(ModelExplainer):
    """Train an interpretable surrogate to mimic ``model`` and explain the surrogate.

    The surrogate regresses the explained model output: the class probabilities for
    classifiers (one output per class, so explanations are in probability units as with
    ``TabularExplainer``'s Kernel path), ``predict`` for regressors. Its fit to the model on
    the (non-augmented) initialization examples is reported as ``surrogate_fidelity_``
    (R² over all outputs, variance weighted) and, for classifiers, ``surrogate_accuracy_``
    (share of rows where the surrogate's most probable class is the model's; the sign of the
    margin for a binary ``decision_function``).

    Explanations are additive in the surrogate's outputs, not the model's: a surrogate with
    low fidelity explains a different function.

    Parameters
    ----------
    model, initialization_examples, features, classes, transformations, model_output :
        see :class:`~scoring.model_explainer.ModelExplainer`.
    explainable_model : a surrogate class from :mod:`scoring.explainers.surrogates`
        (``LGBMExplainableModel``, ``LinearExplainableModel``, ``SGDExplainableModel``,
        ``DecisionTreeExplainableModel``) or an instance of one.
    augment_data : add resampled rows to the initialization examples before training:
        each new row takes every column from an independently drawn training row (this
        probes the model off the training rows' correlations, where a surrogate needs data).
    max_num_of_augmentations : the training set grows to at most this many times the
        initialization examples.
    explainable_model_args : keyword arguments for the surrogate class.
    random_state : seed for augmentation and the surrogate.
    show_progress : progress bars on stderr (fitting, then explaining): ``None`` for calls
        over a few seconds unless ``TQDM_DISABLE`` is set, ``True`` always, ``False`` never.
    """

    def __init__(self, model: Any, initialization_examples: Any, explainable_model: Any,
                 augment_data: bool = False, max_num_of_augmentations: int = 10,
                 features: Any = None, classes: Any = None, transformations: Any = None,
                 model_output: str | None = None, *,
                 explainable_model_args: dict | None = None,
                 random_state: int | None = 0, show_progress: bool | None = None) -> None:
        if isinstance(max_num_of_augmentations, bool) or not isinstance(
                max_num_of_augmentations, (int, np.integer)) or max_num_of_augmentations < 1:
            raise ValueError("max_num_of_augmentations must be a positive integer, got "
                             f"{max_num_of_augmentations!r}")
        self.explainable_model = explainable_model
        self.augment_data = bool(augment_data)
        self.max_num_of_augmentations = int(max_num_of_augmentations)
        self.explainable_model_args = dict(explainable_model_args or {})
        self.random_state = random_state
        self.show_progress = check_show_progress(show_progress)
        surrogate = _surrogate(explainable_model, self.explainable_model_args, random_state)
        super().__init__(model, initialization_examples, features, classes, transformations,
                         model_output)
        original = self._numeric(self.engineered_rows_)
        # three steps: the model's outputs on the training rows, the surrogate's fit, its
        # fidelity on the initialization examples
        with progress_bar(3, "MimicExplainer fit", self.show_progress, unit="step") as bar:
            train_rows = self._augmented_rows() if self.augment_data else self.rows_
            engineered = self.spec_.transform(train_rows)
            X = self._numeric(engineered)
            outputs = self.spec_.outputs(engineered)
            bar.update(1)
            self.surrogate_ = surrogate.fit(X, outputs)
            bar.update(1)
            target = self.spec_.outputs(self.engineered_rows_)
            predicted = self.surrogate_.predict(original)
            bar.update(1)
        self.n_training_rows_ = len(X)
        self.surrogate_fidelity_ = float(r2_score(target, predicted,
                                                  multioutput="variance_weighted"))
        self.surrogate_accuracy_ = None if self.spec_.classes is None \
            else float(np.mean(_labels(target) == _labels(predicted)))

    def _numeric(self, engineered: Any) -> np.ndarray:
        schema = self.spec_.schema
        if isinstance(engineered, pd.DataFrame) and not schema.all_numeric:
            categorical = [c for c, k in zip(schema.columns, schema.kinds, strict=True)
                           if k != "numeric"]
            raise ValueError(
                "MimicExplainer trains its surrogate on numbers, but initialization_examples "
                f"has categorical columns {categorical}; pass the fitted preprocessing as "
                "transformations= and the final estimator as model")
        return np.asarray(engineered, dtype=float)

    def _augmented_rows(self) -> Any:
        """The initialization rows plus ``max_num_of_augmentations - 1`` resampled copies."""
        rows = self.rows_
        rng = np.random.default_rng(self.random_state)
        n = len(rows)
        copies = [rows]
        for _ in range(self.max_num_of_augmentations - 1):
            picks = rng.integers(0, n, size=(n, len(self.spec_.raw_features)))
            if isinstance(rows, pd.DataFrame):
                copy = pd.DataFrame({c: rows[c].to_numpy()[picks[:, j]]
                                     for j, c in enumerate(rows.columns)})
            else:
                copy = np.take_along_axis(np.asarray(rows), picks, axis=0)
            copies.append(copy)
        if isinstance(rows, pd.DataFrame):
            return pd.concat(copies, ignore_index=True).astype(rows.dtypes.to_dict())
        return np.concatenate(copies)

    def explain_local(self, evaluation_examples: Any, get_raw: bool = True) -> Explanation:
        """Local importance values from the surrogate, in the layout of
        :class:`~scoring.Explanation`; per raw column when ``get_raw`` and transformations
        were given."""
        extra = {"surrogate": type(self.surrogate_).__name__,
                 "surrogate_fidelity": self.surrogate_fidelity_,
                 "surrogate_accuracy": self.surrogate_accuracy_}

        def values(X: Any) -> np.ndarray:
            return over_rows(lambda part: self.surrogate_.shap_values(self._numeric(part)), X,
                             f"MimicExplainer ({self.surrogate_.method})", self.show_progress)

        return self._explanation(values, self.surrogate_.expected_values_,
                                 evaluation_examples, get_raw, self.surrogate_.method, extra)

    def explain_global(self, evaluation_examples: Any = None, get_raw: bool = True,
                       include_local: bool = True) -> Explanation:
        """Global importances (mean absolute surrogate value) over ``evaluation_examples``
        (the initialization examples when ``None``)."""
        if evaluation_examples is None:
            evaluation_examples = self.rows_
        local = self.explain_local(evaluation_examples, get_raw=get_raw)
        return global_from_local(local, include_local)


def _labels(outputs: np.ndarray) -> np.ndarray:
    """Predicted class index: the largest output, or the sign of a binary margin."""
    return outputs.argmax(1) if outputs.shape[1] > 1 else (outputs[:, 0] > 0).astype(int)


def _surrogate(explainable_model: Any, args: dict, random_state: int | None) -> ExplainableModel:
    if isinstance(explainable_model, ExplainableModel):
        return explainable_model
    if isinstance(explainable_model, type) and issubclass(explainable_model, ExplainableModel):
        return explainable_model(random_state=random_state, **args)
    raise TypeError(
        "explainable_model must be one of the surrogate classes LGBMExplainableModel, "
        "LinearExplainableModel, SGDExplainableModel, DecisionTreeExplainableModel (from "
        f"scoring), got {explainable_model!r}")
