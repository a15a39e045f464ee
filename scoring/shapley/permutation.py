"""Permutation sampling of interventional Shapley values, vectorised over rows.

A *walk* goes from one background row ``b`` to the explained row ``x``, switching features
from ``b``'s values to ``x``'s in a given order, and credits each feature with the change
in ``f`` when it is switched. Averaged over orders and background rows, the credits are
unbiased Shapley values of ``v(S) = E_b f(x_S, b_rest)``, and each walk's credits add up to
``f(x) - f(b)`` exactly, so additivity needs no correction. An order and its reverse on the
same ``b`` (an antithetic pair) cancel much of the variance.

Unlike Kernel SHAP, which evaluates every coalition on every background row, each walk uses
one background row: the budget buys many background rows instead of a summary of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from scoring.model.rows import take_rows
from scoring.shapley.masking import hybrid_rows, n_players

# model rows evaluated per call: bounds memory (rows x features floats) and keeps calls large
_CHUNK_ROWS = 200_000


def check_permutations(n_permutations: Any) -> None:
    """Permutations are walked in antithetic pairs (an order and its reverse): an even
    integer >= 2, else ``ValueError`` naming it."""
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, (int, np.integer)) \
            or n_permutations < 2 or n_permutations % 2:
        raise ValueError(f"n_permutations must be an even integer >= 2 (antithetic pairs), "
                         f"got {n_permutations!r}")


def antithetic_design(n_background: int, pairs_per_row: int, n_features: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Orders ``(P, M)`` and background row indices ``(P,)``, ``P = 2 * pairs_per_row *
    n_background``: every background row gets ``pairs_per_row`` random orders, each with
    its reverse (stratified over the background: only the orders are sampled)."""
    n_pairs = n_background * pairs_per_row
    order = np.argsort(rng.random((n_pairs, n_features)), axis=1)
    b_index = np.repeat(np.arange(n_background), pairs_per_row)
    return np.concatenate([order, order[:, ::-1]]), np.concatenate([b_index, b_index])


def walk_values(f: Callable, X, background, orders: np.ndarray, b_index: np.ndarray,
                fx: np.ndarray | None = None, groups: np.ndarray | None = None) -> np.ndarray:
    """Mean credits ``(n_rows, G, n_outputs)`` of the ``G`` players over the walks
    ``orders``/``b_index``.

    Players are the columns of ``X``, or with ``groups`` (the player of each column) groups
    of columns switched together: the raw columns behind one-hot and other engineered
    columns. ``orders (P, G)`` and ``b_index (P,)`` are shared by every row (a fixed
    design: the same row always gets the same values), or ``(n_rows, P, G)`` and
    ``(n_rows, P)`` per row. ``X`` and ``background`` are both float arrays or both
    DataFrames with the same columns (mixed types allowed). ``fx``: ``f(X)`` when the
    caller has it. Costs ``n_rows * P * G`` model rows, in calls of about ``_CHUNK_ROWS``.
    """
    n, M = X.shape
    G = orders.shape[-1]
    per_row = orders.shape[-2] * G
    if fx is None:
        fx = f(X)
    fx = np.asarray(fx, dtype=float).reshape(n, -1)
    n_out = fx.shape[1]
    shared = orders.ndim == 2
    rank = np.argsort(orders, axis=-1)  # rank[..., p, j]: the step that switches player j
    steps = np.arange(G)
    phi = np.empty((n, G, n_out))
    rows_per_chunk = max(1, _CHUNK_ROWS // per_row)

    def switched(r: np.ndarray) -> np.ndarray:
        # point k of a walk holds the players switched in its first k steps: k = 0 is the
        # background row; k = G would be x itself (fx); then players -> columns
        players = r[:, :, None, :] < steps[None, None, :, None]  # (1 or m, P, G, G)
        return players if groups is None else players[..., groups]  # (.., P, G, M)

    take_x = switched(rank[None]) if shared else None
    for start in range(0, n, rows_per_chunk):
        stop = min(n, start + rows_per_chunk)
        r = rank[None] if shared else rank[start:stop]  # (1 or m, P, G)
        b = b_index[None] if shared else b_index[start:stop]  # (1 or m, P)
        if not shared:
            take_x = switched(r)
        m, P = stop - start, r.shape[1]
        # slot (p, k): walk p after its first k steps
        points = hybrid_rows(take_rows(X, slice(start, stop)), background,
                             take_x.reshape(*take_x.shape[:-3], P * G, M),
                             np.repeat(b, G, axis=-1))
        y = np.asarray(f(points), dtype=float).reshape(m, P, G, n_out)
        y = np.concatenate([y, np.broadcast_to(fx[start:stop, None, None, :],
                                               (m, P, 1, n_out))], axis=2)
        gains = np.diff(y, axis=2)  # gains[i, p, k]: the step that switches order[p, k]
        index = np.broadcast_to(r[..., None], (m, P, G, 1))
        phi[start:stop] = np.take_along_axis(gains, index, axis=2).mean(axis=1)
    return phi


def permutation_labels(f: Callable, X: np.ndarray, background: np.ndarray,
                       n_permutations: int, rng: np.random.Generator,
                       progress: Callable[[int], None] | None = None,
                       groups: np.ndarray | None = None) -> np.ndarray:
    """Unbiased noisy Shapley values ``(n_rows, M, n_outputs)`` for each row of ``X``:
    ``n_permutations`` walks (antithetic pairs) per row, each pair from a background row
    drawn at random, independently for every row. Costs ``n_rows * n_permutations * M``
    model rows plus one call on ``X``."""
    n = X.shape[0]
    G = n_players(X, groups)
    half = max(1, n_permutations // 2)
    fx = np.asarray(f(X), dtype=float).reshape(n, -1)
    phi = np.empty((n, G, fx.shape[1]))
    # a block of rows at a time keeps the per-row orders small
    rows_per_block = max(1, 4 * _CHUNK_ROWS // (2 * half * G))
    for start in range(0, n, rows_per_block):
        stop = min(n, start + rows_per_block)
        m = stop - start
        order = np.argsort(rng.random((m, half, G)), axis=2)
        b_index = rng.integers(len(background), size=(m, half))
        phi[start:stop] = walk_values(f, X[start:stop], background,
                                      np.concatenate([order, order[:, :, ::-1]], axis=1),
                                      np.concatenate([b_index, b_index], axis=1),
                                      fx[start:stop], groups)
        if progress is not None:
            progress(m)
    return phi


def stratified_permutation_values(f: Callable, X, background, pairs_per_row: int,
                                  rng: np.random.Generator,
                                  groups: np.ndarray | None = None) -> np.ndarray:
    """Interventional Shapley values ``(n_rows, M, n_outputs)`` on ``background``: each
    background row gets ``pairs_per_row`` antithetic pairs of orders, drawn independently
    for every explained row, so the background is covered exactly and only the orders are
    sampled. The reference distill and the benchmark measure explainers against."""
    if isinstance(X, pd.DataFrame) != isinstance(background, pd.DataFrame):
        raise TypeError("X and background must both be arrays or both DataFrames")
    n = X.shape[0]
    G = n_players(X, groups)
    fx = np.asarray(f(X), dtype=float).reshape(n, -1)
    total = np.zeros((n, G, fx.shape[1]))
    # enough background rows per call for about _CHUNK_ROWS model rows: few, large calls
    per_call = max(1, _CHUNK_ROWS // (n * 2 * pairs_per_row * G))
    for start in range(0, len(background), per_call):
        rows = np.arange(start, min(len(background), start + per_call))
        order = np.argsort(rng.random((n, len(rows) * pairs_per_row, G)), axis=2)
        b_index = np.tile(np.repeat(rows, pairs_per_row), 2)
        total += len(rows) * walk_values(
            f, X, background, np.concatenate([order, order[:, :, ::-1]], axis=1),
            np.broadcast_to(b_index, (n, len(b_index))), fx, groups)
    return total / len(background)


def weighted_walk_values(f: Callable, X, background, background_outputs: np.ndarray,
                         walk_weights: np.ndarray, orders: np.ndarray, b_index: np.ndarray,
                         fx: np.ndarray | None = None,
                         groups: np.ndarray | None = None) -> np.ndarray:
    """Weighted mean credits ``(n_rows, G, n_outputs)`` of the ``G`` players over the
    walks ``orders (P, G)`` from background rows ``b_index (P,)``, walk ``p`` weighing
    ``walk_weights[p]`` (weights summing to one: a weighted background summary).

    As :func:`walk_values`, with two savings that change no value: a walk's first point
    is its background row, whose output ``background_outputs (B, n_outputs)`` the caller
    computed once, and on arrays a step that switches a player whose columns hold the
    same values in the row and the background row moves nothing (its credit is zero), so
    its point is not evaluated. Costs at most ``n_rows * P * (G - 1)`` model rows, in one
    call per ``_CHUNK_ROWS``.
    """
    n = X.shape[0]
    P, G = orders.shape
    fx = np.asarray(f(X) if fx is None else fx, dtype=float).reshape(n, -1)
    background_outputs = np.asarray(background_outputs, dtype=float).reshape(
        len(background_outputs), -1)
    rank = np.argsort(orders, axis=1)  # rank[p, j]: the step of walk p that switches j
    inner = np.arange(1, G)  # the points between the background row and x
    players = rank[:, None, :] < inner[None, :, None]  # (P, G - 1, G): switched by point k
    take_x = players if groups is None else players[..., groups]
    phi = np.empty((n, G, fx.shape[1]))
    rows_per_chunk = max(1, _CHUNK_ROWS // max(1, P * (G - 1)))
    for start in range(0, n, rows_per_chunk):
        stop = min(n, start + rows_per_chunk)
        rows = take_rows(X, slice(start, stop))
        # moved[i, p, k]: step k of walk p changes row i's hybrid (point k + 1 is new)
        moved = _moving_steps(rows, background, orders, b_index, groups)
        i, p, k = np.nonzero(moved[:, :, :-1])  # the last step reaches x, given
        y = np.empty((stop - start, P, G + 1, fx.shape[1]))
        y[:, :, 0] = background_outputs[b_index]
        y[:, :, G] = fx[start:stop, None, :]
        evaluated = np.zeros((stop - start, P, G + 1), dtype=bool)
        if len(i):
            points = hybrid_rows(take_rows(rows, i), background, take_x[p, k][:, None, :],
                                 b_index[p][:, None])
            y[i, p, k + 1] = np.asarray(f(points), dtype=float).reshape(len(i), -1)
            evaluated[i, p, k + 1] = True
        for step in range(1, G):  # a step that moved nothing repeats the point before it
            same = ~evaluated[:, :, step]
            y[:, :, step][same] = y[:, :, step - 1][same]
        gains = np.diff(y, axis=2)  # gains[i, p, k]: the credit of player orders[p, k]
        credits = np.take_along_axis(gains, np.broadcast_to(
            rank[None, :, :, None], (stop - start, P, G, 1)), axis=2)
        phi[start:stop] = np.einsum("ipgo,p->igo", credits, walk_weights)
    return phi


def _moving_steps(X, background, orders: np.ndarray, b_index: np.ndarray,
                  groups: np.ndarray | None) -> np.ndarray:
    """``(n, P, G)`` booleans: whether step ``k`` of walk ``p`` changes a column of row
    ``i``'s hybrid; every step for DataFrames (no cheap comparison of mixed types)."""
    n, (P, G) = X.shape[0], orders.shape
    if isinstance(X, pd.DataFrame):
        return np.ones((n, P, G), dtype=bool)
    X, background = np.asarray(X, dtype=float), np.asarray(background, dtype=float)
    differs = (X[:, None, :] != background[None, :, :]) & ~(
        np.isnan(X)[:, None, :] & np.isnan(background)[None, :, :])  # (n, B, M)
    if groups is not None:  # a player moves when any of its columns does
        differs = np.stack([differs[..., groups == g].any(axis=-1) for g in range(G)],
                           axis=-1)
    return differs[:, b_index[:, None], orders]  # (n, P, G)
