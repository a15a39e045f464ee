"""BentoML's middlewares, amended (service.middlewares): tracing only with an exporter, and
a request timeout whose timer ends with the request."""

from __future__ import annotations

import asyncio
import gc

import pytest
import requests
import uvloop
from bentoml._internal.server.http import traffic
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware

from service.middlewares import TimeoutMiddleware, amend

ROW = {"rows": [[float(i) for i in range(30)]]}


def test_tracing_is_left_out_and_the_timeout_replaced(svc_amortized_server):
    app = Starlette(middleware=[Middleware(OpenTelemetryMiddleware),
                                Middleware(GZipMiddleware, minimum_size=10),
                                Middleware(traffic.TimeoutMiddleware, timeout=60)])
    amend(app)
    assert [(m.cls, m.kwargs) for m in app.user_middleware] == [
        (GZipMiddleware, {"minimum_size": 10}), (TimeoutMiddleware, {"timeout": 60})]
    # served: no span, so no request ID from the tracing middleware's hook
    r = requests.post(svc_amortized_server.url + "/predict", json=ROW, timeout=30)
    assert r.status_code == 200 and "X-BentoML-Request-ID" not in r.headers


@pytest.mark.integration
def test_a_tracing_exporter_keeps_the_tracing_middleware(servers, bundles, bento_home,
                                                         tmp_path):
    config = tmp_path / "bentoml.yaml"
    config.write_text("services:\n  explained_model:\n    tracing:\n"
                      "      exporter_type: in_memory\n      sample_rate: 1.0\n")
    server = servers.start(None, bento_home, tmp_path / "serve.log",
                           bundle=bundles["svc_amortized"].tag,
                           env={"BENTOML_CONFIG": str(config)})
    try:
        r = requests.post(server.url + "/predict", json=ROW, timeout=30)
    finally:
        servers.stop(server)
    assert r.status_code == 200 and "X-BentoML-Request-ID" in r.headers, r.headers


def _serve(middleware: type, requests: int, delay: float = 0.0,
           timeout: float = 60) -> tuple[list[dict], int]:
    """``requests`` requests through ``middleware`` in front of an app answering after
    ``delay`` seconds, on uvloop (the worker's loop): the messages sent, and the loop's
    timer handles still alive afterwards."""
    async def app(scope, receive, send) -> None:
        await asyncio.sleep(delay)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def scenario() -> tuple[list[dict], int]:
        sent: list[dict] = []

        async def send(message: dict) -> None:
            sent.append(message)

        async def receive() -> dict:
            return {"type": "http.request", "body": b""}

        wrapped = middleware(app, timeout=timeout)
        for _ in range(requests):
            await wrapped({"type": "http", "method": "POST", "path": "/predict",
                           "headers": []}, receive, send)
        gc.collect()
        return sent, sum(type(o).__name__ == "TimerHandle" for o in gc.get_objects())

    return uvloop.run(scenario())


def test_the_timeout_timer_ends_with_the_request():
    """BentoML's left one armed timer (and its future) per request for the whole timeout:
    tens of thousands per busy worker, walked by every full garbage collection."""
    _, leftover = _serve(traffic.TimeoutMiddleware, 300)
    assert leftover >= 300
    sent, leftover = _serve(TimeoutMiddleware, 300)
    assert leftover < 10
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [200] * 300


def test_an_answer_not_started_in_time_is_a_504():
    sent, _ = _serve(TimeoutMiddleware, 1, delay=0.5, timeout=0.05)
    start, body = sent
    assert start["status"] == 504
    assert b"Not able to process the request in 0.05 seconds" in body["body"]
