"""The one error shape of the service, and BentoML's own 4xx bodies translated into it."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse

from scoring.model.schema import InputError
from service.schemas import MAX_ROWS, ExplainRequest, PredictRequest
from service.v2_schemas import (
    InferenceRequest,
    InferParameters,
    OutputParameters,
    RequestedOutput,
    RequestInput,
)


class RequestError(InputError):
    """A request the service refuses: an :class:`~scoring.InputError` with an HTTP
    ``status``; its body is ``{"error", "reason", "row"?, "field"?}``."""

    def __init__(self, message: str, *, reason: str, status: int = 400,
                 row: int | None = None, field: str | None = None) -> None:
        super().__init__(message, row=row, field=field, reason=reason)
        self.status = status

    @classmethod
    def from_input_error(cls, exc: InputError) -> RequestError:
        return cls(str(exc), reason=exc.reason, row=exc.row, field=exc.field)

    def to_dict(self) -> dict:
        """The body, every text safe to encode and short, whatever the request held."""
        out = super().to_dict()
        out["error"] = safe_text(out["error"], MAX_ERROR_CHARS)
        if "field" in out:
            out["field"] = safe_text(out["field"], MAX_FIELD_CHARS)
        return out

    def response(self) -> JSONResponse:
        return JSONResponse(self.to_dict(), status_code=self.status)


# the body fields each JSON API accepts, from its request schema
_FIELDS = {"/predict": list(PredictRequest.model_fields),
           "/explain": list(ExplainRequest.model_fields)}
# the V2 inference body's objects, by where they are in it (list indexes left out)
_V2_MODELS = {(): InferenceRequest, ("parameters",): InferParameters, ("inputs",): RequestInput,
              ("outputs",): RequestedOutput, ("outputs", "parameters"): OutputParameters}
_V2_REASONS = {"top_k": "bad_top_k", "shape": "bad_shape"}
_STATUS_REASONS = {404: "not_found", 405: "method_not_allowed"}
_STATUS_TEXTS = {404: "no such resource; see /docs for the API",
                 405: "method not allowed on this route; see /docs for the API"}
MAX_ERROR_CHARS = 2000
MAX_FIELD_CHARS = 200


def translate_bentoml_error(status: int, raw: bytes, empty_body: bool = False,
                            path: str = "/predict") -> tuple[int, dict]:
    """BentoML's own 4xx answer (``status``, body ``raw``) to a request on ``path`` as
    ``(status, our body)``.

    BentoML answers a pydantic ``ValidationError`` on the request body with 400 ``{"error":
    "N validation error...", "detail": [pydantic errors]}`` and other refusals with
    ``[{"error": ...}]``; ``empty_body``: the request had no body at all (BentoML reads it
    as ``{}``).
    """
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]
    # our own refusals (a 404 of a route that exists, say) pass as they are
    if isinstance(data, dict) and "reason" in data and "error" in data:
        return status, data
    if status in _STATUS_REASONS:  # Starlette's plain-text answers on known routes
        return status, _body(_STATUS_TEXTS[status], _STATUS_REASONS[status])
    if data is None:
        return status, _body(raw.decode("utf-8", "replace")[:200] or "bad request", "bad_body")
    if not isinstance(data, dict):
        return status, _body(str(data)[:200], "bad_body")
    if status == 415:
        return status, _body(str(data.get("error")), "unsupported_media_type")
    details = data.get("detail")
    if not isinstance(details, list) or not details:
        return status, _body(str(data.get("error", "bad request")), "bad_body")
    v2 = path.startswith("/v2/")  # the Open Inference Protocol's inference
    if empty_body:
        example = '{"inputs": [...]}' if v2 else '{"rows": [[...]]}'
        return 400, _body(f"empty request body; send a JSON object such as {example}",
                          "invalid_json")
    # an unknown field explains a missing one (a typo): name it first
    detail = min(details, key=lambda d: d.get("type") != "extra_forbidden")
    # BentoML leaves the offending input out of the details
    message = detail.get("msg", "invalid request")
    if detail.get("type") == "json_invalid":
        reason = "json_too_deep" if "recursion" in message.lower() else "invalid_json"
        return 400, _body(f"request body is not valid JSON: {message}", reason)
    if v2:
        return _from_v2_pydantic(detail)
    return _from_pydantic(detail, _FIELDS.get(path, _FIELDS["/predict"]))


def _from_v2_pydantic(detail: dict) -> tuple[int, dict]:
    kind, loc = detail.get("type", ""), list(detail.get("loc") or ())
    names = [safe_text(part, MAX_FIELD_CHARS) for part in loc if isinstance(part, str)]
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{safe_text(part, 60)}"
                    for part in loc).lstrip(".")
    if not loc:
        return 400, _body("request body must be a JSON object with an 'inputs' list of "
                          "tensors", "bad_body")
    if kind == "extra_forbidden":
        accepted = list(_V2_MODELS.get(tuple(names[:-1]), InferenceRequest).model_fields)
        return 400, _body(f"unknown field {where!r} in the request body; accepted fields "
                          f"there are {accepted}", "bad_body", where)
    if kind == "missing":
        return 400, _body(f"the request body has no {where!r} field", "bad_body", where)
    message = detail.get("msg", "invalid value")
    return 400, _body(f"{where}: {message}", _V2_REASONS.get(names[-1], "bad_body"), where)


def _from_pydantic(detail: dict, fields: list[str]) -> tuple[int, dict]:
    kind, loc = detail.get("type", ""), list(detail.get("loc") or ())
    message = detail.get("msg", "invalid request")
    if not loc:
        return 400, _body("request body must be a JSON object with a 'rows' field",
                          "bad_body")
    field = safe_text(loc[0])
    if kind == "extra_forbidden":
        return 400, _body(f"unknown field {field!r} in the request body; accepted fields are "
                          f"{fields}", "bad_body", field)
    if kind == "missing":
        return 400, _body(f"the request body has no {field!r} field", "bad_body", field)
    if field == "rows":
        if kind == "too_long":
            return 413, _body(f"too many rows in one request; the limit is {MAX_ROWS} rows "
                              "per request", "too_many_rows", field)
        return 400, _body("'rows' must be a list of records (objects) or of lists in "
                          f"training column order: {message}", "bad_body", field)
    if field == "top_k":
        return 400, _body(f"top_k must be a positive integer or null: {message}",
                          "bad_top_k", field)
    return 400, _body(f"{field} must be true or false: {message}", "bad_body", field)


def _body(message: str, reason: str, field: str | None = None) -> dict:
    return RequestError(message, reason=reason, field=field).to_dict()


def safe_text(value: Any, limit: int | None = None) -> str:
    """``value`` as text that encodes to UTF-8 whatever it held (lone surrogates are
    escaped), cut to ``limit`` characters."""
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8")
    if limit is not None and len(text) > limit:
        text = f"{text[:limit]}... ({len(text)} characters)"
    return text
