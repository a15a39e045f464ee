"""Exact interventional Shapley values of additive tree ensembles, one player per column
group, from the root-to-leaf paths of their trees (scikit-learn's, XGBoost's, LightGBM's,
CatBoost's: :mod:`scoring.model.trees`).

For one explained row ``x`` and one background row ``b``, a leaf is reached by the hybrid
row (players ``S`` from ``x``, the rest from ``b``) exactly when every player that only
``x`` sends down the leaf's path is in ``S`` (set ``A``) and every player that only ``b``
sends down it is not (set ``D``). That game has closed-form Shapley values: the leaf value
``v`` times ``(|A|-1)! |D|! / (|A|+|D|)!`` for each player of ``A`` and minus
``|A|! (|D|-1)! / (|A|+|D|)!`` for each player of ``D`` (Laberge & Pequignot 2022,
"Understanding interventional TreeSHAP"). The ensemble's output is a sum of leaf values,
so its values are the sum over leaves, averaged over the background.

Players are column groups (a raw column's one-hot columns together, say), so the values
are the groups' own Shapley values, not sums of per-column ones. Background rows that
cross a leaf's path the same way are counted once: the background is summarised without
loss, and the request-path cost grows with the distinct patterns, not the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import factorial
from typing import Any

import numpy as np

from scoring.model.trees import additive_trees, feature_dtype

# a (leaf, mask) pattern is one uint64: the mask's bits, one per distinct player on the
# leaf's path, below the leaf's number
MAX_PLAYERS_ON_A_PATH = 40
# leaves whose every reach mask has a precomputed row of coefficients, at most this many
# float64s in all (the deepest paths are computed pattern by pattern instead)
MAX_TABLE_ENTRIES = 2**23
# the engine computes the leaves its tables do not cover pattern by pattern, on every
# request; past this share of the leaves that costs more than the engine saves
MAX_UNTABLED_LEAF_SHARE = 0.05
# a tree whose nodes ask at most this many distinct questions (an oblivious tree, as
# CatBoost grows them, asks one per level) gets a table of its values for every
# combination of answers: one lookup per tree on the request path instead of one per leaf
MAX_CODE_TESTS = 8
# rows explained together (the lookups are (rows, leaves, players))
_CHUNK_ROWS = 16


@dataclass
class TreePaths:
    """Every root-to-leaf path of an additive tree ensemble, flattened.

    Nodes of all trees share one numbering; ``entry_*`` list, leaf after leaf, the
    (node, direction) steps of each leaf's path; ``leaf_players`` holds each leaf's distinct
    players (padded with -1), whose positions are the bits of the leaf's masks.
    """

    node_feature: np.ndarray  # (n_nodes,) column tested at each node on a path
    node_threshold: np.ndarray  # (n_nodes,) go left when x <= threshold
    node_missing_left: np.ndarray  # (n_nodes,) where a missing value goes
    entry_node: np.ndarray  # (n_entries,)
    entry_left: np.ndarray  # (n_entries,) the step goes left
    entry_bit: np.ndarray  # (n_entries,) uint64 bit of the step's player in its leaf
    leaf_start: np.ndarray  # (n_leaves,) first entry of each leaf (entries are by leaf)
    leaf_value: np.ndarray  # (n_leaves, n_outputs) contribution to the ensemble output
    leaf_players: np.ndarray  # (n_leaves, max players on a path) player ids, -1 padded
    leaf_mask: np.ndarray  # (n_leaves,) uint64 bits of every player on the path
    feature_dtype: type = np.float32  # the precision the model compares features in
    n_trees: int = 0
    tree_leaf_start: np.ndarray | None = None  # (n_trees + 1,) each tree's first leaf

    def output(self, X: np.ndarray) -> np.ndarray:
        """The ensemble output less its constant, rebuilt from the leaves,
        ``(n_rows, n_outputs)``: a check that the paths read the model as scikit-learn
        does."""
        reached = self.reach_masks(X) == self.leaf_mask
        return reached.astype(float) @ self.leaf_value

    def reach_masks(self, X: np.ndarray) -> np.ndarray:
        """``(n_rows, n_leaves)`` uint64: per leaf, the bits of the players whose own
        values send each row down that leaf's path."""
        return self.masks_of_outcomes(self.outcomes(X))

    def outcomes(self, X: np.ndarray) -> np.ndarray:
        """``(n_rows, n_tested_nodes)`` bool: which way each row goes at each node."""
        # most scikit-learn trees compare float32 features to float64 thresholds
        values = np.asarray(X, dtype=self.feature_dtype).astype(np.float64)[
            :, self.node_feature]
        return np.where(np.isnan(values), self.node_missing_left,
                        values <= self.node_threshold)

    def masks_of_outcomes(self, left: np.ndarray) -> np.ndarray:
        """:meth:`reach_masks` of rows that go left where ``left`` says."""
        off_path = left[:, self.entry_node] != self.entry_left
        failed = np.bitwise_or.reduceat(off_path * self.entry_bit, self.leaf_start, axis=1)
        return self.leaf_mask & ~failed


def _flatten_tree(tree: Any, values: np.ndarray, groups: np.ndarray, node_base: int,
                  out: dict) -> None:
    """Append ``tree``'s leaves to ``out``; ``values`` is each of its nodes' contribution
    ``(n_nodes, n_outputs)`` (only leaves are read)."""
    left, right = tree.children_left, tree.children_right
    stack: list[tuple[int, list[tuple[int, bool]]]] = [(0, [])]
    while stack:
        node, path = stack.pop()
        if left[node] == -1:
            players: list[int] = []
            for step_node, _ in path:
                player = int(groups[tree.feature[step_node]])
                if player not in players:
                    players.append(player)
            if len(players) > MAX_PLAYERS_ON_A_PATH:
                raise ValueError(f"a leaf's path tests {len(players)} players; at most "
                                 f"{MAX_PLAYERS_ON_A_PATH} are supported")
            out["leaf_start"].append(len(out["entry_node"]))
            for step_node, went_left in path:
                out["entry_node"].append(node_base + step_node)
                out["entry_left"].append(went_left)
                out["entry_bit"].append(1 << players.index(int(groups[tree.feature[step_node]])))
            if not path:  # a stump with no split: a leaf every row reaches
                out["entry_node"].append(node_base)
                out["entry_left"].append(True)
                out["entry_bit"].append(0)
            out["leaf_value"].append(values[node])
            out["leaf_players"].append(players)
            continue
        stack.append((right[node], [*path, (node, False)]))
        stack.append((left[node], [*path, (node, True)]))


def tree_paths(trees: list[tuple[Any, np.ndarray]], groups: np.ndarray,
               feature_dtype: type = np.float32) -> TreePaths:
    """The paths of ``trees``, each ``(sklearn Tree, per-node contributions)``; ``groups``
    maps each column to its player; ``feature_dtype`` is the precision the trees compare
    features in."""
    out: dict[str, list] = {key: [] for key in ("entry_node", "entry_left", "entry_bit",
                                                "leaf_start", "leaf_value", "leaf_players")}
    features, thresholds, missing_left = [], [], []
    node_base = 0
    tree_leaf_start = [0]
    for tree, values in trees:
        _flatten_tree(tree, values, groups, node_base, out)
        tree_leaf_start.append(len(out["leaf_start"]))
        features.append(np.maximum(tree.feature, 0))
        thresholds.append(tree.threshold)
        missing = getattr(tree, "missing_go_to_left", None)
        missing_left.append(np.zeros(tree.node_count, bool) if missing is None
                            else np.asarray(missing, bool))
        node_base += tree.node_count
    width = max(1, max(len(players) for players in out["leaf_players"]))
    leaf_players = np.full((len(out["leaf_players"]), width), -1, dtype=np.int64)
    for i, players in enumerate(out["leaf_players"]):
        leaf_players[i, :len(players)] = players
    n_players_on_path = (leaf_players >= 0).sum(axis=1).astype(np.uint64)
    leaf_mask = (np.uint64(1) << n_players_on_path) - np.uint64(1)
    # only the nodes on some path are tested on the request path (not the leaves)
    tested, entry_node = np.unique(np.asarray(out["entry_node"], dtype=np.int64),
                                   return_inverse=True)
    return TreePaths(
        node_feature=np.concatenate(features)[tested],
        node_threshold=np.concatenate(thresholds)[tested],
        node_missing_left=np.concatenate(missing_left)[tested],
        entry_node=entry_node.reshape(-1),
        entry_left=np.asarray(out["entry_left"], dtype=bool),
        entry_bit=np.asarray(out["entry_bit"], dtype=np.uint64),
        leaf_start=np.asarray(out["leaf_start"], dtype=np.int64),
        leaf_value=np.asarray(out["leaf_value"], dtype=float),
        leaf_players=leaf_players, leaf_mask=leaf_mask, feature_dtype=feature_dtype,
        n_trees=len(trees), tree_leaf_start=np.asarray(tree_leaf_start, dtype=np.int64))


@dataclass
class BackgroundPatterns:
    """The background as distinct (leaf, reach mask) patterns with their weights."""

    leaf: np.ndarray  # (n_patterns,)
    mask: np.ndarray  # (n_patterns,) uint64
    weight: np.ndarray  # (n_patterns,) share of the background rows with that pattern


def background_patterns(paths: TreePaths, background: np.ndarray,
                        chunk_rows: int = 64) -> BackgroundPatterns:
    """Summarise ``background`` for :func:`interventional_values` (no loss: the values are
    those of the whole background)."""
    n_leaves = len(paths.leaf_mask)
    width = paths.leaf_players.shape[1]
    keys, counts = [], []
    for start in range(0, len(background), chunk_rows):
        reach = paths.reach_masks(background[start:start + chunk_rows])
        # one integer per (leaf, mask): the mask has at most ``width`` low bits
        key = (np.arange(n_leaves, dtype=np.uint64) << np.uint64(width)) | reach
        unique, count = np.unique(key, return_counts=True)
        keys.append(unique), counts.append(count)
    unique, inverse = np.unique(np.concatenate(keys), return_inverse=True)
    weight = np.bincount(inverse, weights=np.concatenate(counts)) / len(background)
    mask = unique & ((np.uint64(1) << np.uint64(width)) - np.uint64(1))
    return BackgroundPatterns((unique >> np.uint64(width)).astype(np.int64), mask, weight)


@lru_cache(maxsize=4)
def _size_weights(width: int) -> tuple[np.ndarray, np.ndarray]:
    """``(a, d)`` tables: the Shapley weight of a player of ``A`` (``(a-1)! d! / (a+d)!``)
    and of ``D`` (``a! (d-1)! / (a+d)!``), zero where that set is empty."""
    gain = np.zeros((width + 1, width + 1))
    loss = np.zeros((width + 1, width + 1))
    for a in range(width + 1):
        for d in range(width + 1 - a):
            if a:
                gain[a, d] = factorial(a - 1) * factorial(d) / factorial(a + d)
            if d:
                loss[a, d] = factorial(a) * factorial(d - 1) / factorial(a + d)
    return gain, loss


@dataclass
class ShapleyTables:
    """Per number of players ``k`` on a path, the leaves with ``k`` players and, for each
    and each of the ``2**k`` reach masks of an explained row, the signed coefficient of
    each player, ``(n_leaves_k, 2**k, k)``; the other leaves' background patterns.
    ``scatter[k]`` turns one row's coefficients, flattened, into its values ``(n_players *
    n_outputs)``: a sparse matrix of the leaves' values at their players."""

    leaves: dict[int, np.ndarray]
    coefficients: dict[int, np.ndarray]
    rest: BackgroundPatterns
    scatter: dict[int, Any]


def _pattern_coefficients(x_mask: np.ndarray, b_mask: np.ndarray, weight: np.ndarray,
                          width: int) -> tuple[np.ndarray, np.ndarray]:
    """For pairs of an explained row's and a background pattern's reach masks on a leaf:
    which pairs count, and each player position's signed Shapley weight ``(n, width)``.

    A player only ``x`` sends the leaf's way must join the coalition (set ``A``), one only
    ``b`` sends that way must stay out (set ``D``); a player neither sends that way makes
    the leaf unreachable, and with ``A`` and ``D`` empty it adds to ``f(x)`` and ``f(b)``
    alike."""
    full = x_mask | b_mask
    gain_set = x_mask & ~b_mask
    loss_set = b_mask & ~x_mask
    a = np.bitwise_count(gain_set).astype(np.int64)
    d = np.bitwise_count(loss_set).astype(np.int64)
    gain, loss = _size_weights(MAX_PLAYERS_ON_A_PATH)
    bits = np.uint64(1) << np.arange(width, dtype=np.uint64)
    signed = (((gain_set[:, None] & bits) != 0) * (weight * gain[a, d])[:, None]
              - ((loss_set[:, None] & bits) != 0) * (weight * loss[a, d])[:, None])
    return full, signed


def players_on_paths(paths: TreePaths) -> np.ndarray:
    """``(n_leaves,)`` how many distinct players each leaf's path tests."""
    return (paths.leaf_players >= 0).sum(axis=1)


def tabled_path_sizes(players_on_path: np.ndarray,
                      max_entries: int = MAX_TABLE_ENTRIES) -> list[int]:
    """The path sizes whose leaves get tables: the smallest first, while the tables of
    every leaf of those sizes fit ``max_entries`` coefficients."""
    sizes, used = [], 0
    for k, count in enumerate(np.bincount(players_on_path)):
        used += int(count) * 2**k * k
        if used > max_entries:
            break
        if count:
            sizes.append(k)
    return sizes


def shapley_tables(paths: TreePaths, patterns: BackgroundPatterns,
                   max_entries: int = MAX_TABLE_ENTRIES) -> ShapleyTables:
    """Precompute, for the leaves with the fewest players on their paths (as many as fit
    ``max_entries``), every reach mask's coefficients: a row then costs one lookup per
    leaf, whatever the background."""
    k_of_leaf = players_on_paths(paths)
    leaves, coefficients = {}, {}
    for k in tabled_path_sizes(k_of_leaf, max_entries):
        leaf_ids = np.flatnonzero(k_of_leaf == k)
        local = np.full(len(k_of_leaf), -1)
        local[leaf_ids] = np.arange(len(leaf_ids))
        mine = local[patterns.leaf] >= 0
        owner = local[patterns.leaf[mine]]
        b_mask, weight = patterns.mask[mine], patterns.weight[mine]
        table = np.zeros((len(leaf_ids), 2**k, k))
        for x_code in range(2**k):
            x_mask = np.full(len(b_mask), x_code, dtype=np.uint64)
            full, signed = _pattern_coefficients(x_mask, b_mask, weight, k)
            live = (full == np.uint64(2**k - 1)) & (b_mask != x_mask)
            index = (owner[live][:, None] * k + np.arange(k)).ravel()
            table[:, x_code, :] = np.bincount(index, weights=signed[live].ravel(),
                                              minlength=len(leaf_ids) * k).reshape(-1, k)
        leaves[k], coefficients[k] = leaf_ids, table
    tabled = np.zeros(len(k_of_leaf), bool)
    for leaf_ids in leaves.values():
        tabled[leaf_ids] = True
    rest = ~tabled[patterns.leaf]
    scatter = {k: _scatter(paths, leaf_ids, k) for k, leaf_ids in leaves.items()}
    return ShapleyTables(leaves, coefficients, BackgroundPatterns(
        patterns.leaf[rest], patterns.mask[rest], patterns.weight[rest]), scatter)


def _scatter(paths: TreePaths, leaf_ids: np.ndarray, k: int) -> Any:
    """``(n_leaves_k * k, n_players * n_outputs)``: entry ``(leaf * k + i, player * n_outputs
    + out)`` is the leaf's value for ``out`` where ``player`` is its ``i``-th player."""
    from scipy.sparse import csr_matrix

    n_outputs = paths.leaf_value.shape[1]
    n_players = int(paths.leaf_players.max()) + 1
    players = paths.leaf_players[leaf_ids, :k].reshape(-1)  # (L * k,)
    rows = np.repeat(np.arange(len(players)), n_outputs)
    columns = (players[:, None] * n_outputs + np.arange(n_outputs)).reshape(-1)
    values = np.repeat(paths.leaf_value[leaf_ids], k, axis=0).reshape(-1)
    return csr_matrix((values, (rows, columns)), shape=(len(players), n_players * n_outputs))


@dataclass
class CodeTables:
    """For each tree asking at most :data:`MAX_CODE_TESTS` distinct questions (feature,
    threshold, missing side), its Shapley values for every combination of answers, so a
    row costs one lookup per tree. ``tests[t, j]``: a tested node asking tree ``t``'s
    ``j``-th question (``n_tested_nodes``, a padding column that always answers no, past
    its last); ``values[t, code]``: the tree's values ``(n_players * n_outputs,)`` for
    rows whose answers are ``code``'s bits; ``leaves``: the leaves of those trees."""

    tests: np.ndarray  # (n_coded_trees, n_bits)
    values: np.ndarray  # (n_coded_trees, 2**n_bits, n_players * n_outputs)
    leaves: np.ndarray  # (n_leaves,) bool

    def lookup(self, left: np.ndarray) -> np.ndarray:
        """``(n_rows, n_players * n_outputs)``: the coded trees' values for rows that go
        left where ``left (n_rows, n_tested_nodes)`` says."""
        padded = np.concatenate([left, np.zeros((len(left), 1), bool)], axis=1)
        bits = padded[:, self.tests].astype(np.int64)  # (n, trees, n_bits)
        codes = (bits << np.arange(self.tests.shape[1])).sum(axis=2)
        return self.values[np.arange(len(self.tests)), codes].sum(axis=1)


def code_tables(paths: TreePaths, tables: ShapleyTables, n_players: int,
                max_entries: int = MAX_TABLE_ENTRIES) -> CodeTables | None:
    """The :class:`CodeTables` of the trees whose every leaf has ``tables``, from those
    tables (exact as they are), or ``None`` when no tree qualifies or they would hold more
    than ``max_entries`` values."""
    n_leaves, n_outputs = len(paths.leaf_mask), paths.leaf_value.shape[1]
    local = np.full(n_leaves, -1)
    for leaf_ids in tables.leaves.values():
        local[leaf_ids] = np.arange(len(leaf_ids))
    entry_stop = np.append(paths.leaf_start, len(paths.entry_node))
    questions = np.column_stack([paths.node_feature, paths.node_threshold,
                                 paths.node_missing_left])
    coded = []
    for t in range(paths.n_trees):
        first, stop = paths.tree_leaf_start[t], paths.tree_leaf_start[t + 1]
        if (local[first:stop] < 0).any():
            continue
        nodes = np.unique(paths.entry_node[entry_stop[first]:entry_stop[stop]])
        _, representative, question = np.unique(questions[nodes], axis=0,
                                                return_index=True, return_inverse=True)
        if len(representative) <= MAX_CODE_TESTS:
            coded.append((t, nodes, question.reshape(-1), nodes[representative]))
    n_bits = max((len(r) for *_, r in coded), default=0)
    if not coded or len(coded) * 2**n_bits * n_players * n_outputs > max_entries:
        return None
    k_of_leaf = players_on_paths(paths)
    tests = np.full((len(coded), n_bits), len(paths.node_feature))
    values = np.zeros((len(coded), 2**n_bits, n_players, n_outputs))
    leaves = np.zeros(n_leaves, bool)
    for i, (t, nodes, question, representative) in enumerate(coded):
        first, stop = paths.tree_leaf_start[t], paths.tree_leaf_start[t + 1]
        leaves[first:stop] = True
        tests[i, :len(representative)] = representative
        codes = np.arange(2**n_bits)
        left = np.zeros((len(codes), len(paths.node_feature)), bool)
        left[:, nodes] = (codes[:, None] >> question[None, :]) & 1
        entries = slice(entry_stop[first], entry_stop[stop])
        off_path = left[:, paths.entry_node[entries]] != paths.entry_left[entries]
        failed = np.bitwise_or.reduceat(off_path * paths.entry_bit[entries],
                                        paths.leaf_start[first:stop] - entry_stop[first],
                                        axis=1)
        reach = paths.leaf_mask[first:stop] & ~failed  # (codes, leaves of the tree)
        for k in np.unique(k_of_leaf[first:stop]):
            ids = first + np.flatnonzero(k_of_leaf[first:stop] == k)
            # (codes, leaves, k): each leaf's coefficients for the codes' reach masks
            coefficient = tables.coefficients[k][local[ids], reach[:, ids - first]]
            at = np.zeros((len(ids) * k, n_players))
            at[np.arange(len(ids) * k), paths.leaf_players[ids, :k].reshape(-1)] = 1.0
            values[i] += np.einsum("clk,lo,lkp->cpo", coefficient, paths.leaf_value[ids],
                                   at.reshape(len(ids), k, n_players))
    return CodeTables(tests, values.reshape(len(coded), 2**n_bits, -1), leaves)


def _without_leaves(paths: TreePaths, tables: ShapleyTables,
                    leaves: np.ndarray) -> ShapleyTables:
    """``tables`` less the ``leaves`` (their values come from elsewhere)."""
    kept, coefficients, scatter = {}, {}, {}
    for k, leaf_ids in tables.leaves.items():
        keep = ~leaves[leaf_ids]
        if keep.any():
            kept[k], coefficients[k] = leaf_ids[keep], tables.coefficients[k][keep]
            scatter[k] = _scatter(paths, kept[k], k)
    return ShapleyTables(kept, coefficients, tables.rest, scatter)


def interventional_values(paths: TreePaths, tables: ShapleyTables, X: np.ndarray,
                          n_players: int, codes: CodeTables | None = None) -> np.ndarray:
    """Shapley values ``(n_rows, n_players, n_outputs)`` of the ensemble for rows ``X`` on
    the background the ``tables`` (and ``codes``, for the trees they cover) were built
    from: exact, and additive to the ensemble output minus its mean over the background."""
    n_rows, n_outputs = len(X), paths.leaf_value.shape[1]
    left = paths.outcomes(X)
    flat = np.zeros((n_rows, n_players * n_outputs))
    if codes is not None:
        flat += codes.lookup(left)
    if not tables.leaves and not len(tables.rest.leaf):
        return flat.reshape(n_rows, n_players, n_outputs)
    reach = paths.masks_of_outcomes(left)
    for k, leaf_ids in tables.leaves.items():
        coefficient = tables.coefficients[k][np.arange(len(leaf_ids)), reach[:, leaf_ids]]
        scatter = tables.scatter[k]
        # the players beyond the paths' own (constant columns) get nothing
        flat[:, :scatter.shape[1]] += (scatter.T @ coefficient.reshape(n_rows, -1).T).T
    phi = flat.reshape(n_rows, n_players, n_outputs)
    rest = tables.rest
    width = paths.leaf_players.shape[1]
    for row in range(n_rows if len(rest.leaf) else 0):
        x_mask = reach[row, rest.leaf]
        full, signed = _pattern_coefficients(x_mask, rest.mask, rest.weight, width)
        live = (full == paths.leaf_mask[rest.leaf]) & (x_mask != rest.mask)
        leaf = rest.leaf[live]
        players = paths.leaf_players[leaf]
        on_path = players >= 0
        for out in range(n_outputs):
            contribution = signed[live] * paths.leaf_value[leaf, out][:, None]
            phi[row, :, out] += np.bincount(players[on_path], weights=contribution[on_path],
                                            minlength=n_players)
    return phi



@dataclass
class PathEngine:
    """Exact interventional Shapley values of one additive tree ensemble on one
    background, ready for the request path."""

    paths: TreePaths
    tables: ShapleyTables
    n_players: int
    codes: CodeTables | None = None

    @classmethod
    def build(cls, model: Any, output: str, groups: np.ndarray,
              background: np.ndarray) -> PathEngine:
        """The engine of ``model``'s ``output`` (see :func:`scoring.model.trees.not_additive`)
        with ``groups`` as players; ``TypeError`` naming why when the model is not
        additive or its paths test too many players for the tables."""
        paths = tree_paths(additive_trees(model, output), groups, feature_dtype(model))
        k = players_on_paths(paths)
        tabled = int(np.isin(k, tabled_path_sizes(k)).sum())
        if tabled < (1 - MAX_UNTABLED_LEAF_SHARE) * len(k):
            raise TypeError(f"the exact tables cover {tabled} of the {len(k)} leaves of "
                            f"{type(model).__name__} (paths test up to {int(k.max())} "
                            "columns): too deep to explain fast on the request path")
        tables = shapley_tables(paths, background_patterns(paths, background))
        n_players = int(groups.max()) + 1
        codes = code_tables(paths, tables, n_players)
        if codes is not None:
            tables = _without_leaves(paths, tables, codes.leaves)
        return cls(paths, tables, n_players, codes)

    def values(self, X: np.ndarray) -> np.ndarray:
        """``(n_rows, n_players, n_outputs)``, additive to the output less its background
        mean."""
        chunks = [interventional_values(self.paths, self.tables, X[start:start + _CHUNK_ROWS],
                                        self.n_players, self.codes)
                  for start in range(0, len(X), _CHUNK_ROWS)]
        return np.concatenate(chunks) if chunks else \
            np.zeros((0, self.n_players, self.paths.leaf_value.shape[1]))
