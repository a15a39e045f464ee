"""Closed-form Shapley values of linear models."""

from __future__ import annotations

from typing import Any

import numpy as np

from scoring.scoring_explainers.base import ScoringExplainer


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

    @classmethod
    def default_output(cls, model: Any) -> str:
        return "decision_function" if hasattr(model, "classes_") else "predict"

    @classmethod
    def unsupported(cls, model: Any, output: str) -> str | None:
        if not hasattr(model, "coef_"):
            return "it is not a linear model (no coef_); use KernelScoringExplainer instead"
        if output == "predict_proba" or (output == "predict" and hasattr(model, "classes_")):
            return ("a linear model's probabilities and labels are not linear in the "
                    "features; LinearScoringExplainer explains decision_function (log-odds)")
        return None

    def _fit(self, X: Any) -> None:
        model = self.spec_.model
        self.coef_ = np.atleast_2d(np.asarray(model.coef_, dtype=float))  # (O, M)
        self.mean_ = np.asarray(X, dtype=float).mean(axis=0)
        self.expected_values_ = self.spec_.function(self.mean_[None, :])[0]

    def _shap_values(self, X: Any, outputs: np.ndarray | None) -> np.ndarray:
        centred = np.asarray(X, dtype=float) - self.mean_
        return centred[:, :, None] * self.coef_.T[None, :, :]
