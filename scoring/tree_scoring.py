"""TreeSHAP scoring explainer for tree ensembles (exact, polynomial time)."""

from __future__ import annotations

from typing import Any

import numpy as np

from scoring.background import sample_background
from scoring.scoring_explainer import ScoringExplainer


class TreeScoringExplainer(ScoringExplainer):
    """shap's ``TreeExplainer`` with interventional perturbation over a background sample.

    Values are exact interventional Shapley values of the model output on the background
    (probabilities for classifiers), computed in time linear in the background size.

    Parameters
    ----------
    n_background : training rows sampled as background (default 100).
    """

    method = "tree"

    def __init__(self, explainer: Any = None, initialization_examples: Any = None, *,
                 n_background: int = 100, model_output: str | None = None,
                 random_state: int | None = 0) -> None:
        self.n_background = n_background
        super().__init__(explainer, initialization_examples, model_output=model_output,
                         random_state=random_state)

    def _fit(self, X: Any) -> None:
        import shap

        if self.model_function_.output == "decision_function":
            raise ValueError("TreeScoringExplainer explains predict_proba or predict, "
                             "not decision_function")
        rng = np.random.default_rng(self.random_state)
        background, _ = sample_background(np.asarray(X, dtype=float), self.n_background, rng)
        output = "probability" if self.model_function_.output == "predict_proba" else "raw"
        try:
            self.tree_explainer_ = shap.TreeExplainer(
                self.model_function_.model, data=background,
                feature_perturbation="interventional", model_output=output)
        except Exception as exc:  # shap raises bare Exception for unsupported models
            raise TypeError(f"TreeScoringExplainer cannot explain "
                            f"{type(self.model_function_.model).__name__}: {exc}") from None
        self.background_ = background
        self.expected_values_ = np.asarray(self.tree_explainer_.expected_value,
                                           dtype=float).reshape(-1)

    def _shap_values(self, X: Any) -> np.ndarray:
        values = self.tree_explainer_.shap_values(np.asarray(X, dtype=float),
                                                  check_additivity=False)
        values = np.asarray(values, dtype=float)
        if values.ndim == 2:
            values = values[:, :, None]
        return values

    def get_params(self) -> dict:
        return {**super().get_params(), "n_background": self.n_background}
