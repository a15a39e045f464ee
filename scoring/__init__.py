"""Explain every prediction: explainers, scoring explainers, bundles for serving."""

from scoring.explanation import Explanation
from scoring.input_schema import InputError, InputSchema
from scoring.kernel_scoring import KernelScoringExplainer
from scoring.linear_scoring import LinearScoringExplainer
from scoring.raw_features import RawFeatureMap
from scoring.scoring_explainer import ScoringExplainer
from scoring.tree_scoring import TreeScoringExplainer

__all__ = [
    "Explanation",
    "InputError",
    "InputSchema",
    "KernelScoringExplainer",
    "LinearScoringExplainer",
    "RawFeatureMap",
    "ScoringExplainer",
    "TreeScoringExplainer",
]
