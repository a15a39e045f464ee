"""Background data for interventional Shapley values: training rows, sampled or summarised."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from scoring.model.rows import n_rows, sample_rows


def summarise_background(X: Any, n: int, rng: np.random.Generator) -> tuple[Any, np.ndarray]:
    """``(background, weights)``: at most ``n`` rows with weights summing to one.

    Numeric arrays are summarised by kmeans (shap.kmeans: centroids snapped to real values,
    weighted by cluster size), as the Azure SDK does; DataFrames (raw rows with categories)
    by a uniform random sample, since centroids of categories do not exist.
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"background size must be a positive integer, got {n!r}")
    if n_rows(X) <= n or isinstance(X, pd.DataFrame):
        return sample_background(X, n, rng)
    import shap

    summary = shap.kmeans(np.asarray(X, dtype=float), int(n))
    weights = np.asarray(summary.weights, dtype=float)
    return np.asarray(summary.data, dtype=float), weights / weights.sum()


def sample_background(X: Any, n: int, rng: np.random.Generator) -> tuple[Any, np.ndarray]:
    """A uniform random sample of at most ``n`` training rows, equal weights."""
    rows, index = sample_rows(X, n, rng)
    return rows, np.full(len(index), 1.0 / len(index))
