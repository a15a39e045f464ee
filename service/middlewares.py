"""BentoML's middlewares in front of the APIs, amended: its tracing only where the spans go
somewhere, and its request timeout with a timer that ends with the request."""

from __future__ import annotations

import asyncio
from typing import Any

from bentoml._internal.configuration.containers import BentoMLContainer
from bentoml._internal.server.http import traffic
from starlette.middleware import Middleware
from starlette.responses import JSONResponse


def tracing_exported() -> bool:
    """Whether the service's BentoML configuration names a tracing exporter (zipkin, jaeger,
    otlp...: ``services.explained_model.tracing.exporter_type`` in ``BENTOML_CONFIG``'s
    file), as the worker reads it once BentoML merged the service's configuration."""
    return BentoMLContainer.tracing.exporter_type.get() is not None


class TimeoutMiddleware(traffic.TimeoutMiddleware):
    """BentoML's: a 504 when the app has not started its answer within ``timeout`` seconds;
    its timer cancelled once the request is over. BentoML's stayed armed for the whole
    timeout after the answer, holding its future: tens of thousands per busy worker, which
    every full garbage collection walked, stalling the requests in flight."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        timer = loop.call_later(self.timeout, self._set_timer_out, waiter)

        async def _send(message: Any) -> None:
            if not waiter.done():
                waiter.set_result(None)
            await send(message)

        answer = asyncio.ensure_future(self.app(scope, receive, _send))
        try:
            await waiter
        except TimeoutError:
            if answer.cancel():
                await JSONResponse(
                    {"error": f"Not able to process the request in {self.timeout} seconds"},
                    status_code=504)(scope, receive, send)
        else:
            await answer
        finally:
            timer.cancel()


def amend(app: Any) -> None:
    """Amend the middlewares of BentoML's Starlette ``app`` (before its first request
    builds the stack): its OpenTelemetry middleware taken out unless
    :func:`tracing_exported` (without an exporter its spans go nowhere, yet opening and
    closing them cost more of a cheap request's CPU than the model call), its
    ``TimeoutMiddleware`` replaced by :class:`TimeoutMiddleware`."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    amended = []
    for middleware in app.user_middleware:
        if middleware.cls is OpenTelemetryMiddleware and not tracing_exported():
            continue
        if middleware.cls is traffic.TimeoutMiddleware:
            middleware = Middleware(TimeoutMiddleware, *middleware.args, **middleware.kwargs)
        amended.append(middleware)
    app.user_middleware = amended
