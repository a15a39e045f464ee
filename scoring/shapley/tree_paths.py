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
    leaf_mask: np.ndarray  # (n_leaves,) mask_dtype bits of every player on the path
    feature_dtype: type = np.float32  # the precision the model compares features in
    n_trees: int = 0
    tree_leaf_start: np.ndarray | None = None  # (n_trees + 1,) each tree's first leaf
    # a node's player has the same bit in every leaf below it (bits are numbered in path
    # order from the root), so a row's failed bits flow down the trees level by level:
    # one operation per node, not one per (leaf, step)
    node_bit: np.ndarray | None = None  # (n_tested_nodes,) mask_dtype
    # per depth: (parent, child, 2 * parent + the step goes left); children are tested
    # nodes, then leaves numbered from n_tested_nodes
    levels: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
    mask_dtype: type = np.uint64  # the narrowest unsigned integer holding a leaf's bits

    def output(self, X: np.ndarray) -> np.ndarray:
        """The ensemble output less its constant, rebuilt from the leaves,
        ``(n_rows, n_outputs)``: a check that the paths read the model as scikit-learn
        does."""
        reached = self.reach_masks(X) == self.leaf_mask
        return reached.astype(float) @ self.leaf_value

    def reach_masks(self, X: np.ndarray) -> np.ndarray:
        """``(n_rows, n_leaves)`` :attr:`mask_dtype`: per leaf, the bits of the players
        whose own values send each row down that leaf's path."""
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
        n_tested, zero = len(self.node_bit), self.mask_dtype(0)
        # per node and direction, the bit a step that way loses
        fails = np.empty((len(left), n_tested, 2), self.mask_dtype)
        fails[:, :, 0] = np.where(left, self.node_bit, zero)
        fails[:, :, 1] = np.where(left, zero, self.node_bit)
        failed = np.zeros((len(left), n_tested + len(self.leaf_mask)), self.mask_dtype)
        # row by row: gathers along one axis cost half those of a two-dimensional array
        for row, row_fails in zip(failed, fails.reshape(len(left), -1), strict=True):
            for parent, child, step in self.levels:
                row[child] = row[parent] | row_fails[step]
        return self.leaf_mask & ~failed[:, n_tested:]


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
    entry_node, entry_left = entry_node.reshape(-1), np.asarray(out["entry_left"], dtype=bool)
    mask_dtype = next(np.dtype(f"uint{bits}").type for bits in (8, 16, 32, 64)
                      if width <= bits)
    node_bit = np.zeros(len(tested), mask_dtype)
    node_bit[entry_node] = np.asarray(out["entry_bit"], dtype=np.uint64)
    leaf_start = np.asarray(out["leaf_start"], dtype=np.int64)
    return TreePaths(
        node_feature=np.concatenate(features)[tested],
        node_threshold=np.concatenate(thresholds)[tested],
        node_missing_left=np.concatenate(missing_left)[tested],
        entry_node=entry_node, entry_left=entry_left,
        entry_bit=np.asarray(out["entry_bit"], dtype=np.uint64),
        leaf_start=leaf_start,
        leaf_value=np.asarray(out["leaf_value"], dtype=float),
        leaf_players=leaf_players, leaf_mask=leaf_mask.astype(mask_dtype),
        feature_dtype=feature_dtype,
        n_trees=len(trees), tree_leaf_start=np.asarray(tree_leaf_start, dtype=np.int64),
        node_bit=node_bit, levels=_levels(entry_node, entry_left, leaf_start, len(tested)),
        mask_dtype=mask_dtype)


def _levels(entry_node: np.ndarray, entry_left: np.ndarray, leaf_start: np.ndarray,
            n_tested: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The trees' edges depth by depth (:attr:`TreePaths.levels`) from the leaves' paths."""
    n_entries = len(entry_node)
    leaf = np.repeat(np.arange(len(leaf_start)), np.diff(np.append(leaf_start, n_entries)))
    last = np.append(leaf[1:] != leaf[:-1], True)
    child = np.where(last, n_tested + leaf, np.roll(entry_node, -1))
    depth = np.arange(n_entries) - leaf_start[leaf]
    _, first = np.unique(child, return_index=True)  # a node has one parent
    first = first[np.argsort(depth[first], kind="stable")]
    steps = 2 * entry_node + entry_left
    return [(entry_node[edges], child[edges], steps[edges])
            for edges in np.split(first, np.flatnonzero(np.diff(depth[first])) + 1)]


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
    """The tabled leaves, by number of players on their path (``leaves[k]``), and for each
    of them and each of the ``2**k`` reach masks of an explained row, every player's signed
    coefficient: row ``first_row[i] + mask`` of ``coefficients`` for the ``i``-th leaf of
    ``tabled``. One row per (leaf, mask), players dense, so a row's values are one gather
    and one product with the leaves' values, whatever the path sizes. ``rest``: the other
    leaves' background patterns."""

    leaves: dict[int, np.ndarray]
    tabled: np.ndarray  # (n_tabled,) leaf ids, in the order of first_row
    first_row: np.ndarray  # (n_tabled,) int32 (the tables hold at most MAX_TABLE_ENTRIES)
    coefficients: np.ndarray  # (n_table_rows, players on some path)
    leaf_value: np.ndarray  # (n_tabled, n_outputs) the tabled leaves' values
    rest: BackgroundPatterns

    def values(self, reach: np.ndarray) -> np.ndarray:
        """``(n_rows, players on some path, n_outputs)``: the tabled leaves' share of the
        values of rows with these :meth:`TreePaths.reach_masks`."""
        rows = self.coefficients[self.first_row + reach[:, self.tabled].astype(np.int32)]
        return rows.transpose(0, 2, 1) @ self.leaf_value


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


def table_width(paths: TreePaths) -> int:
    """The players some path tests: the columns of :class:`ShapleyTables`."""
    return int(paths.leaf_players.max()) + 1


def tabled_path_sizes(players_on_path: np.ndarray, width: int,
                      max_entries: int = MAX_TABLE_ENTRIES) -> list[int]:
    """The path sizes whose leaves get tables: the smallest first, while the tables of
    every leaf of those sizes fit ``max_entries`` coefficients (``width`` per reach mask)."""
    sizes, used = [], 0
    for k, count in enumerate(np.bincount(players_on_path)):
        used += int(count) * 2**k * width
        if used > max_entries:
            break
        if count:
            sizes.append(k)
    return sizes


def shapley_tables(paths: TreePaths, patterns: BackgroundPatterns,
                   max_entries: int = MAX_TABLE_ENTRIES,
                   dtype: type = np.float64) -> ShapleyTables:
    """Precompute, for the leaves with the fewest players on their paths (as many as fit
    ``max_entries``), every reach mask's coefficients: a row then costs one lookup per
    leaf, whatever the background. The coefficients are computed in float64 and stored
    as ``dtype``: float32 halves the memory a row's lookups read, and the values are
    still summed in float64."""
    k_of_leaf = players_on_paths(paths)
    width = table_width(paths)
    leaves = {k: np.flatnonzero(k_of_leaf == k)
              for k in tabled_path_sizes(k_of_leaf, width, max_entries)}
    # in leaf order: a row's lookups then walk the table one way
    tabled = np.sort(np.concatenate([np.zeros(0, np.int64), *leaves.values()]))
    sizes = 2**k_of_leaf[tabled]
    first_row = (np.cumsum(sizes) - sizes).astype(np.int32)
    position = np.full(len(k_of_leaf), -1)
    position[tabled] = np.arange(len(tabled))
    coefficients = np.zeros((int(sizes.sum()), width), dtype)
    for k, leaf_ids in leaves.items():
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
        rows = first_row[position[leaf_ids], None, None] + np.arange(2**k)[None, :, None]
        coefficients[rows, paths.leaf_players[leaf_ids, None, :k]] = table
    rest = ~np.isin(patterns.leaf, tabled)
    return ShapleyTables(leaves, tabled, first_row, coefficients, paths.leaf_value[tabled],
                         BackgroundPatterns(patterns.leaf[rest], patterns.mask[rest],
                                            patterns.weight[rest]))


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
    local[tables.tabled] = np.arange(len(tables.tabled))
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
    width = table_width(paths)
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
        # (codes, leaves, width): each leaf's coefficients for the codes' reach masks
        rows = tables.coefficients[tables.first_row[local[first:stop]]
                                   + reach.astype(np.int64)]
        values[i, :, :width] = np.einsum("clp,lo->cpo", rows, paths.leaf_value[first:stop])
    return CodeTables(tests, values.reshape(len(coded), 2**n_bits, -1), leaves)


def _without_leaves(paths: TreePaths, tables: ShapleyTables,
                    leaves: np.ndarray) -> ShapleyTables:
    """``tables`` less the ``leaves`` (their values come from elsewhere)."""
    kept = {k: leaf_ids[~leaves[leaf_ids]] for k, leaf_ids in tables.leaves.items()}
    keep = ~leaves[tables.tabled]
    sizes = 2**players_on_paths(paths)[tables.tabled[keep]]
    first_row = (np.cumsum(sizes) - sizes).astype(np.int32)
    rows = np.repeat(tables.first_row[keep] - first_row, sizes) + np.arange(sizes.sum())
    return ShapleyTables({k: ids for k, ids in kept.items() if len(ids)},
                         tables.tabled[keep], first_row, tables.coefficients[rows],
                         tables.leaf_value[keep], tables.rest)


def interventional_values(paths: TreePaths, tables: ShapleyTables, X: np.ndarray,
                          n_players: int, codes: CodeTables | None = None) -> np.ndarray:
    """Shapley values ``(n_rows, n_players, n_outputs)`` of the ensemble for rows ``X`` on
    the background the ``tables`` (and ``codes``, for the trees they cover) were built
    from: exact, and additive to the ensemble output minus its mean over the background."""
    n_rows, n_outputs = len(X), paths.leaf_value.shape[1]
    left = paths.outcomes(X)
    phi = np.zeros((n_rows, n_players, n_outputs))
    if codes is not None:
        phi += codes.lookup(left).reshape(n_rows, n_players, n_outputs)
    if not len(tables.tabled) and not len(tables.rest.leaf):
        return phi
    reach = paths.masks_of_outcomes(left)
    if len(tables.tabled):
        # the players beyond the paths' own (constant columns) get nothing
        phi[:, :table_width(paths)] += tables.values(reach)
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
    def build(cls, model: Any, output: str, groups: np.ndarray, background: np.ndarray,
              table_dtype: type = np.float64) -> PathEngine:
        """The engine of ``model``'s ``output`` (see :func:`scoring.model.trees.not_additive`)
        with ``groups`` as players; ``TypeError`` naming why when the model is not
        additive or its paths test too many players for the tables. ``table_dtype``:
        float32 tables cost less memory traffic per row and move the values by about
        1e-7 of the output (:func:`shapley_tables`)."""
        paths = tree_paths(additive_trees(model, output), groups, feature_dtype(model))
        k = players_on_paths(paths)
        tabled = int(np.isin(k, tabled_path_sizes(k, table_width(paths))).sum())
        if tabled < (1 - MAX_UNTABLED_LEAF_SHARE) * len(k):
            raise TypeError(f"the exact tables cover {tabled} of the {len(k)} leaves of "
                            f"{type(model).__name__} (paths test up to {int(k.max())} "
                            "columns): too deep to explain fast on the request path")
        tables = shapley_tables(paths, background_patterns(paths, background),
                                dtype=table_dtype)
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
