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
    codes = np.arange(2**M)
    Z = ((codes[:, None] >> np.arange(M)[None, :]) & 1).astype(bool)  # (2^M, M)
    v = coalition_values(f, X, background, bg_weights, Z, groups)  # (n, 2^M, O)
    sizes = Z.sum(axis=1)
    weight_by_size = np.array([factorial(s) * factorial(M - s - 1) / factorial(M)
                               for s in range(M)])
    phi = np.zeros((len(X), M, v.shape[-1]))
    for j in range(M):
        without = codes[~Z[:, j]]
        with_j = without | (1 << j)
        w = weight_by_size[sizes[without]]
        phi[:, j, :] = np.einsum("k,iko->io", w, v[:, with_j, :] - v[:, without, :])
    return phi
