"""Exact interventional Shapley values by enumerating every coalition: the ground truth
for small feature counts (fidelity checks, tests, benchmark)."""

from __future__ import annotations

from collections.abc import Callable
from math import factorial

import numpy as np

from scoring.shapley.kernel import coalition_values
from scoring.shapley.masking import n_players

MAX_EXACT_FEATURES = 16


def exact_shapley_values(f: Callable, X, background, bg_weights=None,
                         groups: np.ndarray | None = None) -> np.ndarray:
    """Shapley values ``(n_rows, M, n_outputs)`` of ``f`` on ``background`` for the ``M``
    columns of ``X``, or with ``groups`` (the player of each column) for groups of columns.

    Uses the Shapley formula directly (not a regression), so it checks Kernel SHAP
    independently. Cost: ``2**M * n_rows * n_background`` model rows.
    """
    M = n_players(X, groups)
    if M > MAX_EXACT_FEATURES:
        raise ValueError(f"exact enumeration is limited to {MAX_EXACT_FEATURES} features, "
                         f"got {M}; use a converged sampling estimate instead")
    B = len(background)
    bg_weights = np.full(B, 1.0 / B) if bg_weights is None else np.asarray(bg_weights)
    v = coalition_values(f, X, background, bg_weights, coalitions(M), groups)  # (n, 2^M, O)
    return np.einsum("js,iso->ijo", shapley_weights(M), v)


def coalitions(M: int) -> np.ndarray:
    """Every coalition of ``M`` players, ``(2**M, M)`` booleans; row ``c`` holds the bits of
    ``c``."""
    codes = np.arange(2**M)
    return ((codes[:, None] >> np.arange(M)[None, :]) & 1).astype(bool)


def shapley_weights(M: int) -> np.ndarray:
    """``(M, 2**M)``: the Shapley values of a game are this matrix times its values on
    :func:`coalitions`."""
    Z = coalitions(M)
    codes = np.arange(2**M)
    sizes = Z.sum(axis=1)
    weight_by_size = np.array([factorial(s) * factorial(M - s - 1) / factorial(M)
                               for s in range(M)])
    W = np.zeros((M, 2**M))
    for j in range(M):
        without = codes[~Z[:, j]]
        W[j, without | (1 << j)] += weight_by_size[sizes[without]]
        W[j, without] -= weight_by_size[sizes[without]]
    return W
