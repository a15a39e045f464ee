"""Request bodies to rows, and scored rows to response bodies (no explainer maths here)."""

from __future__ import annotations

import io
import json
from typing import Any

import pandas as pd

from scoring.artifacts.bundle import ScoredRows
from scoring.artifacts.explanation import Explanation
from scoring.plain import plain
from service.errors import RequestError
from service.schemas import MAX_ROWS


def frame_from_json(payload: Any) -> pd.DataFrame:
    """The seed client's body, ``DataFrame.to_json()`` (any ``orient`` pandas reads)."""
    if isinstance(payload, dict) and "rows" in payload:
        raise RequestError("/score takes a DataFrame's to_json() body; send "
                           '{"rows": ...} bodies to /predict', reason="bad_body")
    if len(payload) == 0:
        raise RequestError("no rows to score: the body must be a non-empty DataFrame.to_json()",
                           reason="empty_input")
    try:
        frame = pd.read_json(io.StringIO(json.dumps(payload)), dtype=False)  # no dates
    except (ValueError, TypeError) as exc:
        raise RequestError(f"request body is not a DataFrame in JSON: {exc}",
                           reason="bad_body") from None
    if len(frame) > MAX_ROWS:
        raise RequestError(f"{len(frame)} rows in one request; the limit is {MAX_ROWS} rows "
                           "per request", reason="too_many_rows", status=413)
    return frame


def scoring_response(scored: ScoredRows, top_k: int | None, predictions: bool) -> dict:
    """The body of a ``/predict`` (``predictions``) or ``/explain`` answer."""
    out: dict[str, Any] = {}
    if predictions:
        out["predictions"] = plain(scored.predictions)
        if scored.probabilities is not None:
            out["probabilities"] = plain(scored.probabilities, finite=True)
    explanation = scored.explanation
    if explanation is not None:
        out.update(local_importance_values=plain(explanation.local_importance_values,
                                                 finite=True),
                   expected_values=plain(explanation.expected_values, finite=True),
                   feature_names=explanation.features, class_names=explanation.classes,
                   model_output=explanation.model_output)
        if top_k is not None:
            out["top_features"] = ranked(explanation, top_k)
    if scored.warnings:
        out["warnings"] = scored.warnings
    return out


def ranked(explanation: Explanation, top_k: int) -> list:
    """Per row (per class, then row, for classification) the ``top_k`` features by
    absolute importance as ``{"feature", "value"}``."""
    names = explanation.get_ranked_local_names(top_k)
    values = plain(explanation.get_ranked_local_values(top_k), finite=True)

    def pair(n: Any, v: Any) -> Any:
        if isinstance(n, list):
            return [pair(a, b) for a, b in zip(n, v, strict=True)]
        return {"feature": n, "value": v}

    return [pair(n, v) for n, v in zip(names, values, strict=True)]
