"""An ASGI guard in front of BentoML's app: known routes only, optional bearer token, a
streamed body limit with a deadline and a bound on JSON values, and every refusal in the
service's one error shape, counted."""

from __future__ import annotations

import asyncio
import hmac
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bentoml
from _bentoml_sdk import Service
from bentoml._internal.service.openapi.specification import PathItem
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from service import connections, dashboard, logs, middlewares, sockets, v2_routes
from service.errors import RequestError, safe_text, translate_bentoml_error
from service.limits import MAX_BODY_BYTES, JsonCounts, tensor_budget, timeouts
from service.metrics import REJECTED, endpoint_label
from service.schemas import MAX_ROWS
from service.v2_routes import ServedModel

API_PATHS = frozenset({"/predict", "/explain", "/score", dashboard.ICE_PATH})
# the routes taking JSON bodies: those paths, and the V2 inference's (whose paths name the
# served model: ``ServedModel.paths``)
API_ROUTES = API_PATHS | v2_routes.INFER_ROUTES
# the dashboard's page and scripts hold no data (its JSON views need the token)
PUBLIC_PATHS = (frozenset({"/livez", "/readyz", "/healthz", "/metrics"})
                | dashboard.PUBLIC_PATHS | v2_routes.PUBLIC_PATHS)
KNOWN_PATHS = API_PATHS | PUBLIC_PATHS | dashboard.DATA_PATHS | v2_routes.PATHS | {
    "/", "/docs", "/docs.json", "/schema.json", "/metadata", "/explanation/global"}
# the Open Inference Protocol's binary tensor extension: a body that is not JSON alone
BINARY_TENSORS_HEADER = b"inference-header-content-length"
# BentoML reads form bodies field by field with json.loads (no nesting limit) and fetches
# URLs given for file fields: the API takes JSON only
FORM_TYPES = frozenset({b"multipart/form-data", b"application/x-www-form-urlencoded"})
# headers that say how to read the request or who sends it: the guard and BentoML must read
# the same one (Starlette takes the first of several, a dict the last)
SINGLE_HEADERS = (b"content-type", b"content-length", b"transfer-encoding", b"authorization")


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


def static_routes(app: Any) -> dict[str, str]:
    """Every file the Starlette ``app`` serves from a directory (BentoML's Swagger UI
    scripts and styles), by path, with the template of its route
    (``/static_content/{path}``): a fixed set, read once."""
    routes = {}
    for route in getattr(app, "routes", ()):
        if isinstance(route, Mount) and isinstance(route.app, StaticFiles):
            root = Path(route.app.directory)
            routes.update({f"{route.path}/{file.relative_to(root).as_posix()}":
                           f"{route.path}/{{path}}" for file in root.rglob("*") if file.is_file()})
    return routes


class GuardMiddleware:
    """Refuses before BentoML sees the request: paths no route serves (404; the V2 routes
    of a model other than the ``served_model()``, a version other than its own), repeated
    ``SINGLE_HEADERS`` (400), a missing or wrong bearer token (401) when one is configured,
    bodies over ``max_body`` bytes (413, as soon as the stream passes the limit, with or
    without ``Content-Length``), JSON bodies of the API routes holding more values or
    containers than ``json_budget()`` (413, counted as they stream: :class:`JsonCounts`;
    V2 tensors may nest theirs: :func:`tensor_budget`), binary V2 tensors (415) and bodies
    not received within ``body_timeout`` seconds (408). The body is read whole
    before the app is called. Only known paths reach BentoML, so its metrics, labelled by
    path, get a fixed set of labels.

    BentoML's own 4xx answers on every known route are rewritten into ``{"error", "reason",
    "field"?}``; every 4xx is counted by route (:func:`endpoint_label`) and reason."""

    def __init__(self, app: Any, max_body: int = MAX_BODY_BYTES, token: bytes | None = None,
                 static: dict[str, str] | None = None,
                 json_budget: Callable[[], JsonCounts] | None = None,
                 body_timeout: float | None = None,
                 served_model: Callable[[], ServedModel] | None = None) -> None:
        self.app = app
        self.max_body = max_body
        self.token = token
        self.static = static or {}
        self.json_budget = json_budget
        self.body_timeout = body_timeout
        self.served_model = served_model

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        route = path if path in KNOWN_PATHS else self.static.get(path)
        if route is None and self.served_model is not None and path.startswith("/v2/models/"):
            route = self.served_model().paths.get(path)
            if route is None:
                return await _refuse(send, None, self._no_such_model(path))
        if route is None:
            return await _refuse(send, None, RequestError(
                "no such route; see /docs for the API", reason="not_found", status=404))
        names = [name for name, _ in scope["headers"]]
        repeated = next((n for n in SINGLE_HEADERS if names.count(n) > 1), None)
        if repeated is not None:
            return await _refuse(send, route, RequestError(
                f"the {repeated.decode()} header is repeated; send it once",
                reason="duplicate_header", status=400), close=True)
        headers = dict(scope["headers"])
        if self.token is not None and path not in PUBLIC_PATHS and not _authorized(
                headers.get(b"authorization", b""), self.token):
            return await _refuse(send, route, RequestError(
                "missing or wrong bearer token: send 'Authorization: Bearer <token>'",
                reason="unauthorized", status=401))
        media_type = headers.get(b"content-type", b"").partition(b";")[0].strip().lower()
        if route in API_ROUTES and media_type in FORM_TYPES:
            return await _refuse(send, route, RequestError(
                "form bodies are not accepted; send JSON with 'Content-Type: "
                "application/json'", reason="unsupported_media_type", status=415), close=True)
        if route in API_ROUTES and BINARY_TENSORS_HEADER in headers:
            return await _refuse(send, route, RequestError(
                "binary tensor data (Inference-Header-Content-Length) is not supported; send "
                "the tensors' data as JSON (tritonclient: set_data_from_numpy(array, "
                "binary_data=False))", reason="unsupported_media_type", status=415),
                close=True)
        length = headers.get(b"content-length", b"")
        if length and (not length.isdigit() or int(length) > self.max_body):
            return await _refuse(send, route, self._too_large(), close=True)
        budget = self.json_budget() if self.json_budget and route in API_ROUTES else None
        if budget is not None and route in v2_routes.INFER_ROUTES:
            budget = tensor_budget(budget)
        try:
            body = await self._body(receive, budget)
        except RequestError as error:
            return await _refuse(send, route, error, close=True)
        if body is None:
            return  # the client left before its body ended: nobody to answer
        await self.app(scope, _replay(body, receive), _rewriting(send, route, not body))

    def _no_such_model(self, path: str) -> RequestError:
        model = self.served_model()
        return RequestError(
            f"{safe_text(path, 200)}: no such model, version or route; this server serves "
            f"model {model.name!r} version {model.version!r} (GET /v2/models/{model.name})",
            reason="not_found", status=404)

    def _too_large(self) -> RequestError:
        return RequestError(f"request body is too large; the limit is {self.max_body} bytes",
                            reason="too_large", status=413)

    async def _body(self, receive: Any, budget: JsonCounts | None) -> bytes | None:
        """The request's whole body, read before the app is called, so that a body over a
        limit never reaches it, nor BentoML's metrics and logs: ``RequestError`` for one
        over ``max_body`` bytes, over the JSON ``budget`` or not received within
        ``body_timeout`` seconds; ``None`` when the client left."""
        loop = asyncio.get_running_loop()
        deadline = None if self.body_timeout is None else loop.time() + self.body_timeout
        chunks, size, counts = [], 0, JsonCounts()
        while True:
            try:
                message = await asyncio.wait_for(
                    receive(), None if deadline is None else deadline - loop.time())
            except TimeoutError:
                raise RequestError(
                    f"the request body did not arrive within {self.body_timeout:g} s",
                    reason="body_timeout", status=408) from None
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise self._too_large()
            if budget is not None:
                counts += JsonCounts.of(chunk)
                if not counts.within(budget):
                    raise RequestError(
                        f"the body holds more than {budget.values} JSON values or "
                        f"{budget.containers} arrays and objects (counted by their '[', '{{' "
                        f"and ',' bytes); this model takes at most {MAX_ROWS} rows per "
                        "request", reason="too_many_values", status=413)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive: Any) -> Any:
    """``receive`` for the app: the body the guard read, in one message, then the
    connection's own messages (its disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> dict:
        return pending.pop() if pending else await receive()

    return replay


def _rewriting(send: Any, route: str, empty_body: bool) -> Any:
    """``send`` for the app: its 4xx answers (small bodies, held until complete) rewritten
    into the error shape and counted."""
    held: list[dict] = []

    async def rewriting_send(message: dict) -> None:
        if message["type"] == "http.response.start" and 400 <= message["status"] < 500:
            held.append(message)
            return
        if message["type"] == "http.response.body" and held:
            held.append(message)
            if message.get("more_body"):
                return
            status, body = translate_bentoml_error(
                held[0]["status"], b"".join(m.get("body", b"") for m in held[1:]),
                empty_body=empty_body, path=route)
            _count(route, status, body)
            return await _send_json(send, status, body)
        await send(message)

    return rewriting_send


def _authorized(header: bytes, token: bytes) -> bool:
    scheme, _, given = header.partition(b" ")
    # compare_digest on every request: the time taken does not tell how much matched
    return hmac.compare_digest(given.strip(), token) and scheme.lower() == b"bearer"


async def _refuse(send: Any, route: str | None, error: RequestError,
                  close: bool = False) -> None:
    body = error.to_dict()
    _count(route, error.status, body)
    await _send_json(send, error.status, body, close)


def _count(route: str | None, status: int, body: dict) -> None:
    REJECTED.labels(endpoint_label(route), body["reason"]).inc()
    logs.refused(route, status, body)


async def _send_json(send: Any, status: int, body: dict, close: bool = False) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(payload)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload, "more_body": False})


class GuardedService(Service):
    """BentoML's service as its worker serves it, with what BentoML has no option for:
    :class:`GuardMiddleware` outside its own middlewares (metrics included, so refused and
    unknown paths never reach them), a listening socket of its own
    (:mod:`service.sockets`), uvicorn's connections with a header deadline
    (:mod:`service.connections`), refused requests logged in one line
    (:mod:`service.logs`), BentoML's middlewares amended (:mod:`service.middlewares`) and
    the V2 routes in ``/docs.json``. ``to_asgi`` is BentoML's
    private hook, called by the worker just before it starts uvicorn; ``openapi_spec``
    its property that ``/docs.json`` answers."""

    def to_asgi(self, is_main: bool = True) -> Any:
        limits = timeouts()
        sockets.listen_alone()
        connections.install(limits["SCORING_HEADER_TIMEOUT"])
        logs.install({api.input_spec.__name__ for api in self.apis.values()})
        app = super().to_asgi(is_main=is_main)
        middlewares.amend(app)
        return GuardMiddleware(app, token=api_token(), static=static_routes(app),
                               json_budget=_served_json_budget,
                               body_timeout=limits["SCORING_BODY_TIMEOUT"],
                               served_model=_served_model)

    @property
    def openapi_spec(self) -> Any:
        """BentoML's OpenAPI document of the service (``/docs.json``) with the V2 routes'
        (:func:`service.v2_routes.openapi_paths`)."""
        spec = super().openapi_spec
        paths, schemas = v2_routes.openapi_paths()
        spec.components["schemas"].update(schemas)
        for path, operations in paths.items():
            if path in spec.paths:  # an API's: BentoML's operation, completed
                for method, fields in operations.items():
                    getattr(spec.paths[path], method).update(fields)
            else:
                spec.paths[path] = PathItem(**operations)
        return spec


def _served_json_budget() -> JsonCounts:
    return bentoml.get_current_service().json_budget


def _served_model() -> ServedModel:
    return bentoml.get_current_service().v2_model
