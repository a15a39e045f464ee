"""Request bodies to rows, and scored rows to response bodies (no explainer maths here)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pydantic_core

from scoring.core.explanation import Explanation
from scoring.core.plain import plain
from scoring.scoring_explainers.request import ScoredRows
from service.errors import RequestError
from service.schemas import MAX_ROWS


def parse_json(body: bytes) -> Any:
    """A JSON body read as BentoML reads the API's (pydantic's parser: nesting at most 200
    deep, ``NaN`` accepted, lone surrogates refused), for the routes that read their own:
    one set of JSON rules for every body."""
    try:
        return pydantic_core.from_json(body)
    except ValueError as exc:
        reason = "json_too_deep" if "recursion" in str(exc).lower() else "invalid_json"
        raise RequestError(f"request body is not valid JSON: {exc}", reason=reason) from None


def frame_from_json(payload: Any, columns: list[str]) -> Any:
    """The seed client's body, a ``DataFrame.to_json()``, as rows for the bundle.

    The orient is read from the body's keys and the training ``columns``, never from
    counts: ``columns`` (pandas' default, what the seed sends) when top-level keys name
    training columns, ``index`` when the keys of the inner objects do, ``split`` and
    ``table`` by their keys, ``records`` and ``values`` (lists) as ``/predict`` reads rows.
    A frame without column names (``"0"``, ``"1"``...) is read as ``columns``, positionally.
    """
    names = set(columns)
    if isinstance(payload, dict) and "rows" in payload and "rows" not in names:
        raise RequestError("/score takes a DataFrame's to_json() body; send "
                           '{"rows": ...} bodies to /predict', reason="bad_body")
    if len(payload) == 0:
        raise RequestError("no rows to score: the body must be a non-empty DataFrame.to_json()",
                           reason="empty_input")
    rows = payload if isinstance(payload, list) else _from_object(payload, names)
    if len(rows) > MAX_ROWS:
        raise RequestError(f"{len(rows)} rows in one request; the limit is {MAX_ROWS} rows "
                           "per request", reason="too_many_rows", status=413)
    return rows


def _from_object(payload: dict, names: set[str]) -> Any:
    keys = set(payload)
    inner = [v for v in payload.values() if isinstance(v, dict)]
    if not keys & names:
        if "data" in keys and "columns" in keys and keys <= {"columns", "index", "data"}:
            return _split(payload["columns"], payload["data"])
        if keys == {"schema", "data"}:
            return _table(payload["schema"], payload["data"])
        if len(inner) == len(payload) and any(k in names for v in inner for k in v):
            return list(inner)  # orient="index": {index: {column: value}}
        if len(inner) < len(payload):
            raise RequestError("cannot read the body as a DataFrame: its keys name no training "
                               "column and it is no to_json() orient", reason="bad_body")
    # orient="columns": {column: {index: value}}; a Series' or one record's {column: value}
    if not inner:
        if any(isinstance(v, list) for v in payload.values()):
            return _columns_of_lists(payload)
        return [payload]
    if len(inner) < len(payload):
        raise RequestError("orient='columns' bodies map every column to an object "
                           "{index: value}", reason="bad_body")
    index = list(dict.fromkeys(k for column in inner for k in column))
    return pd.DataFrame({c: [v.get(i) for i in index] for c, v in payload.items()},
                        index=range(len(index)), dtype=object)


def _columns_of_lists(payload: dict) -> pd.DataFrame:
    lengths = {len(v) if isinstance(v, list) else -1 for v in payload.values()}
    if len(lengths) != 1 or -1 in lengths:
        raise RequestError("columns given as lists must all be lists of one length",
                           reason="bad_shape")
    return pd.DataFrame(payload, dtype=object)


def _split(columns: Any, data: Any) -> pd.DataFrame:
    if not isinstance(columns, list) or not isinstance(data, list) or any(
            isinstance(c, (list, dict)) for c in columns):
        raise RequestError("orient='split' bodies have a list of column names and a list of "
                           "rows", reason="bad_body")
    labels = [str(c) for c in columns]
    if len(set(labels)) != len(labels):
        raise RequestError("duplicate column names", reason="bad_body")
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(labels):
            n = len(row) if isinstance(row, list) else 1
            raise RequestError(f"row {i} has {n} values for {len(labels)} columns", row=i,
                               reason="wrong_column_count")
    return pd.DataFrame(data, columns=labels, dtype=object)


def _table(schema: Any, data: Any) -> list:
    if not isinstance(schema, dict) or not isinstance(data, list):
        raise RequestError("orient='table' bodies have a schema object and a list of records",
                           reason="bad_body")
    key = schema.get("primaryKey") or []
    key = set(key) if isinstance(key, list) and all(isinstance(k, str) for k in key) else set()
    return [{k: v for k, v in r.items() if k not in key} if isinstance(r, dict) else r
            for r in data]


def scoring_response(scored: ScoredRows, top_k: int | None, predictions: bool) -> dict:
    """The body of a ``/predict`` (``predictions``) or ``/explain`` answer. The request path
    refused rows with non-finite outputs or values, so arrays go out as they are."""
    out: dict[str, Any] = {}
    if predictions:
        out["predictions"] = plain(scored.predictions)
        if scored.probabilities is not None:
            out["probabilities"] = scored.probabilities.tolist()
    explanation = scored.explanation
    if explanation is not None:
        out.update(local_importance_values=explanation.local_importance_values.tolist(),
                   expected_values=plain(explanation.expected_values),
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
    names, values = explanation.ranked_local(top_k)

    def pair(n: Any, v: Any) -> Any:
        if isinstance(n, list):
            return [pair(a, b) for a, b in zip(n, v, strict=True)]
        return {"feature": n, "value": v}

    return [pair(n, v) for n, v in zip(names, values, strict=True)]
