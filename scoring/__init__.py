"""Explain every prediction: explainers, scoring explainers, bundles for serving.

The subpackages are layers, each importing only those below it (``lint-imports`` holds the
contract in ``pyproject.toml``), top to bottom: ``cli``; ``remote`` (MLflow, Dask);
``dashboard``; ``artifacts`` (files, trust, bundles); ``evaluation`` (fidelity, cost,
``distill``); ``explainers`` (the Azure-compatible ones); ``scoring_explainers`` (the light
request-path ones and the one request path); ``monitoring`` (attribution shares);
``shapley`` (the algorithms); ``model`` (what a model takes and gives); ``core`` (the
explanation type, plain values, state as data); ``datasets`` (example data).
"""

from scoring.artifacts.bundle import BundleError, ExplanationBundle
from scoring.artifacts.persistence import load, save
from scoring.core.explanation import Explanation
from scoring.evaluation.distill import DistillError, distill
from scoring.evaluation.report import DistillReport
from scoring.explainers.mimic import MimicExplainer
from scoring.explainers.pfi import PFIExplainer
from scoring.explainers.surrogates import (
    DecisionTreeExplainableModel,
    LGBMExplainableModel,
    LinearExplainableModel,
    SGDExplainableModel,
)
from scoring.explainers.tabular import TabularExplainer
from scoring.model.schema import InputError, InputSchema
from scoring.model.transformations import RawFeatureMap
from scoring.remote import ExplanationClient, explain_dataframe
from scoring.scoring_explainers.amortized import AmortizedScoringExplainer
from scoring.scoring_explainers.base import ScoringExplainer
from scoring.scoring_explainers.centroid_walks import CentroidWalksScoringExplainer
from scoring.scoring_explainers.kernel import KernelScoringExplainer
from scoring.scoring_explainers.linear import LinearScoringExplainer
from scoring.scoring_explainers.permutation import PermutationScoringExplainer
from scoring.scoring_explainers.svm import SVMScoringExplainer
from scoring.scoring_explainers.tree import TreeScoringExplainer

__all__ = [
    "AmortizedScoringExplainer",
    "BundleError",
    "CentroidWalksScoringExplainer",
    "DecisionTreeExplainableModel",
    "DistillError",
    "DistillReport",
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
    "SVMScoringExplainer",
    "ScoringExplainer",
    "TabularExplainer",
    "TreeScoringExplainer",
    "distill",
    "explain_dataframe",
    "load",
    "save",
]
