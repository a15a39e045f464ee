"""Background data for interventional Shapley values: a weighted summary of training rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def summarise_background(X: Any, n_rows: int,
                         rng: np.random.Generator) -> tuple[Any, np.ndarray]:
    """``(background, weights)``: at most ``n_rows`` rows with weights summing to one.

    Numeric arrays are summarised by kmeans (shap.kmeans: centroids snapped to real values,
    weighted by cluster size), as the Azure SDK does; DataFrames (raw rows with categories)
    by a uniform random sample, since centroids of categories do not exist.
    """
    if not isinstance(n_rows, (int, np.integer)) or n_rows < 1:
        raise ValueError(f"background size must be a positive integer, got {n_rows!r}")
    n = len(X)
    if n <= n_rows:
        return X, np.full(n, 1.0 / n)
    if isinstance(X, pd.DataFrame):
        index = np.sort(rng.choice(n, size=n_rows, replace=False))
        return X.iloc[index].reset_index(drop=True), np.full(n_rows, 1.0 / n_rows)
    import shap

    summary = shap.kmeans(np.asarray(X, dtype=float), int(n_rows))
    weights = np.asarray(summary.weights, dtype=float)
    return np.asarray(summary.data, dtype=float), weights / weights.sum()


def sample_background(X: Any, n_rows: int, rng: np.random.Generator) -> tuple[Any, np.ndarray]:
    """A uniform random sample of at most ``n_rows`` training rows, equal weights."""
    n = len(X)
    if n <= n_rows:
        return X, np.full(n, 1.0 / n)
    index = np.sort(rng.choice(n, size=n_rows, replace=False))
    rows = X.iloc[index].reset_index(drop=True) if isinstance(X, pd.DataFrame) else X[index]
    return rows, np.full(n_rows, 1.0 / n_rows)
