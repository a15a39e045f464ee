"""The fitted trees of a loaded model, checked before the model runs.

scikit-learn's compiled code follows a tree's child and feature indices without bounds
checks, so a crafted ``Tree`` or ``TreePredictor`` reads outside its arrays or crashes the
process (which is why skops does not trust these types itself). A tree passes when it has
the shape every fitted tree has: children after their parent and inside the tree, split
features inside the columns its estimator is given, categorical bitsets that exist.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
from sklearn.tree._tree import TREE_LEAF, Tree


def check_trees(root: Any) -> None:
    """``ValueError`` naming the first bad tree reachable from ``root``, or a tree that no
    estimator owns (so nothing bounds the columns it reads)."""
    objects = _reachable(root)
    columns: dict[int, int] = {}  # id(tree) -> the fewest columns any owner gives it
    predictors: dict[int, Any] = {}
    for obj in objects:
        tree = getattr(obj, "tree_", None)
        if isinstance(tree, Tree) and _n_features(obj) is not None:
            _bound(columns, tree, _n_features(obj))
        members = getattr(obj, "estimators_", None)
        if members is not None and _n_features(obj) is not None:
            _bound_members(columns, obj, members)
        if getattr(obj, "_predictors", None) is not None:
            for predictor in _flat(obj._predictors):
                _check_predictor(predictor, obj)
                predictors[id(predictor)] = predictor
    for obj in objects:
        if isinstance(obj, Tree):
            if id(obj) not in columns:
                raise ValueError("it holds a fitted tree that no tree estimator owns")
            _check_tree(obj, columns[id(obj)])
        elif isinstance(obj, TreePredictor) and id(obj) not in predictors:
            raise ValueError("it holds a histogram boosting tree that no estimator owns")


def _bound(columns: dict[int, int], tree: Tree, n_features: int) -> None:
    columns[id(tree)] = min(columns.get(id(tree), n_features), n_features, tree.n_features)


def _bound_members(columns: dict[int, int], ensemble: Any, members: Any) -> None:
    """Forests, gradient boosting and bagging call their trees on their own rows without
    the trees' input checks (bagging on a subset of the columns)."""
    subsets = getattr(ensemble, "estimators_features_", None)
    for i, member in enumerate(_flat(members)):
        tree = getattr(member, "tree_", None)
        if isinstance(tree, Tree):
            n_features = _n_features(ensemble)
            if subsets is not None and i < len(subsets):
                n_features = min(n_features, len(subsets[i]))
            _bound(columns, tree, n_features)


def _check_tree(tree: Tree, n_features: int) -> None:
    # node_count beyond the nodes loaded would make every read below overrun
    if tree.node_count != tree.capacity or tree.node_count < 1:
        raise ValueError(f"a fitted tree declares {tree.node_count} nodes and holds "
                         f"{tree.capacity}")
    _check_nodes("a fitted tree", tree.children_left, tree.children_right,
                 tree.children_left != TREE_LEAF, tree.feature, n_features)
    leaves = tree.children_left == TREE_LEAF
    if np.any(tree.children_right[leaves] != TREE_LEAF):
        raise ValueError("a fitted tree has a leaf with a right child")


def _check_predictor(predictor: Any, model: Any) -> None:
    """A histogram gradient boosting tree, given ``model``'s columns; categorical splits
    look up bitsets by node and by the model's categorical columns."""
    if not isinstance(predictor, TreePredictor):
        raise ValueError(f"{type(model).__name__} holds a {type(predictor).__name__} "
                         "where its trees belong")
    nodes = predictor.nodes
    n_features = _n_features(model)
    if n_features is None or len(nodes) < 1:
        raise ValueError("a histogram boosting tree has no nodes or no column count")
    split = nodes["is_leaf"] == 0
    _check_nodes("a histogram boosting tree", nodes["left"], nodes["right"], split,
                 nodes["feature_idx"], n_features)
    categorical = split & (nodes["is_categorical"] != 0)
    if not categorical.any():
        return
    bitsets = (predictor.raw_left_cat_bitsets, predictor.binned_left_cat_bitsets)
    rows = min(len(b) if np.ndim(b) == 2 and np.shape(b)[1] == 8 else 0 for b in bitsets)
    mapper = getattr(model, "_bin_mapper", None)
    is_categorical = np.asarray(getattr(mapper, "is_categorical_", None), dtype=object)
    features = nodes["feature_idx"][categorical].astype(np.int64)
    if (np.any(nodes["bitset_idx"][categorical] >= rows) or is_categorical.ndim != 1
            or np.any(features >= is_categorical.size)
            or not all(bool(is_categorical[f]) for f in features)):
        raise ValueError("a histogram boosting tree has a categorical split without its "
                         "bitset or on a column that is not categorical")


def _check_nodes(what: str, left: np.ndarray, right: np.ndarray, split: np.ndarray,
                 feature: np.ndarray, n_features: int) -> None:
    """Fitted trees number children after their parent: inside the tree, and no cycle."""
    n = len(left)
    index = np.arange(n)
    left, right, feature = (np.asarray(a, dtype=np.int64) for a in (left, right, feature))
    bad = split & ((left <= index) | (left >= n) | (right <= index) | (right >= n)
                   | (feature < 0) | (feature >= n_features))
    if bad.any():
        node = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{what} has a split (node {node}) whose children or column "
                         f"(of {n_features}) no fitted tree has")


def _n_features(estimator: Any) -> int | None:
    n = getattr(estimator, "n_features_in_", None)
    return int(n) if isinstance(n, (int, np.integer)) and n >= 0 else None


def _flat(items: Any) -> list:
    """The members of a list, a list of lists (per iteration) or an array of estimators."""
    if isinstance(items, np.ndarray):
        return items.ravel().tolist()
    out: list = []
    for item in items if isinstance(items, (list, tuple)) else [items]:
        out.extend(item if isinstance(item, (list, tuple)) else [item])
    return out


def _reachable(root: Any) -> list:
    """Every object reachable from ``root`` through containers and instance attributes."""
    seen: dict[int, Any] = {}
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (str, bytes, int, float, type)):
            continue
        seen[id(obj)] = obj
        if isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        elif isinstance(obj, np.ndarray):
            if obj.dtype.hasobject:
                stack.extend(obj.ravel().tolist())
        elif hasattr(obj, "__dict__"):
            stack.extend(vars(obj).values())
    return list(seen.values())
