"""scikit-learn tree models read as sums of leaf values: which outputs are additive over
their trees, and each tree's per-node contribution to them."""

from __future__ import annotations

from typing import Any

import numpy as np


def additive_trees(model: Any, output: str) -> list[tuple[Any, np.ndarray]]:
    """``(sklearn Tree, per-node contributions (n_nodes, n_outputs))`` for every tree of
    ``model`` when its ``output`` is a constant plus, for every tree, the contribution of
    the leaf the row reaches; ``TypeError`` naming why otherwise.

    Additive: decision trees, random forests and extra trees (``predict``, and
    ``predict_proba`` as the mean of the trees' class shares), gradient boosting's
    ``predict`` for regressors and ``decision_function`` for classifiers.
    """
    name = type(model).__name__
    if getattr(model, "n_outputs_", 1) != 1:
        raise TypeError(f"{name} predicts several targets at once")
    if hasattr(model, "tree_"):
        members, scale = [model], 1.0
    elif name.startswith(("RandomForest", "ExtraTrees")) and hasattr(model, "estimators_"):
        members, scale = list(model.estimators_), 1.0 / len(model.estimators_)
    elif name.startswith("GradientBoosting") and hasattr(model, "estimators_"):
        return _boosting(model, output)
    else:
        raise TypeError(f"{name} is not a scikit-learn tree, forest or gradient boosting")
    classifier = hasattr(model, "classes_")
    if classifier and output != "predict_proba":
        raise TypeError(f"{name}'s {output} is not a sum over its trees")
    trees = []
    for member in members:
        values = member.tree_.value[:, 0, :].astype(float)
        if classifier:  # what DecisionTreeClassifier.predict_proba does with them
            total = values.sum(axis=1, keepdims=True)
            values = values / np.where(total == 0.0, 1.0, total)
        trees.append((member.tree_, values * scale))
    return trees


def _boosting(model: Any, output: str) -> list[tuple[Any, np.ndarray]]:
    name = type(model).__name__
    wanted = "decision_function" if hasattr(model, "classes_") else "predict"
    if output != wanted:
        raise TypeError(f"{name}'s {output} is not a sum over its trees (its {wanted} is)")
    stages = model.estimators_  # (n_stages, n_outputs) regression trees
    trees = []
    for stage in stages:
        for k, member in enumerate(stage):
            values = np.zeros((member.tree_.node_count, stages.shape[1]))
            values[:, k] = member.tree_.value[:, 0, 0] * model.learning_rate
            trees.append((member.tree_, values))
    return trees
