"""An ASGI guard in front of BentoML's app: known routes only, optional bearer token, a
streamed body limit, and every refusal in the service's one error shape, counted."""

from __future__ import annotations

import hmac
import json
import os
from pathlib import Path
from typing import Any

from _bentoml_sdk import Service

from service import dashboard
from service.errors import RequestError, translate_bentoml_error
from service.lifecycle import logger
from service.metrics import REJECTED, endpoint_label

MAX_BODY_BYTES = 8 * 1024 * 1024
API_PATHS = frozenset({"/predict", "/explain", "/score", dashboard.ICE_PATH})
# the dashboard's page and scripts hold no data (its JSON views need the token)
PUBLIC_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics"}) | dashboard.PUBLIC_PATHS
KNOWN_PATHS = API_PATHS | PUBLIC_PATHS | dashboard.DATA_PATHS | {
    "/", "/docs", "/docs.json", "/schema.json", "/metadata", "/explanation/global"}
# BentoML's Swagger UI assets
KNOWN_PREFIXES = ("/static_content/", "/assets/")
# BentoML reads form bodies field by field with json.loads (no nesting limit) and fetches
# URLs given for file fields: the API takes JSON only
FORM_TYPES = frozenset({b"multipart/form-data", b"application/x-www-form-urlencoded"})


def api_token() -> bytes | None:
    """The bearer token from ``SCORING_API_TOKEN``, or the file ``SCORING_API_TOKEN_FILE``
    names (a mounted secret); ``None`` when neither is set. A file named but missing or
    empty is an error (``RuntimeError``): the service will not serve without the token it
    was told to require."""
    token = os.environ.get("SCORING_API_TOKEN", "").strip()
    path = os.environ.get("SCORING_API_TOKEN_FILE", "")
    if not token and path:
        try:
            token = Path(path).read_text().strip()
        except OSError as exc:
            raise RuntimeError(f"SCORING_API_TOKEN_FILE={path}: cannot read the token: "
                               f"{exc.strerror}") from None
        if not token:
            raise RuntimeError(f"SCORING_API_TOKEN_FILE={path} is empty")
    return token.encode() if token else None


def check_api_token() -> None:
    """:func:`api_token`, or a clean exit with one log line."""
    try:
        api_token()
    except RuntimeError as exc:
        logger.critical("not serving: %s", exc)
        raise SystemExit(str(exc)) from None


class GuardMiddleware:
    """Refuses before BentoML sees the request: unknown paths (404, so they create no
    metric series), a missing or wrong bearer token (401) when one is configured, and
    bodies over ``max_body`` bytes (413, as soon as the stream passes the limit, with or
    without ``Content-Length``). BentoML's own 4xx answers on every known route are rewritten
    into ``{"error", "reason", "field"?}``; every 4xx is counted by endpoint and reason."""

    def __init__(self, app: Any, max_body: int = MAX_BODY_BYTES,
                 token: bytes | None = None) -> None:
        self.app = app
        self.max_body = max_body
        self.token = token

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if path not in KNOWN_PATHS and not path.startswith(KNOWN_PREFIXES):
            return await _refuse(send, "unknown", RequestError(
                "no such route; see /docs for the API", reason="not_found", status=404))
        headers = dict(scope["headers"])
        if self.token is not None and path not in PUBLIC_PATHS and not _authorized(
                headers.get(b"authorization", b""), self.token):
            return await _refuse(send, path, RequestError(
                "missing or wrong bearer token: send 'Authorization: Bearer <token>'",
                reason="unauthorized", status=401))
        media_type = headers.get(b"content-type", b"").partition(b";")[0].strip().lower()
        if path in API_PATHS and media_type in FORM_TYPES:
            return await _refuse(send, path, RequestError(
                "form bodies are not accepted; send JSON with 'Content-Type: "
                "application/json'", reason="unsupported_media_type", status=415), close=True)
        length = headers.get(b"content-length", b"")
        if length and (not length.isdigit() or int(length) > self.max_body):
            return await _refuse(send, path, self._too_large(), close=True)
        await self.app(scope, *self._guarded(scope, receive, send, path))

    def _too_large(self) -> RequestError:
        return RequestError(f"request body is too large; the limit is {self.max_body} bytes",
                            reason="too_large", status=413)

    def _guarded(self, scope: dict, receive: Any, send: Any, path: str) -> tuple:
        state = {"received": 0, "answered": False, "started": False, "held": None,
                 "chunks": []}

        async def limited_receive() -> dict:
            if state["answered"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_body:
                    if not state["started"]:
                        state["answered"] = True
                        await _refuse(send, path, self._too_large(), close=True)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: dict) -> None:
            if state["answered"]:
                return  # answered 413 already: drop what the app sends after its disconnect
            if message["type"] == "http.response.start":
                state["started"] = True
                if 400 <= message["status"] < 500:
                    state["held"] = message  # small error bodies: rewrite once complete
                    return
                return await send(message)
            if message["type"] == "http.response.body" and state["held"] is not None:
                state["chunks"].append(message.get("body", b""))
                if message.get("more_body"):
                    return
                status, body = translate_bentoml_error(
                    state["held"]["status"], b"".join(state["chunks"]),
                    empty_body=state["received"] == 0, path=path)
                REJECTED.labels(endpoint_label(path), body["reason"]).inc()
                return await _send_json(send, status, body)
            await send(message)

        return limited_receive, guarded_send


def _authorized(header: bytes, token: bytes) -> bool:
    scheme, _, given = header.partition(b" ")
    # compare_digest on every request: the time taken does not tell how much matched
    return hmac.compare_digest(given.strip(), token) and scheme.lower() == b"bearer"


async def _refuse(send: Any, path: str, error: RequestError, close: bool = False) -> None:
    REJECTED.labels(endpoint_label(path), error.reason).inc()
    await _send_json(send, error.status, error.to_dict(), close)


async def _send_json(send: Any, status: int, body: dict, close: bool = False) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(payload)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload, "more_body": False})


class GuardedService(Service):
    """BentoML's service with :class:`GuardMiddleware` outside its own middlewares
    (metrics included, so refused and unknown paths never reach them)."""

    def to_asgi(self, is_main: bool = True) -> Any:
        return GuardMiddleware(super().to_asgi(is_main=is_main), token=api_token())
