"""HTTP routes of the explanation dashboard: the page and its scripts (public), and the
JSON views it draws (behind the bearer token when one is set), each a call into
:mod:`scoring.dashboard`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import bentoml
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from scoring.dashboard import DashboardData, ice_curve
from scoring.dashboard.data import (
    DEFAULT_GRID_POINTS,
    DEFAULT_MAX_POINTS,
    DEFAULT_SUMMARY_POINTS,
    DEFAULT_TOP_K,
)
from scoring.dashboard.page import dashboard_js, page_html, plotly_js, plotly_license
from scoring.model.schema import InputError
from service.errors import RequestError
from service.payloads import parse_json
from service.query import query_integer

PAGE_PATH = "/dashboard"
ASSET_PATHS = {"/dashboard/plotly.min.js": ("application/javascript", plotly_js),
               "/dashboard/dashboard.js": ("application/javascript", dashboard_js),
               "/dashboard/plotly-LICENSE.txt": ("text/plain", plotly_license)}
# the page and its scripts hold no data: served without the token, so a browser can open
# the page and then give the token to its own requests
PUBLIC_PATHS = frozenset({PAGE_PATH, *ASSET_PATHS})
ICE_PATH = "/dashboard/api/ice"
DATA_PATHS = frozenset({"/dashboard/api/summary", "/dashboard/api/importance",
                        "/dashboard/api/points", "/dashboard/api/summary_points",
                        "/dashboard/api/row", ICE_PATH})
NO_DATA = ("this service has no explained rows for its dashboard: rebuild the bundle with "
           "`scoring distill`/`scoring demo` (they store --dashboard-rows rows), or set "
           "SCORING_DASHBOARD_EXPLANATION to a file of `scoring explain --output FILE.json`")


async def _page(request: Request) -> HTMLResponse:
    return HTMLResponse(page_html())


async def _asset(request: Request) -> Response:
    media_type, content = ASSET_PATHS[request.url.path]
    # the scripts change only with the installed packages: let the browser keep them
    return Response(content(), media_type=media_type,
                    headers={"cache-control": "public, max-age=3600"})


def _data() -> DashboardData:
    data = bentoml.get_current_service().dashboard
    if data is None:
        raise RequestError(NO_DATA, reason="no_dashboard_data", status=404)
    return data


def _int(request: Request, name: str, default: int | None = None) -> int | None:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    value = query_integer(text)
    if value is None:
        raise RequestError(f"{name} must be a non-negative integer of at most 9 digits "
                           f"0-9, got {text[:40]!r}", reason="bad_query", field=name)
    return value


def _answer(compute: Callable[[], dict]) -> JSONResponse:
    """``compute``'s answer as JSON, its refusals in the service's error shape."""
    try:
        return JSONResponse(compute())
    except RequestError as exc:
        return exc.response()
    except InputError as exc:
        return RequestError.from_input_error(exc).response()


def _view(compute: Callable[[Request], dict]) -> Callable[[Request], JSONResponse]:
    """A GET view. Sync, so Starlette runs it in its thread pool, off the event loop."""
    def endpoint(request: Request) -> JSONResponse:
        return _answer(lambda: compute(request))
    return endpoint


def _summary(request: Request) -> dict:
    return _data().summary()


def _importance(request: Request) -> dict:
    return _data().global_importance(_int(request, "output"), _int(request, "top_k"))


def _points(request: Request) -> dict:
    query = request.query_params
    if "x" not in query or "y" not in query:
        raise RequestError("points needs x and y: 'output', 'value:FEATURE' or "
                           "'importance:FEATURE'", reason="bad_axis",
                           field="y" if "x" in query else "x")
    return _data().points(query["x"], query["y"], query.get("color"), _int(request, "output", 0),
                          _int(request, "max_points", DEFAULT_MAX_POINTS))


def _summary_points(request: Request) -> dict:
    return _data().summary_points(_int(request, "output", 0), _int(request, "top_k", DEFAULT_TOP_K),
                                  _int(request, "max_points", DEFAULT_SUMMARY_POINTS))


def _row(request: Request) -> dict:
    row = _int(request, "row")
    if row is None:
        raise RequestError("row is required: ?row=N", reason="bad_row", field="row")
    return _data().row(row)


def _ice_curve(body: Any) -> dict:
    if not isinstance(body, dict) or not isinstance(body.get("feature"), str):
        raise RequestError('send {"row": {feature: value}, "feature": name, "n_points"?: n}',
                           reason="bad_body")
    return ice_curve(bentoml.get_current_service().bundle, _data(), body.get("row"),
                     body["feature"], body.get("n_points", DEFAULT_GRID_POINTS))


async def _ice(request: Request) -> JSONResponse:
    try:
        body = parse_json(await request.body())
    except RequestError as exc:
        return exc.response()
    # the model runs on the grid: off the event loop
    return await run_in_threadpool(_answer, lambda: _ice_curve(body))


routes = [Route(PAGE_PATH, _page, methods=["GET"]),
          *(Route(path, _asset, methods=["GET"]) for path in ASSET_PATHS),
          Route("/dashboard/api/summary", _view(_summary), methods=["GET"]),
          Route("/dashboard/api/importance", _view(_importance), methods=["GET"]),
          Route("/dashboard/api/points", _view(_points), methods=["GET"]),
          Route("/dashboard/api/summary_points", _view(_summary_points), methods=["GET"]),
          Route("/dashboard/api/row", _view(_row), methods=["GET"]),
          Route(ICE_PATH, _ice, methods=["POST"])]
