"""Individual conditional expectation: one row's predictions as one feature varies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scoring.artifacts.bundle import ExplanationBundle
from scoring.dashboard.data import DEFAULT_GRID_POINTS, DashboardData
from scoring.model.schema import InputError
from scoring.plain import plain


def ice_curve(bundle: ExplanationBundle, data: DashboardData, row: Mapping[str, Any],
              feature: str, n_points: int | None = DEFAULT_GRID_POINTS) -> dict:
    """The model's answers for ``row`` (a record of raw values) with ``feature`` set to each
    value of :meth:`DashboardData.feature_grid`, in one batch through the bundle's request
    path (as ``/predict`` answers them, with validation): ``grid``, ``predictions`` and, for
    classifiers with probabilities, ``probabilities (n_grid, n_classes)``.

    What scikit-learn's ``partial_dependence(kind="individual")`` gives for one row, on
    raw columns of any type (categories included) and on the dashboard's own grid."""
    if not isinstance(row, Mapping):
        raise InputError("row must be an object {feature: value}", reason="bad_body",
                         field="row")
    grid = data.feature_grid(feature, n_points)
    scored = bundle.score([{**row, feature: value} for value in grid], explain=False)
    return plain({"feature": feature, "grid": grid, "predictions": scored.predictions,
                  "probabilities": scored.probabilities,
                  "class_names": bundle.classes}, finite=True)
