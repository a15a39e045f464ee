"""TreeSHAP scoring explainer for tree ensembles (exact, polynomial time)."""

from __future__ import annotations

from typing import Any

import numpy as np

from scoring.scoring_explainers.base import ScoringExplainer
from scoring.shapley.additivity import project_additive
from scoring.shapley.background import sample_background

# training rows whose values are checked against the model outputs at fit
_N_CHECK_ROWS = 20
# shap's TreeSHAP accumulates in float32: its values miss the model's float64 outputs by up
# to ~1e-4 on forests. Gaps below this share of the output scale are rounding, projected
# away on every request; larger ones mean shap misreads the model, which is refused
ADDITIVITY_TOLERANCE = 1e-3


def _is_tree_model(model: Any) -> bool:
    """Tree ensembles and trees that shap's TreeExplainer supports."""
    name = type(model).__name__
    return hasattr(model, "tree_") or hasattr(model, "estimators_") and any(
        key in name for key in ("Forest", "Trees", "GradientBoosting")) or name.startswith(
        ("HistGradientBoosting", "LGBM", "XGB"))


class TreeScoringExplainer(ScoringExplainer):
    """shap's ``TreeExplainer`` with interventional perturbation over a background sample.

    Values are exact interventional Shapley values of the model output on the background
    (probabilities for classifiers), computed in time linear in the background size.

    Parameters
    ----------
    n_background : training rows sampled as background (default 100).
    """

    method = "tree"
    transient = ("tree_explainer_",)

    def __init__(self, explainer: Any = None, initialization_examples: Any = None, *,
                 n_background: int = 100, model_output: str | None = None,
                 random_state: int | None = 0) -> None:
        self.n_background = n_background
        super().__init__(explainer, initialization_examples, model_output=model_output,
                         random_state=random_state)

    @classmethod
    def unsupported(cls, model: Any, output: str) -> str | None:
        if not _is_tree_model(model):
            return "it is not a tree model that shap's TreeExplainer reads"
        if output == "decision_function":
            return "TreeScoringExplainer explains predict_proba or predict, not decision_function"
        return None

    def _fit(self, X: Any) -> None:

        rng = np.random.default_rng(self.random_state)
        background, _ = sample_background(np.asarray(X, dtype=float), self.n_background, rng)
        output = "probability" if self.spec_.function.output == "predict_proba" else "raw"
        self.background_ = background
        try:
            self._restore()
        except Exception as exc:  # shap raises bare Exception for unsupported models
            raise TypeError(f"TreeScoringExplainer cannot explain "
                            f"{type(self.spec_.model).__name__}: {exc}") from None
        expected = np.asarray(self.tree_explainer_.expected_value, dtype=float).reshape(-1)
        n_outputs = self.spec_.function(background[:1]).shape[1]
        # binary boosting: shap explains the probability of the second class only; the
        # first class's probability is one minus it, so its values are the negatives
        self.binary_second_class_ = bool(output == "probability" and n_outputs == 2
                                         and expected.size == 1)
        if self.binary_second_class_:
            expected = np.array([1.0 - expected[0], expected[0]])
        self.expected_values_ = expected
        self._check_additivity(np.asarray(X, dtype=float)[:_N_CHECK_ROWS])

    def _restore(self) -> None:
        """shap's explainer of the model on the background (rebuilt when loaded)."""
        import shap

        output = "probability" if self.spec_.function.output == "predict_proba" else "raw"
        self.tree_explainer_ = shap.TreeExplainer(
            self.spec_.model, data=self.background_,
            feature_perturbation="interventional", model_output=output)

    def _check_additivity(self, X: np.ndarray) -> None:
        """Refuse a model whose TreeSHAP values do not add up to its own outputs (shap
        misreads some models' probabilities, e.g. HistGradientBoostingClassifier)."""
        name = type(self.spec_.model).__name__
        try:
            values = self._shap_values(X)
        except Exception as exc:  # shap raises bare Exception for unsupported models
            raise TypeError(f"TreeScoringExplainer cannot explain {name}: {exc}") from None
        outputs = self.spec_.function(X)
        if values.shape[-1] != outputs.shape[1]:
            raise TypeError(f"TreeScoringExplainer cannot explain {name}: shap's TreeExplainer "
                            f"gives {values.shape[-1]} output(s) where "
                            f"{self.spec_.function.output} gives {outputs.shape[1]}; use "
                            "method='permutation', 'kernel' or 'amortized'")
        gap = float(np.max(np.abs(values.sum(axis=1) + self.expected_values_ - outputs)))
        scale = max(1.0, float(np.abs(outputs).max()))
        if not gap <= ADDITIVITY_TOLERANCE * scale:
            raise TypeError(f"TreeScoringExplainer cannot explain {name}'s "
                            f"{self.spec_.function.output}: shap's TreeExplainer values miss "
                            f"the model outputs by up to {gap:.2g} on training rows (more "
                            f"than {ADDITIVITY_TOLERANCE:g} of the output scale); use "
                            "method='permutation', 'kernel' or 'amortized'")
        self.additivity_gap_ = gap

    def _shap_values(self, X: Any, outputs: np.ndarray | None = None) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        values = np.asarray(self.tree_explainer_.shap_values(X, check_additivity=False),
                            dtype=float)
        if values.ndim == 2:
            values = values[:, :, None]
        if self.binary_second_class_:
            values = np.concatenate([-values, values], axis=-1)
        if hasattr(self, "additivity_gap_"):  # fitted: project shap's rounding away
            outputs = self.spec_.function(X) if outputs is None else outputs
            values = project_additive(values, outputs - self.expected_values_)
        return values

    def get_params(self) -> dict:
        params = {**super().get_params(), "n_background": self.n_background}
        if hasattr(self, "additivity_gap_"):
            params["shap_additivity_gap"] = self.additivity_gap_
        return params
