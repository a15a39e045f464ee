"""BentoML service: a model's predictions with per-row explanations from a saved bundle."""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from typing import Any

import bentoml
import numpy as np
from prometheus_client import Counter, Histogram
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from scoring.bundle import BundleError, ExplanationBundle
from scoring.explanation import Explanation
from scoring.input_schema import InputError
from service.http import (
    MAX_BODY_BYTES,
    RequestError,
    local_response,
    parse_frame_json,
    parse_score_request,
    parse_top_k,
    plain,
)

BUNDLE_TAG = os.environ.get("SCORING_BUNDLE", "breast_cancer_svc:latest")
logger = logging.getLogger("bentoml.scoring")

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                    5, 10)
_ROW_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
PREDICT_SECONDS = Histogram("scoring_predict_seconds", "Model prediction time per request",
                            ["endpoint", "explainer"], buckets=_LATENCY_BUCKETS)
EXPLAIN_SECONDS = Histogram("scoring_explain_seconds", "Local explanation time per request",
                            ["endpoint", "explainer"], buckets=_LATENCY_BUCKETS)
REQUEST_ROWS = Histogram("scoring_request_rows", "Rows per accepted request", ["endpoint"],
                         buckets=_ROW_BUCKETS)
REJECTED = Counter("scoring_rejected_requests_total", "Requests refused with a 4xx",
                   ["endpoint", "reason"])


class RawBody(bentoml.IODescriptor):
    """The request body as bytes: the service validates it (one error format, counted).
    A body announced larger than the limit is not read (``body`` is then ``None``)."""

    body: bytes | None = b""

    @classmethod
    async def from_http_request(cls, request: Request, serde: Any) -> RawBody:
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            return cls.model_construct(body=None)
        return cls.model_construct(body=await request.body())


def _load_bundle(tag: str) -> ExplanationBundle:
    """The bundle, loaded and self-checked; exits with a clear log line otherwise."""
    try:
        bundle = ExplanationBundle.load(tag)
        bundle.self_check()
    except BundleError as exc:
        message = f"scoring bundle {tag} failed its checks; not serving: {exc}"
        logger.critical(message)
        raise SystemExit(message) from None
    return bundle


@contextmanager
def _model_errors():
    """Valid-looking rows the model itself refuses (say, a category its encoder has never
    seen with ``handle_unknown="error"``) are the client's problem: 400, not 500."""
    try:
        yield
    except ValueError as exc:
        raise RequestError(f"the model could not score these rows: {exc}",
                           reason="model_rejected_input") from None


async def _global_explanation(request: Request) -> JSONResponse:
    return bentoml.get_current_service().global_explanation(
        request.query_params.get("top_k"))


async def _metadata(request: Request) -> JSONResponse:
    return JSONResponse(plain(bentoml.get_current_service().bundle.metadata()))


_routes = Starlette(routes=[Route("/explanation/global", _global_explanation, methods=["GET"]),
                            Route("/metadata", _metadata, methods=["GET"])])


@bentoml.asgi_app(_routes, path="/")
# BentoML's default request-duration buckets are too coarse below a second, where this
# service lives: p99 read from them was 1.4-1.8x the load generator's
@bentoml.service(name="explained_model", workers=1, traffic={"timeout": 60},
                 metrics={"duration": {"buckets": [float(b) for b in _LATENCY_BUCKETS]
                                       + [30.0, 60.0]}})
class ExplainedModel:
    """Predictions and local feature importances of the model in ``SCORING_BUNDLE``."""

    bundle_model = bentoml.models.BentoModel(BUNDLE_TAG)

    @bentoml.on_deployment
    def check_bundle() -> None:
        """Runs once in ``bentoml serve`` before any worker: a bundle that fails its checks
        stops the server (exit status 1) instead of a worker crash loop."""
        _load_bundle(BUNDLE_TAG)

    def __init__(self) -> None:
        self.ready = False
        self.bundle = _load_bundle(str(self.bundle_model.tag))
        self.explainer_kind = self.bundle.scoring_explainer.method
        logger.info("serving scoring bundle %s (%s explainer)", self.bundle.tag,
                    self.explainer_kind)
        self.ready = True

    def __is_ready__(self) -> bool:
        return self.ready

    # -- endpoints ---------------------------------------------------------------------
    @bentoml.api(route="/predict", input_spec=RawBody)
    def predict(self, body: bytes | None) -> dict:
        """``{"rows", "top_k", "get_raw", "explain"}`` -> predictions and importances."""
        return self._handle("predict", body, predictions=True)

    @bentoml.api(route="/explain", input_spec=RawBody)
    def explain(self, body: bytes | None) -> dict:
        """As /predict, importances only."""
        return self._handle("explain", body, predictions=False)

    @bentoml.api(route="/score", input_spec=RawBody)
    def score(self, body: bytes | None) -> dict:
        """The seed's ``run(raw_data)``: a ``DataFrame.to_json()`` body."""
        try:
            rows = self._validate("score", parse_frame_json(body))
            with _model_errors():
                out, probabilities = self._predictions("score", rows)
                explanation = self._explain("score", rows, False, probabilities)
        except RequestError as exc:
            return self._reject("score", exc)
        return JSONResponse({"predictions": out["predictions"],
                             "local_importance_values":
                                 plain(explanation.local_importance_values)})

    def global_explanation(self, top_k: str | None) -> JSONResponse:
        glob = self.bundle.global_explanation
        try:
            top_k = parse_top_k(top_k)
        except RequestError as exc:
            return self._reject("explanation_global", exc)
        if glob is None:
            return JSONResponse({"error": "this bundle has no stored global explanation",
                                 "reason": "no_global_explanation"}, status_code=404)
        importance = glob.get_feature_importance_dict(top_k)
        return JSONResponse({"feature_names": list(importance),
                             "global_importance_values": plain(list(importance.values())),
                             "expected_values": plain(glob.expected_values),
                             "class_names": glob.classes, "method": glob.method,
                             "model_output": glob.model_output, "raw": glob.raw,
                             "n_rows": glob.extra.get("n_rows")})

    # -- steps -------------------------------------------------------------------------
    def _handle(self, endpoint: str, body: bytes | None, predictions: bool) -> JSONResponse:
        try:
            request = parse_score_request(body)
            if request.get_raw and not self.bundle.has_transformations:
                raise RequestError("get_raw=true needs a bundle fitted with transformations; "
                                   "this model's features are already raw",
                                   reason="get_raw_unavailable", field="get_raw")
            rows = self._validate(endpoint, request.rows)
            with _model_errors():
                out, probabilities = self._predictions(endpoint, rows) if predictions \
                    else ({}, None)
                if request.explain or not predictions:
                    explanation = self._explain(endpoint, rows, request.get_raw, probabilities)
                    out.update(local_response(explanation, request.top_k))
        except RequestError as exc:
            return self._reject(endpoint, exc)
        return JSONResponse(out)

    def _validate(self, endpoint: str, data: Any) -> Any:
        try:
            rows = self.bundle.validate(data)
        except InputError as exc:
            raise RequestError(str(exc), reason=exc.reason, row=exc.row,
                               field=exc.field) from None
        REQUEST_ROWS.labels(endpoint).observe(len(rows))
        return rows

    def _predictions(self, endpoint: str, rows: Any) -> tuple[dict, np.ndarray | None]:
        started = time.perf_counter()
        predictions, probabilities = self.bundle.predict(rows)
        PREDICT_SECONDS.labels(endpoint, self.explainer_kind).observe(
            time.perf_counter() - started)
        out = {"predictions": plain(predictions)}
        if probabilities is not None:
            out["probabilities"] = plain(probabilities)
        return out, probabilities

    def _explain(self, endpoint: str, rows: Any, get_raw: bool,
                 probabilities: np.ndarray | None) -> Explanation:
        started = time.perf_counter()
        explanation = self.bundle.explain(rows, get_raw=get_raw, probabilities=probabilities)
        EXPLAIN_SECONDS.labels(endpoint, self.explainer_kind).observe(
            time.perf_counter() - started)
        return explanation

    def _reject(self, endpoint: str, exc: RequestError) -> JSONResponse:
        REJECTED.labels(endpoint, exc.reason).inc()
        logger.info("rejected %s request (%s): %s", endpoint, exc.reason, exc)
        return exc.response()
