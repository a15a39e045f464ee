"""What a scoring explainer costs on the request path."""

from __future__ import annotations

from typing import Any

import numpy as np

from scoring.evaluation.report import Cost
from scoring.evaluation.timing import median_ms
from scoring.model.rows import n_rows, take_rows
from scoring.scoring_explainers.base import ScoringExplainer

# explainers slower than this per row are timed on 5 rows and scaled to 100
_SLOW_ROW_MS = 20


def measure_cost(explainer: ScoringExplainer, rows: Any, repeats: int = 7) -> Cost:
    """The :class:`~scoring.evaluation.report.Cost` of ``explainer`` on raw ``rows``:
    medians of CPU time (see :mod:`scoring.evaluation.timing`) of its request path
    (:meth:`~scoring.scoring_explainers.base.ScoringExplainer.score`: predictions and
    values), of its values alone given the model outputs, and its model evaluations per
    explained row."""
    spec = explainer.spec_
    one = take_rows(rows, [0])
    batch = take_rows(rows, np.arange(100) % n_rows(rows))
    # the explainer alone, on a row as the model takes it and the outputs the service has
    X_one = spec.transform(spec.validate(one))
    outputs = spec.outputs(X_one)
    given = median_ms(lambda: explainer.shap_values(X_one, outputs), repeats)
    row_ms = median_ms(lambda: explainer.score(one), repeats)
    extrapolated = None
    if row_ms > _SLOW_ROW_MS:
        extrapolated = 5
        five = take_rows(batch, np.arange(extrapolated))
        batch100 = 20 * median_ms(lambda: explainer.score(five), 1)
    else:
        batch100 = median_ms(lambda: explainer.score(batch), max(1, repeats // 3))
    return Cost(row_ms=row_ms, row_given_outputs_ms=given, batch100_ms=batch100,
                model_rows_per_row=explainer.model_rows_per_row(),
                batch100_extrapolated_from=extrapolated)
