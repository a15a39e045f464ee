"""Individual conditional expectation: one row's predictions as one feature varies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from scoring.artifacts.bundle import ExplanationBundle
from scoring.core.plain import plain
from scoring.dashboard.data import DEFAULT_GRID_POINTS, DashboardData
from scoring.model.schema import InputError


def ice_curve(bundle: ExplanationBundle, data: DashboardData, row: Mapping[str, Any],
              feature: str, n_points: int | None = DEFAULT_GRID_POINTS) -> dict:
    """The model's answers for ``row`` (a record of raw values) with ``feature`` set to each
    value of :meth:`DashboardData.feature_grid`, in one batch through the bundle's request
    path (as ``/predict`` answers them, with validation): ``grid``, ``predictions`` and, for
    classifiers with probabilities, ``probabilities (n_grid, n_classes)``.

    The row is validated once, before anything is copied (a row of many unknown fields
    is refused at its size, not at its size times the grid), then one column varies.
    What scikit-learn's ``partial_dependence(kind="individual")`` gives for one row, on
    raw columns of any type (categories included) and on the dashboard's own grid."""
    if not isinstance(row, Mapping):
        raise InputError("row must be an object {feature: value}", reason="bad_body",
                         field="row")
    grid = data.feature_grid(feature, n_points)
    validated = bundle.spec.validate({**row, feature: grid[0]})
    varied = _vary(validated, bundle.feature_names.index(feature), grid)
    scored = bundle.score(varied, explain=False)
    return plain({"feature": feature, "grid": grid, "predictions": scored.predictions,
                  "probabilities": scored.probabilities,
                  "class_names": bundle.classes}, finite=True)


def _vary(rows: np.ndarray | pd.DataFrame, column: int, grid: list) -> Any:
    """One validated row repeated once per value of ``grid``, its ``column`` set to it."""
    if isinstance(rows, pd.DataFrame):
        varied = rows.iloc[[0] * len(grid)].reset_index(drop=True)
        varied[varied.columns[column]] = grid
        return varied
    varied = np.repeat(rows, len(grid), axis=0)
    varied[:, column] = grid
    return varied
