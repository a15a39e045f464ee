"""Request parsing and response layout for the scoring service (no explainer maths here)."""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from starlette.responses import JSONResponse

from scoring.explanation import Explanation
from scoring.input_schema import InputError

MAX_ROWS = 1000
MAX_BODY_BYTES = 8 * 1024 * 1024
BODY_FIELDS = ("rows", "top_k", "get_raw", "explain")


class RequestError(InputError):
    """A request the service refuses: an :class:`InputError` with an HTTP ``status``."""

    def __init__(self, message: str, *, reason: str, status: int = 400,
                 row: int | None = None, field: str | None = None) -> None:
        super().__init__(message, row=row, field=field, reason=reason)
        self.status = status

    def response(self) -> JSONResponse:
        return JSONResponse(self.to_dict(), status_code=self.status)


@dataclass
class ScoreRequest:
    """A parsed ``/predict`` or ``/explain`` body; ``rows`` are not validated yet."""

    rows: Any
    top_k: int | None = None
    get_raw: bool = False
    explain: bool = True


def _check_size(body: bytes | None) -> None:
    if body is None or len(body) > MAX_BODY_BYTES:
        size = "over the limit" if body is None else f"{len(body)} bytes"
        raise RequestError(f"request body is {size}; the limit is {MAX_BODY_BYTES} bytes",
                           reason="too_large", status=413)


def _json(body: bytes | None) -> Any:
    _check_size(body)
    if not body.strip():
        raise RequestError("empty request body; send a JSON object such as "
                           '{"rows": [[...], ...]}', reason="invalid_json")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise RequestError(f"request body is not valid JSON: {exc}", reason="invalid_json") \
            from None


def _check_row_count(n: int) -> None:
    if n > MAX_ROWS:
        raise RequestError(f"{n} rows in one request; the limit is {MAX_ROWS} rows per request",
                           reason="too_many_rows", status=413)


def parse_score_request(body: bytes | None) -> ScoreRequest:
    """``{"rows": [...], "top_k": int|null, "get_raw": bool, "explain": bool}``."""
    payload = _json(body)
    if not isinstance(payload, dict):
        raise RequestError(f"request body must be a JSON object with a 'rows' field, got a "
                           f"{type(payload).__name__}", reason="bad_body")
    unknown = sorted(set(payload) - set(BODY_FIELDS))
    if unknown:
        raise RequestError(f"unknown field(s) {unknown} in the request body; accepted fields "
                           f"are {list(BODY_FIELDS)}", reason="bad_body", field=unknown[0])
    if "rows" not in payload:
        raise RequestError("the request body has no 'rows' field", reason="bad_body",
                           field="rows")
    rows = payload["rows"]
    if not isinstance(rows, (list, dict)):
        raise RequestError(f"'rows' must be a list of records (objects) or of lists in "
                           f"training column order, got {_kind(rows)}", reason="bad_body",
                           field="rows")
    if isinstance(rows, list):
        _check_row_count(len(rows))
    top_k = payload.get("top_k")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)
                              or top_k < 1):
        raise RequestError(f"top_k must be a positive integer or null, got {top_k!r}",
                           reason="bad_top_k", field="top_k")
    flags = {}
    for name, default in (("get_raw", False), ("explain", True)):
        value = payload.get(name, default)
        if not isinstance(value, bool):
            raise RequestError(f"{name} must be true or false, got {value!r}",
                               reason="bad_body", field=name)
        flags[name] = value
    return ScoreRequest(rows, top_k, **flags)


def parse_frame_json(body: bytes | None) -> pd.DataFrame:
    """The seed client's body: ``DataFrame.to_json()`` (any ``orient`` pandas reads)."""
    payload = _json(body)
    if isinstance(payload, dict) and "rows" in payload:
        raise RequestError("/score takes a DataFrame's to_json() body; send "
                           '{"rows": ...} bodies to /predict', reason="bad_body")
    if not isinstance(payload, (dict, list)) or len(payload) == 0:
        raise RequestError("no rows to score: the body must be a non-empty DataFrame.to_json()",
                           reason="empty_input")
    try:
        frame = pd.read_json(io.StringIO(body.decode()), dtype=False)  # no dates
    except ValueError as exc:
        raise RequestError(f"request body is not a DataFrame in JSON: {exc}",
                           reason="bad_body") from None
    _check_row_count(len(frame))
    return frame


def parse_top_k(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        top_k = int(value)
    except ValueError:
        top_k = 0
    if top_k < 1:
        raise RequestError(f"top_k must be a positive integer, got {value!r}",
                           reason="bad_top_k", field="top_k")
    return top_k


def local_response(explanation: Explanation, top_k: int | None) -> dict:
    """The explanation part of a /predict or /explain answer."""
    out = {"local_importance_values": plain(explanation.local_importance_values),
           "expected_values": plain(explanation.expected_values),
           "feature_names": explanation.features, "class_names": plain(explanation.classes),
           "model_output": explanation.model_output}
    if top_k is not None:
        out["top_features"] = ranked(explanation, top_k)
    return out


def ranked(explanation: Explanation, top_k: int) -> list:
    """Per row (per class, then row, for classification) the ``top_k`` features by
    absolute importance as ``{"feature", "value"}``."""
    names = explanation.get_ranked_local_names(top_k)
    values = explanation.get_ranked_local_values(top_k)

    def pair(n: Any, v: Any) -> Any:
        if isinstance(n, list):
            return [pair(a, b) for a, b in zip(n, v, strict=True)]
        return {"feature": n, "value": v}

    return [pair(n, v) for n, v in zip(names, values, strict=True)]


def plain(value: Any) -> Any:
    """numpy to JSON-ready Python; non-finite floats become null."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
