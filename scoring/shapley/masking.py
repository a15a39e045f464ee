"""Hybrid rows: features of the explained rows where a mask is set, of background rows
elsewhere. The one masker that Kernel SHAP, permutation walks and exact enumeration share."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def hybrid_rows(X: Any, background: Any, mask: np.ndarray, b_index: np.ndarray) -> Any:
    """Rows ``(n * S, M)``: row ``(i, s)`` takes feature ``j`` from ``X[i]`` where
    ``mask[s, j]`` (or ``mask[i, s, j]``) is set and from ``background[b_index[s]]`` (or
    ``b_index[i, s]``) otherwise.

    ``mask`` is ``(S, M)`` for a design shared by every row or ``(n, S, M)`` per row,
    ``b_index`` ``(S,)`` or ``(n, S)`` likewise. ``X`` and ``background`` are both 2-D
    float arrays or both DataFrames with the same columns (mixed dtypes kept).
    """
    n, M = X.shape
    shared = mask.ndim == 2
    mask = mask[None] if shared else mask  # (1 or n, S, M)
    b_index = b_index[None] if shared else b_index  # (1 or n, S)
    shape = (n, mask.shape[1])
    if isinstance(X, pd.DataFrame):
        columns = {}
        for j, name in enumerate(X.columns):
            x = X[name].to_numpy()
            b = background[name].to_numpy()[b_index]
            columns[name] = np.broadcast_to(np.where(mask[..., j], x[:, None], b),
                                            shape).reshape(-1)
        return pd.DataFrame(columns).astype(X.dtypes.to_dict())
    points = np.where(mask, np.asarray(X, dtype=float)[:, None, :],
                      np.asarray(background, dtype=float)[b_index])
    return np.broadcast_to(points, (*shape, M)).reshape(-1, M)


def n_players(X: Any, groups: np.ndarray | None) -> int:
    """Players of a Shapley game on ``X``'s columns: the columns, or the column groups
    (``groups`` holds the player of each column)."""
    return X.shape[1] if groups is None else int(np.max(groups)) + 1
