"""Counting, taking and sampling rows of arrays and DataFrames: one indexer for every caller."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd


def n_rows(data: Any) -> int:
    """Rows in a 2-D array, a DataFrame or a list of rows (1 for anything else)."""
    if isinstance(data, (pd.DataFrame, np.ndarray)):
        return data.shape[0] if data.ndim else 0
    if isinstance(data, Sequence) and not isinstance(data, str):
        return len(data)
    return 1


def take_rows(data: Any, index: Any) -> Any:
    """Rows ``index`` of an array, a DataFrame (its index reset) or a list of rows."""
    if isinstance(data, pd.DataFrame):
        return data.iloc[index].reset_index(drop=True)
    if isinstance(data, list):
        return [data[i] for i in np.arange(len(data))[index]]
    return np.asarray(data)[index]


def sample_rows(data: Any, n: int, rng: np.random.Generator) -> tuple[Any, np.ndarray]:
    """A uniform sample of at most ``n`` rows without replacement, in their original order,
    and their positions."""
    total = n_rows(data)
    if total <= n:
        return data, np.arange(total)
    index = np.sort(rng.choice(total, size=n, replace=False))
    return take_rows(data, index), index


def split_rows(data: Any, n_held_out: int,
               rng: np.random.Generator) -> tuple[Any, Any, np.ndarray]:
    """``(kept, held_out, held_out_positions)``: ``n_held_out`` rows drawn at random, both
    in original order, and where the held-out ones are in ``data``."""
    order = rng.permutation(n_rows(data))
    kept, held_out = np.sort(order[n_held_out:]), np.sort(order[:n_held_out])
    return take_rows(data, kept), take_rows(data, held_out), held_out


def dense(X: Any) -> Any:
    """A sparse matrix as a dense float array; arrays and DataFrames unchanged."""
    if hasattr(X, "toarray"):
        return np.asarray(X.toarray(), dtype=float)
    return X
