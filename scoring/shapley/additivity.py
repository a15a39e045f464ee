"""Exact additivity: values shifted onto ``sum(phi) = f(x) - E[f]``."""

from __future__ import annotations

import numpy as np


def project_additive(phi: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """Shift ``phi (n, M, O)`` equally over features so ``sum_j phi = gap (n, O)``: the
    Euclidean projection onto the additivity constraint."""
    excess = phi.sum(axis=1) - gap
    return phi - excess[:, None, :] / phi.shape[1]
