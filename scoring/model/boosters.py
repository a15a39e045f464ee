"""XGBoost, LightGBM and CatBoost models read as sums of leaf values, through each library's
public model dump (XGBoost's JSON model, LightGBM's ``dump_model``, CatBoost's JSON
export), into the arrays of scikit-learn's trees that the path engine reads.

Each library's split convention becomes scikit-learn's ``x <= threshold`` in the precision
the library compares features in (XGBoost's ``x < t`` on float32 is ``x <= the float32
just below t``), its missing-value routing a per-node direction. What a dump can hold but
a threshold cannot say (categorical splits, linear leaves, zero-as-missing) is refused
with the reason. No library is imported: the model object's own methods are called.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

LIBRARIES = ("xgboost", "lightgbm", "catboost")

# regression objectives whose predict is the raw margin itself (identity link)
_IDENTITY_OBJECTIVES = {
    "xgboost": {"reg:squarederror", "reg:squaredlogerror", "reg:absoluteerror",
                "reg:pseudohubererror", "reg:quantileerror"},
    "lightgbm": {"regression", "regression_l2", "l2", "mean_squared_error", "mse", "rmse",
                 "regression_l1", "l1", "mae", "huber", "fair", "quantile", "mape"},
    "catboost": {"RMSE", "MAE", "Quantile", "MAPE", "Huber", "Lq", "Expectile", "LogCosh",
                 "FairLoss"},
}
_ENCODE_INSTEAD = ("encode the categories in the pipeline instead (OneHotEncoder in a "
                   "ColumnTransformer), or explain with method='amortized' or 'permutation'")


@dataclass
class ArrayTree:
    """One tree in the arrays of scikit-learn's ``Tree`` (leaves have children ``-1``; go
    left when ``x <= threshold``, missing values where ``missing_go_to_left`` says)."""

    children_left: np.ndarray
    children_right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_go_to_left: np.ndarray
    node_count: int


def booster_library(model: Any) -> str | None:
    """``"xgboost"``, ``"lightgbm"`` or ``"catboost"`` for those libraries' scikit-learn
    estimators, else ``None``."""
    library = type(model).__module__.split(".")[0]
    return library if library in LIBRARIES and hasattr(model, "predict") else None


def margin_function(model: Any) -> Callable[[Any], np.ndarray]:
    """``X -> raw margins`` of a booster (the sum over its trees before any link), as its
    library computes them: its ``decision_function``."""
    library = booster_library(model)
    if library == "xgboost":
        return partial(model.predict, output_margin=True)
    if library == "lightgbm":
        return partial(model.predict, raw_score=True)
    if library == "catboost":
        return partial(model.predict, prediction_type="RawFormulaVal")
    raise TypeError(f"{type(model).__name__} is not an XGBoost, LightGBM or CatBoost model")


def comparison_dtype(model: Any) -> type:
    """The precision the library compares features in: float32 for XGBoost and CatBoost,
    float64 for LightGBM."""
    return np.float64 if booster_library(model) == "lightgbm" else np.float32


def summation_dtype(model: Any) -> type:
    """The precision the library adds its leaf values in (XGBoost: float32), which bounds
    how closely its own margins match the leaves added in float64."""
    return np.float32 if booster_library(model) == "xgboost" else np.float64


def not_additive_booster(model: Any, output: str) -> str | None:
    """Why ``output`` of the booster ``model`` is not a constant plus one leaf value per
    tree that :func:`booster_trees` reads, or ``None``. Its ``decision_function`` (the raw
    margin) is; a regressor's ``predict`` is when its objective has the identity link."""
    name = type(model).__name__
    classifier = np.size(getattr(model, "classes_", [])) > 0  # CatBoost regressors: empty
    wanted = ("decision_function",) if classifier else ("decision_function", "predict")
    if output not in wanted:
        return f"{name}'s {output} is not a sum over its trees (its decision_function is)"
    if output == "predict":
        objective = _objective(model)
        if objective not in _IDENTITY_OBJECTIVES[booster_library(model)]:
            return (f"{name}'s predict is a link of the sum over its trees (objective "
                    f"{objective!r}); its decision_function is the sum")
    try:
        booster_trees(model)
    except TypeError as exc:
        return str(exc)
    return None


def booster_trees(model: Any) -> list[tuple[ArrayTree, np.ndarray]]:
    """``(tree, per-node contributions (n_nodes, n_outputs))`` for every tree the model's
    predictions use; ``TypeError`` naming what the path engine cannot read."""
    reader = {"xgboost": _xgboost, "lightgbm": _lightgbm, "catboost": _catboost}
    return reader[booster_library(model)](model)


def _objective(model: Any) -> str:
    library = booster_library(model)
    if library == "xgboost":
        config = json.loads(model.get_booster().save_config())
        return str(config["learner"]["objective"]["name"])
    if library == "lightgbm":
        return str(model.objective_)
    return str(model.get_all_params()["loss_function"]).split(":")[0]


# -- XGBoost: the JSON model (Booster.save_raw("json")) ------------------------------------
def _xgboost(model: Any) -> list[tuple[ArrayTree, np.ndarray]]:
    name = type(model).__name__
    booster = model.get_booster()
    learner = json.loads(bytes(booster.save_raw("json")))["learner"]
    gradient_booster = learner["gradient_booster"]
    if gradient_booster["name"] != "gbtree":
        return _refuse(f"{name} uses the {gradient_booster['name']!r} booster; only "
                       "'gbtree' is a plain sum of trees")
    params = learner["learner_model_param"]
    if int(params.get("num_target", 1)) > 1:
        return _refuse(f"{name} predicts several targets at once")
    n_outputs = max(1, int(params.get("num_class", 0)))
    trees_model = gradient_booster["model"]
    # the trees predict() uses: up to the best iteration when training stopped early
    used = len(trees_model["trees"])
    best = booster.attr("best_iteration")
    if best is not None:
        used = int(trees_model["iteration_indptr"][int(best) + 1])
    out = []
    for tree, group in zip(trees_model["trees"][:used], trees_model["tree_info"][:used],
                           strict=True):
        if int(tree["tree_param"].get("size_leaf_vector", 1)) > 1:
            return _refuse(f"{name} has vector leaves (multi_strategy='multi_output_tree')")
        if any(tree["split_type"]):
            return _refuse(f"{name} splits natively on categorical features "
                           f"(enable_categorical=True): sets of categories, not thresholds; "
                           f"{_ENCODE_INSTEAD}")
        left = np.asarray(tree["left_children"], dtype=np.int64)
        right = np.asarray(tree["right_children"], dtype=np.int64)
        condition = np.asarray(tree["split_conditions"], dtype=np.float32)
        leaf = left == -1
        # x < t in float32 is x <= the largest float32 below t
        threshold = np.nextafter(condition, np.float32(-np.inf)).astype(float)
        values = np.zeros((len(left), n_outputs))
        values[leaf, int(group)] = condition[leaf]  # a leaf's value is its condition
        out.append((ArrayTree(left, right, np.asarray(tree["split_indices"], dtype=np.int64),
                              threshold, np.asarray(tree["default_left"], dtype=bool),
                              len(left)), values))
    return out


# -- LightGBM: Booster.dump_model() --------------------------------------------------------
def _lightgbm(model: Any) -> list[tuple[ArrayTree, np.ndarray]]:
    name = type(model).__name__
    dump = model.booster_.dump_model()  # up to the best iteration, as predict
    per_iteration = int(dump["num_tree_per_iteration"])
    trees = dump["tree_info"]
    # boosting_type="rf" averages its iterations
    scale = per_iteration / len(trees) if dump.get("average_output") and trees else 1.0
    out = []
    for i, info in enumerate(trees):
        nodes: list[dict] = []
        _lightgbm_nodes(info["tree_structure"], nodes, name)
        n = len(nodes)
        tree = ArrayTree(np.full(n, -1, np.int64), np.full(n, -1, np.int64),
                         np.zeros(n, np.int64), np.zeros(n), np.zeros(n, bool), n)
        values = np.zeros((n, per_iteration))
        for k, node in enumerate(nodes):
            if "leaf_value" in node or "split_feature" not in node:
                values[k, i % per_iteration] = node.get("leaf_value", 0.0) * scale
                continue
            tree.children_left[k], tree.children_right[k] = node["_left"], node["_right"]
            tree.feature[k] = node["split_feature"]
            tree.threshold[k] = float(node["threshold"])
            # "None": a missing value is read as 0.0 and compared; "NaN": the default side
            tree.missing_go_to_left[k] = bool(node["default_left"]) \
                if node["missing_type"] == "NaN" else 0.0 <= tree.threshold[k]
        out.append((tree, values))
    return out


def _lightgbm_nodes(node: dict, nodes: list[dict], name: str) -> int:
    """Number ``node`` and its subtree depth first into ``nodes`` (children's numbers in
    ``_left``/``_right``); return ``node``'s number."""
    index = len(nodes)
    nodes.append(node)
    if "leaf_value" in node:
        if "leaf_coeff" in node or "leaf_features" in node:
            _refuse(f"{name} has linear leaves (linear_tree=True)")
        return index
    if "split_feature" not in node:  # a tree with no split at all
        return index
    if node["decision_type"] != "<=":
        _refuse(f"{name} splits natively on categorical features (categorical_feature, or a "
                f"pandas 'category' column): sets of categories, not thresholds; "
                f"{_ENCODE_INSTEAD}")
    if node["missing_type"] == "Zero":
        _refuse(f"{name} reads zeros as missing (zero_as_missing=True): a zero goes the "
                "missing values' way, which a threshold cannot say")
    node["_left"] = _lightgbm_nodes(node["left_child"], nodes, name)
    node["_right"] = _lightgbm_nodes(node["right_child"], nodes, name)
    return index


# -- CatBoost: save_model(format="json"), oblivious trees ---------------------------------
def _catboost(model: Any) -> list[tuple[ArrayTree, np.ndarray]]:
    name = type(model).__name__
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "model.json"
        model.save_model(str(path), format="json")
        dump = json.loads(path.read_text())
    if "oblivious_trees" not in dump:
        return _refuse(f"{name} grows non-symmetric trees (grow_policy other than "
                       "'SymmetricTree'), which its JSON export does not describe as splits")
    features = dump["features_info"]
    if any(features.get(kind) for kind in ("categorical_features", "text_features",
                                           "embedding_features")):
        return _refuse(f"{name} has cat_features (or text/embedding features), split on "
                       f"category statistics, not thresholds; {_ENCODE_INSTEAD}")
    float_features = {f["feature_index"]: f for f in features.get("float_features", [])}
    scale, bias = dump.get("scale_and_bias", [1.0, [0.0]])
    n_outputs = max(1, len(bias))
    out = []
    for tree in dump["oblivious_trees"]:
        splits = tree.get("splits") or []
        if any(split["split_type"] != "FloatFeature" for split in splits):
            return _refuse(f"{name} splits on categorical features (one-hot or CTR splits); "
                           f"{_ENCODE_INSTEAD}")
        leaf_values = np.asarray(tree["leaf_values"], dtype=float).reshape(
            2 ** len(splits), n_outputs) * scale
        out.append(_oblivious(splits, leaf_values, float_features))
    return out


def _oblivious(splits: list[dict], leaf_values: np.ndarray,
               float_features: dict) -> tuple[ArrayTree, np.ndarray]:
    """An oblivious tree of ``depth`` splits as a complete binary tree: level ``j`` tests
    split ``j`` (bit ``j`` of the leaf index is ``x > border``), leaves in breadth-first
    order. CatBoost sends a missing value right only when told to (``AsTrue``)."""
    depth = len(splits)
    n = 2 ** (depth + 1) - 1
    tree = ArrayTree(np.full(n, -1, np.int64), np.full(n, -1, np.int64),
                     np.zeros(n, np.int64), np.zeros(n), np.zeros(n, bool), n)
    values = np.zeros((n, leaf_values.shape[1]))
    for node in range(n):
        level = int(np.log2(node + 1))
        if level == depth:
            # the bits of the path from the root: level j's bit is bit j of the leaf index
            position, index = node - (2**depth - 1), 0
            for j in range(depth):
                index |= ((position >> (depth - 1 - j)) & 1) << j
            values[node] = leaf_values[index]
            continue
        split = splits[level]
        feature = float_features[split["float_feature_index"]]
        tree.children_left[node], tree.children_right[node] = 2 * node + 1, 2 * node + 2
        tree.feature[node] = feature["flat_feature_index"]
        tree.threshold[node] = float(np.float32(split["border"]))
        tree.missing_go_to_left[node] = feature.get("nan_value_treatment") != "AsTrue"
    return tree, values


def _refuse(reason: str) -> Any:
    raise TypeError(reason)
