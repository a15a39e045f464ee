"""What the one request path (:meth:`ScoringExplainer.score
<scoring.scoring_explainers.base.ScoringExplainer.score>`) answers, and how it refuses
rows: its result type and its two guards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scoring.core.explanation import Explanation
from scoring.model.schema import InputError


@dataclass
class ScoredRows:
    """What the request path answers for a batch of rows.

    ``n_rows``; ``predictions (n_rows,)`` (empty unless predicted); ``probabilities (n_rows,
    n_classes)`` or ``None`` without ``predict_proba``; ``explanation`` (local, ``None``
    when not asked); ``outputs (n_rows, n_outputs)``: the explained model output, when
    asked for; the seconds spent predicting and explaining; ``warnings`` about the rows
    (categories never seen in training).
    """

    n_rows: int
    predictions: np.ndarray
    probabilities: np.ndarray | None
    explanation: Explanation | None = None
    outputs: np.ndarray | None = None
    predict_seconds: float = 0.0
    explain_seconds: float = 0.0
    warnings: list[dict] = field(default_factory=list)


def refuse_non_finite(what: str, values: Any) -> None:
    """Rows whose values are finite but so far outside the training data that the model or
    the explainer overflows (NaN or infinite outputs) are refused rather than answered with
    ``null``: an ``InputError`` (``not_finite``) naming the first such row (axis 0)."""
    if values is None:
        return
    array = np.asarray(values)
    if array.dtype.kind not in "fc" or array.size == 0:
        return
    bad = ~np.isfinite(array)
    if bad.any():
        row = int(np.nonzero(bad)[0].min())
        raise InputError(f"row {row}: the model's {what} is not a finite number for these "
                         "values; they are too far outside the training data",
                         row=row, reason="not_finite")


@contextmanager
def model_errors() -> Iterator[None]:
    """Valid-looking rows the model itself refuses (say, a category its encoder has never
    seen with ``handle_unknown="error"``) are the caller's problem: an ``InputError``."""
    try:
        yield
    except InputError:
        raise
    except ValueError as exc:
        # scikit-learn's check on what a step gives the next: values that overflowed
        overflow = "infinity or a value too large" in str(exc)
        raise InputError(f"the model could not score these rows: {exc}",
                         reason="not_finite" if overflow else "model_rejected_input") from None
