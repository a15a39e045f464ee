"""BentoML's OpenTelemetry middleware, kept only where its spans go somewhere."""

from __future__ import annotations

from typing import Any

from bentoml._internal.configuration.containers import BentoMLContainer


def tracing_exported() -> bool:
    """Whether the service's BentoML configuration names a tracing exporter (zipkin, jaeger,
    otlp...: ``services.explained_model.tracing.exporter_type`` in ``BENTOML_CONFIG``'s
    file), as the worker reads it once BentoML merged the service's configuration."""
    return BentoMLContainer.tracing.exporter_type.get() is not None


def drop_unexported_tracing(app: Any) -> None:
    """Take BentoML's OpenTelemetry middleware out of the Starlette ``app`` (before its
    first request builds the middleware stack) unless :func:`tracing_exported`: without an
    exporter its spans go nowhere, yet opening and closing them (request, body and answer
    messages) cost more of a cheap request's CPU than the model call."""
    if tracing_exported():
        return
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    app.user_middleware = [middleware for middleware in app.user_middleware
                           if middleware.cls is not OpenTelemetryMiddleware]
