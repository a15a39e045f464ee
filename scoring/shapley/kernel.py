"""Kernel SHAP, vectorised: one coalition design shared by every row of a batch.

Three small steps, each testable on its own:

1. :func:`coalition_design` draws (or, when the budget allows, enumerates) coalitions
   with the Shapley kernel weights.
2. :func:`coalition_values` evaluates the model on all rows x coalitions x background rows
   in a few large model calls (chunked to bound memory).
3. :func:`solve_shapley` solves the weighted least squares with the efficiency constraint
   in closed form, one matrix product for the whole batch.

With all ``2**M - 2`` coalitions enumerated the result is the exact (interventional)
Shapley value on the given background.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations
from math import comb

import numpy as np

from scoring.model.rows import take_rows
from scoring.shapley.masking import hybrid_rows

# model rows evaluated per call: bounds memory (rows x features floats) and keeps calls large
_CHUNK_ROWS = 200_000


def default_nsamples(n_features: int) -> int:
    """shap's default budget: ``2 * M + 2048`` coalitions."""
    return 2 * n_features + 2048


def check_nsamples(nsamples: object) -> None:
    """``ValueError`` unless ``nsamples`` is ``"auto"`` or an integer >= 2 (a coalition
    budget)."""
    if nsamples != "auto" and (isinstance(nsamples, bool) or not isinstance(
            nsamples, (int, np.integer)) or nsamples < 2):
        raise ValueError(f"nsamples must be 'auto' or an integer >= 2, got {nsamples!r}")


def coalition_design(n_features: int, n_samples: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Coalitions ``(n_coalitions, M)`` (bool) and their regression weights.

    As shap's ``KernelExplainer``: coalition sizes are taken in pairs from the edges
    (sizes 1 and M-1, then 2 and M-2, ...), and a pair of sizes is enumerated outright,
    each coalition weighted by its exact share of the Shapley kernel, while the budget
    left would draw at least as many coalitions of those sizes as exist. The remaining
    budget samples coalitions of the middle sizes, each with its complement (which cancels
    much of the variance), sharing the kernel mass left. When ``2**M - 2 <= n_samples``
    every coalition is enumerated and the values are exact.
    """
    M = n_features
    if M < 2:
        return np.ones((1, M), dtype=bool), np.ones(1)
    sizes = np.arange(1, M)
    mass = (M - 1) / (sizes * (M - sizes))
    mass /= mass.sum()  # share of the kernel held by each coalition size
    blocks, weights = [], []
    left, mass_left = n_samples, 1.0
    middle = list(sizes)
    for size in range(1, M // 2 + 1):
        pair = [size] if 2 * size == M else [size, M - size]
        count = sum(comb(M, s) for s in pair)
        pair_mass = sum(mass[s - 1] for s in pair)
        if left * pair_mass / mass_left < count - 1e-9:
            break
        for s in pair:
            members = np.array(list(combinations(range(M), s)))
            Z = np.zeros((len(members), M), dtype=bool)
            Z[np.arange(len(members))[:, None], members] = True
            blocks.append(Z)
            weights.append(np.full(len(Z), mass[s - 1] / len(Z)))
            middle.remove(s)
        left -= count
        mass_left -= pair_mass
    n_pairs = left // 2
    if middle and n_pairs > 0:
        middle = np.array(middle)
        drawn = rng.choice(middle, size=n_pairs, p=mass[middle - 1] / mass[middle - 1].sum())
        # a random permutation per pair; its first `size` entries form the coalition
        order = np.argsort(rng.random((n_pairs, M)), axis=1)
        ranks = np.argsort(order, axis=1)
        Z = ranks < drawn[:, None]
        blocks.append(np.concatenate([Z, ~Z]))
        weights.append(np.full(2 * n_pairs, mass_left / (2 * n_pairs)))
    return np.concatenate(blocks), np.concatenate(weights)


def coalition_values(f: Callable, X, background, bg_weights: np.ndarray,
                     Z: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """``v[i, k, o]``: output ``o`` of ``f`` for row ``i`` with players outside coalition
    ``k`` taken from the background, averaged over background rows (weighted).

    Players are the columns, or with ``groups`` (the player of each column) groups of
    columns. ``X`` and ``background`` are both 2-D float arrays or both DataFrames with the
    same columns (mixed types allowed: the pipeline-as-black-box case).
    """
    n, K, B = len(X), len(Z), len(background)
    # every coalition on every background row: slot (k, b)
    mask = np.repeat(Z if groups is None else Z[:, groups], B, axis=0)
    b_index = np.tile(np.arange(B), K)
    rows_per_chunk = max(1, _CHUNK_ROWS // (K * B))
    out = None
    for start in range(0, n, rows_per_chunk):
        stop = min(n, start + rows_per_chunk)
        hybrid = hybrid_rows(take_rows(X, slice(start, stop)), background, mask, b_index)
        y = np.asarray(f(hybrid), dtype=float).reshape(stop - start, K, B, -1)
        v = np.einsum("ikbo,b->iko", y, bg_weights)
        if out is None:
            out = np.empty((n, K, v.shape[-1]))
        out[start:stop] = v
    return out


def shapley_map(Z: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The constrained solve of :func:`solve_shapley` as the linear map it is for a fixed
    design: ``phi = T (v - v_empty) + u (v_full - v_empty)``, ``T (M, K)``, ``u (M,)``.
    Computed once, it saves an explainer the pseudo-inverse on every call."""
    Zw = Z.astype(float) * weights[:, None]
    A_inv = np.linalg.pinv(Z.astype(float).T @ Zw)  # (M, M), symmetric
    u = A_inv.sum(axis=1) / A_inv.sum()
    R = A_inv @ Zw.T  # (M, K): the unconstrained weighted least squares
    return R - np.outer(u, R.sum(axis=0)), u


def solve_shapley(Z: np.ndarray, weights: np.ndarray, v: np.ndarray, v_empty: np.ndarray,
                  v_full: np.ndarray,
                  design: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Constrained weighted least squares for all rows and outputs at once.

    Minimises ``sum_k w_k (v[i,k,o] - v_empty[o] - Z_k . phi)^2`` subject to
    ``sum(phi) = v_full[i,o] - v_empty[o]``. Returns ``phi`` of shape ``(n, M, n_outputs)``.
    ``design``: :func:`shapley_map` of ``Z`` and ``weights`` when the caller kept it.
    """
    T, u = shapley_map(Z, weights) if design is None else design
    gap = v_full - v_empty[None, :]  # (n, O)
    return np.einsum("mk,iko->imo", T, v - v_empty[None, None, :]) + u[None, :, None] * \
        gap[:, None, :]
