"""scikit-learn tree models read as sums of leaf values: which outputs are additive over
their trees, and each tree's per-node contribution to them."""

from __future__ import annotations

from typing import Any

import numpy as np


def not_additive(model: Any, output: str) -> str | None:
    """Why ``output`` of ``model`` is not a constant plus one leaf value per tree (what
    :func:`additive_trees` reads), or ``None`` when it is.

    Additive: decision trees, random forests and extra trees (``predict``, and
    ``predict_proba`` as the mean of the trees' class shares), gradient boosting's
    ``predict`` for regressors and ``decision_function`` for classifiers.
    """
    name = type(model).__name__
    if getattr(model, "n_outputs_", 1) != 1:
        return f"{name} predicts several targets at once"
    classifier = hasattr(model, "classes_")
    if name.startswith("GradientBoosting") and hasattr(model, "estimators_"):
        wanted = "decision_function" if classifier else "predict"
        if output != wanted:
            return f"{name}'s {output} is not a sum over its trees (its {wanted} is)"
        return None
    if not (hasattr(model, "tree_") or name.startswith(("RandomForest", "ExtraTrees"))
            and hasattr(model, "estimators_")):
        return f"{name} is not a scikit-learn tree, forest or gradient boosting"
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
    if type(model).__name__.startswith("GradientBoosting"):
        return _boosting(model)
    members = [model] if hasattr(model, "tree_") else list(model.estimators_)
    trees = []
    for member in members:
        values = member.tree_.value[:, 0, :].astype(float)
        if hasattr(model, "classes_"):  # what DecisionTreeClassifier.predict_proba does
            total = values.sum(axis=1, keepdims=True)
            values = values / np.where(total == 0.0, 1.0, total)
        trees.append((member.tree_, values / len(members)))
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
