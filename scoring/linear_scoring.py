"""Closed-form Shapley values of linear models."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from scoring.model_output import check_model
from scoring.scoring_explainer import ScoringExplainer


class LinearScoringExplainer(ScoringExplainer):
    """Exact interventional Shapley values of a linear model's margin:
    ``phi_j = coef_j * (x_j - mean_j)`` with the mean over all training rows.

    Explains ``predict`` for regressors and ``decision_function`` (log-odds) for classifiers,
    as shap's ``LinearExplainer`` and the Azure SDK do; one matrix product per batch.
    """

    method = "linear"

    def __init__(self, explainer: Any = None, initialization_examples: Any = None, *,
                 model_output: str | None = None, random_state: int | None = 0) -> None:
        super().__init__(explainer, initialization_examples, model_output=model_output,
                         random_state=random_state)

    def fit(self, model: Any, X: Any, **kwargs: Any) -> LinearScoringExplainer:
        check_model(model)  # an unfitted linear model has no coef_ yet: say so first
        if not hasattr(model, "coef_"):
            raise TypeError(f"LinearScoringExplainer needs a linear model with coef_, got "
                            f"{type(model).__name__}; use KernelScoringExplainer instead")
        if self.model_output is None:
            self.model_output = "decision_function" if hasattr(model, "classes_") else "predict"
        if self.model_output == "predict_proba":
            raise ValueError("a linear model's probabilities are not linear in the features; "
                             "LinearScoringExplainer explains decision_function (log-odds)")
        return super().fit(model, X, **kwargs)

    def _fit(self, X: Any) -> None:
        model = self.model_function_.model
        self.coef_ = np.atleast_2d(np.asarray(model.coef_, dtype=float))  # (O, M)
        self.mean_ = np.asarray(X, dtype=float).mean(axis=0)
        mean_row = self.mean_[None, :]
        if isinstance(X, pd.DataFrame):  # a model fitted on named columns warns on arrays
            mean_row = pd.DataFrame(mean_row, columns=X.columns)
        self.expected_values_ = self.model_function_(mean_row)[0]

    def _shap_values(self, X: Any) -> np.ndarray:
        centred = np.asarray(X, dtype=float) - self.mean_
        return centred[:, :, None] * self.coef_.T[None, :, :]
