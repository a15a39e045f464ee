"""Tree models read as sums of leaf values (scikit-learn's, and XGBoost, LightGBM and
CatBoost through :mod:`scoring.model.boosters`): which outputs are additive over their
trees, and each tree's per-node contribution to them."""

from __future__ import annotations

from typing import Any

import numpy as np

from scoring.model.boosters import (
    ArrayTree,
    booster_library,
    booster_trees,
    comparison_dtype,
    not_additive_booster,
    summation_dtype,
)


def not_additive(model: Any, output: str) -> str | None:
    """Why ``output`` of ``model`` is not a constant plus one leaf value per tree (what
    :func:`additive_trees` reads), or ``None`` when it is.

    Additive: decision trees, random forests and extra trees (``predict``, and
    ``predict_proba`` as the mean of the trees' class shares), gradient boosting's and
    histogram gradient boosting's ``predict`` for regressors (identity link) and
    ``decision_function`` for classifiers; XGBoost's, LightGBM's and CatBoost's raw margins
    (``decision_function``) and regressors' ``predict`` with an identity link.
    """
    if booster_library(model) is not None:
        return not_additive_booster(model, output)
    name = type(model).__name__
    if getattr(model, "n_outputs_", 1) != 1:
        return f"{name} predicts several targets at once"
    classifier = hasattr(model, "classes_")
    if name.startswith("HistGradientBoosting") and hasattr(model, "_predictors"):
        if model.is_categorical_ is not None and np.any(model.is_categorical_):
            return f"{name} splits on native categorical features (bitsets, not thresholds)"
        if classifier and output != "decision_function":
            return f"{name}'s {output} is not a sum over its trees (its decision_function is)"
        link = type(model._loss.link).__name__
        if not classifier and (output != "predict" or link != "IdentityLink"):
            return f"{name}'s {output} is not a sum over its trees (its loss has a {link})"
        return None
    if name.startswith("GradientBoosting") and hasattr(model, "estimators_"):
        wanted = "decision_function" if classifier else "predict"
        if output != wanted:
            return f"{name}'s {output} is not a sum over its trees (its {wanted} is)"
        return None
    if not (hasattr(model, "tree_") or name.startswith(("RandomForest", "ExtraTrees"))
            and hasattr(model, "estimators_")):
        return (f"{name} is not a scikit-learn tree, forest or gradient boosting, nor an "
                "XGBoost, LightGBM or CatBoost model")
    if classifier and output != "predict_proba":
        return f"{name}'s {output} is not a sum over its trees"
    return None


def additive_trees(model: Any, output: str) -> list[tuple[Any, np.ndarray]]:
    """``(sklearn Tree, per-node contributions (n_nodes, n_outputs))`` for every tree of
    ``model`` when its ``output`` is additive over them (:func:`not_additive`);
    ``TypeError`` naming why otherwise."""
    reason = not_additive(model, output)
    if reason is not None:
        raise TypeError(reason)
    if booster_library(model) is not None:
        return booster_trees(model)
    if type(model).__name__.startswith("GradientBoosting"):
        return _boosting(model)
    if type(model).__name__.startswith("HistGradientBoosting"):
        return _hist_boosting(model)
    members = [model] if hasattr(model, "tree_") else list(model.estimators_)
    trees = []
    for member in members:
        values = member.tree_.value[:, 0, :].astype(float)
        if hasattr(model, "classes_"):  # what DecisionTreeClassifier.predict_proba does
            total = values.sum(axis=1, keepdims=True)
            values = values / np.where(total == 0.0, 1.0, total)
        trees.append((member.tree_, values / len(members)))
    return trees


def feature_dtype(model: Any) -> type:
    """The precision ``model``'s trees compare features in: histogram gradient boosting
    and LightGBM keep float64, scikit-learn's other trees, XGBoost and CatBoost cast to
    float32 first."""
    if booster_library(model) is not None:
        return comparison_dtype(model)
    return np.float64 if type(model).__name__.startswith("HistGradientBoosting") \
        else np.float32


def output_dtype(model: Any) -> type:
    """The precision ``model`` adds its trees' values in: float32 for XGBoost, float64
    for the others. Its own outputs match the leaves added in float64 to that rounding."""
    return summation_dtype(model) if booster_library(model) is not None else np.float64


def _hist_boosting(model: Any) -> list[tuple[Any, np.ndarray]]:
    trees = []
    for iteration in model._predictors:  # leaf values already carry the learning rate
        for k, predictor in enumerate(iteration):
            nodes = predictor.nodes
            leaf = nodes["is_leaf"].astype(bool)
            tree = ArrayTree(
                children_left=np.where(leaf, -1, nodes["left"].astype(np.int64)),
                children_right=np.where(leaf, -1, nodes["right"].astype(np.int64)),
                feature=nodes["feature_idx"].astype(np.int64),
                threshold=nodes["num_threshold"].astype(float),
                missing_go_to_left=nodes["missing_go_to_left"].astype(bool),
                node_count=len(nodes))
            values = np.zeros((len(nodes), len(iteration)))
            values[:, k] = nodes["value"]
            trees.append((tree, values))
    return trees


def _boosting(model: Any) -> list[tuple[Any, np.ndarray]]:
    stages = model.estimators_  # (n_stages, n_outputs) regression trees
    trees = []
    for stage in stages:
        for k, member in enumerate(stage):
            values = np.zeros((member.tree_.node_count, stages.shape[1]))
            values[:, k] = member.tree_.value[:, 0, 0] * model.learning_rate
            trees.append((member.tree_, values))
    return trees
