"""Explain every prediction: explainers, scoring explainers, bundles for serving."""

from scoring.amortized_scoring import AmortizedScoringExplainer
from scoring.bundle import BundleError, ExplanationBundle
from scoring.distill import DistillError, distill
from scoring.explanation import Explanation
from scoring.input_schema import InputError, InputSchema
from scoring.kernel_scoring import KernelScoringExplainer
from scoring.linear_scoring import LinearScoringExplainer
from scoring.mimic import MimicExplainer
from scoring.permutation_scoring import PermutationScoringExplainer
from scoring.persistence import load, save
from scoring.pfi import PFIExplainer
from scoring.raw_features import RawFeatureMap
from scoring.remote import ExplanationClient, explain_dataframe
from scoring.scoring_explainer import ScoringExplainer
from scoring.surrogates import (
    DecisionTreeExplainableModel,
    LGBMExplainableModel,
    LinearExplainableModel,
    SGDExplainableModel,
)
from scoring.tabular import TabularExplainer
from scoring.tree_scoring import TreeScoringExplainer

__all__ = [
    "AmortizedScoringExplainer",
    "BundleError",
    "DecisionTreeExplainableModel",
    "DistillError",
    "Explanation",
    "ExplanationBundle",
    "ExplanationClient",
    "InputError",
    "InputSchema",
    "KernelScoringExplainer",
    "LGBMExplainableModel",
    "LinearExplainableModel",
    "LinearScoringExplainer",
    "MimicExplainer",
    "PFIExplainer",
    "PermutationScoringExplainer",
    "RawFeatureMap",
    "SGDExplainableModel",
    "ScoringExplainer",
    "TabularExplainer",
    "TreeScoringExplainer",
    "distill",
    "explain_dataframe",
    "load",
    "save",
]
