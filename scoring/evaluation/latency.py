"""How long a scoring explainer takes on the request path."""

from __future__ import annotations

from typing import Any

import numpy as np

from scoring.evaluation.timing import median_ms
from scoring.model.rows import n_rows, take_rows
from scoring.scoring_explainers.base import ScoringExplainer

# explainers slower than this per row are timed on 5 rows and scaled to 100
_SLOW_ROW_MS = 20


def measure_latency(explainer: ScoringExplainer, rows: Any, repeats: int = 7) -> dict:
    """Median milliseconds to explain one raw row end to end (``row_ms``: validation,
    transformations, model call, values), one model-input row given the model outputs the
    caller computed (``row_given_outputs_ms``, what the service pays), and a batch of 100
    rows (``batch100_ms``)."""
    spec = explainer.spec_
    one = take_rows(rows, [0])
    batch = take_rows(rows, np.arange(100) % n_rows(rows))
    X_one = spec.transform(spec.validate(one))
    outputs = spec.outputs(X_one)
    latency = {"row_ms": median_ms(lambda: explainer.explain(one), repeats),
               "row_given_outputs_ms": median_ms(
                   lambda: explainer.shap_values(X_one, outputs), repeats)}
    if latency["row_ms"] > _SLOW_ROW_MS:
        latency["batch100_ms"] = 20 * median_ms(lambda: explainer.explain(batch[:5]), 1)
        latency["batch100_extrapolated_from"] = 5
    else:
        latency["batch100_ms"] = median_ms(lambda: explainer.explain(batch),
                                           max(1, repeats // 3))
    return latency
