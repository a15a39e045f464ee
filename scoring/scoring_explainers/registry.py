"""The scoring explainers by method name, and which of them can explain a model."""

from __future__ import annotations

from typing import Any

from scoring.scoring_explainers.amortized import AmortizedScoringExplainer
from scoring.scoring_explainers.base import ScoringExplainer
from scoring.scoring_explainers.centroid_walks import CentroidWalksScoringExplainer
from scoring.scoring_explainers.kernel import KernelScoringExplainer
from scoring.scoring_explainers.linear import LinearScoringExplainer
from scoring.scoring_explainers.permutation import PermutationScoringExplainer
from scoring.scoring_explainers.svm import SVMScoringExplainer
from scoring.scoring_explainers.tree import TreeScoringExplainer

# by expected request-path cost, cheapest first: the order distill(method="auto") tries
SCORING_EXPLAINERS: dict[str, type[ScoringExplainer]] = {
    cls.method: cls for cls in (LinearScoringExplainer, TreeScoringExplainer,
                                AmortizedScoringExplainer, SVMScoringExplainer,
                                CentroidWalksScoringExplainer, PermutationScoringExplainer,
                                KernelScoringExplainer)}


def scoring_explainer_class(method: str) -> type[ScoringExplainer]:
    """The scoring explainer class named ``method``."""
    try:
        return SCORING_EXPLAINERS[method]
    except KeyError:
        raise ValueError(f"unknown method {method!r}; choose one of "
                         f"{sorted(SCORING_EXPLAINERS)}") from None


def supporting_methods(model: Any, model_output: str | None = None) -> list[str]:
    """Methods whose explainer can explain ``model`` (its ``model_output``, or each
    explainer's default output), cheapest first."""
    return [name for name, cls in SCORING_EXPLAINERS.items()
            if cls.unsupported(model, model_output or cls.default_output(model)) is None]
