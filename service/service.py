"""BentoML service: a model's predictions with per-row explanations from a saved bundle."""

from __future__ import annotations

import os
from typing import Any

import bentoml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

from scoring.dashboard import dashboard_data
from scoring.model.rows import n_rows
from scoring.model.schema import InputError
from service import dashboard, v2_routes
from service.dispatch import (
    INLINE_SETTING,
    ScoringDispatch,
    inline_rows_setting,
    measured_inline_rows,
)
from service.errors import RequestError
from service.guard import GuardedService, api_token
from service.lifecycle import (
    BUNDLE_TAG,
    DASHBOARD_EXPLANATION,
    SERVICE_NAME,
    attribution_monitor,
    check_dashboard_data,
    check_setting,
    freeze_loaded_objects,
    load_bundle,
    logger,
)
from service.limits import json_budget, timeouts
from service.logs import ACCESS_LOG, access_log_enabled
from service.metrics import (
    EXPLAIN_SECONDS,
    LATENCY_BUCKETS,
    PREDICT_SECONDS,
    REQUEST_ROWS,
    AttributionMetrics,
)
from service.payloads import frame_from_json, scoring_response
from service.query import query_integer
from service.schemas import (
    ExplainRequest,
    Frame,
    GetRaw,
    PredictRequest,
    Rows,
    ScoreResponse,
    ScoringResponse,
    TopK,
)
from service.sockets import reuse_port
from service.v2_outputs import OutputSelection, response_parameters
from service.v2_routes import ServedModel
from service.v2_schemas import (
    InferenceRequest,
    InferenceResponse,
    InferParameters,
    RequestedOutput,
    RequestInput,
)
from service.v2_tensors import declared_rows, rows_from_inputs
from service.workers import serving_workers

try:
    WORKERS = serving_workers()
except RuntimeError:
    WORKERS = 1  # check_bundle refuses the setting before any worker starts


async def _global_explanation(request: Request) -> JSONResponse:
    return bentoml.get_current_service().global_explanation(
        request.query_params.get("top_k"))


async def _metadata(request: Request) -> JSONResponse:
    return JSONResponse(bentoml.get_current_service().bundle.metadata())


async def _docs(request: Request) -> RedirectResponse:
    # BentoML serves its Swagger UI at "/"; relative, so it holds behind a path prefix
    return RedirectResponse("./", status_code=307)


_routes = Starlette(routes=[Route("/explanation/global", _global_explanation, methods=["GET"]),
                            Route("/metadata", _metadata, methods=["GET"]),
                            Route("/docs", _docs, methods=["GET"]),
                            *dashboard.routes, *v2_routes.routes])


@bentoml.asgi_app(_routes, path="/")
# BentoML's default request-duration buckets are too coarse below a second, where this
# service lives
@bentoml.service(name=SERVICE_NAME, service_class=GuardedService, workers=WORKERS,
                 traffic={"timeout": 60}, logging={"access": {"enabled": access_log_enabled()}},
                 metrics={"duration": {"buckets": [float(b) for b in LATENCY_BUCKETS]
                                       + [30.0, 60.0]}})
class ExplainedModel:
    """Predictions and local feature importances of the model in ``SCORING_BUNDLE``."""

    bundle_model = bentoml.models.BentoModel(BUNDLE_TAG)

    @bentoml.on_deployment
    def check_bundle() -> None:
        """Runs once in ``bentoml serve`` before any worker: a bundle that fails its checks
        stops the server (exit status 1) instead of a worker crash loop; so does a token
        file that cannot be read, a bad monitoring, worker or timeout setting, or an
        unreadable dashboard explanation file."""
        bundle = load_bundle(BUNDLE_TAG)
        attribution_monitor(bundle)
        check_dashboard_data(bundle)
        check_setting(api_token)
        check_setting(timeouts)
        check_setting(serving_workers)
        check_setting(inline_rows_setting)

    @bentoml.on_deployment
    def spread_connections() -> None:
        """Runs once in ``bentoml serve`` before it binds its HTTP socket: each worker will
        listen on a socket of its own, which the kernel spreads connections over
        (:mod:`service.sockets`)."""
        reuse_port()

    def __init__(self) -> None:
        self.bundle = load_bundle(str(self.bundle_model.tag))
        self.method = self.bundle.scoring_explainer.method
        # what the guard lets a JSON body hold (service.limits): the model's width decides
        self.json_budget = json_budget(self.bundle.feature_names,
                                       self.bundle.input_schema.categories)
        monitor = attribution_monitor(self.bundle)
        self.attribution = None if monitor is None else AttributionMetrics(monitor)
        # what GET /dashboard draws: SCORING_DASHBOARD_EXPLANATION's file, else the bundle's
        # stored explained rows (checked before serving by check_bundle)
        self.dashboard = dashboard_data(self.bundle, os.environ.get(DASHBOARD_EXPLANATION))
        # the bundle as the Open Inference Protocol (KServe V2) names and describes it
        self.v2_model = ServedModel.of(self.bundle)
        inline_rows = inline_rows_setting()
        if inline_rows is None:
            inline_rows = measured_inline_rows(self.bundle)
        self.dispatch = ScoringDispatch(inline_rows)
        # WARNING: the one start-up line an operator sees at the level that keeps refusals
        logger.warning("serving scoring bundle %s (%s explainer); requests of up to %d "
                       "row(s) scored on the event loop (%s); access log %s",
                       self.bundle.tag, self.method, inline_rows, INLINE_SETTING,
                       "on" if access_log_enabled() else f"off ({ACCESS_LOG}=1 turns it on)")
        freeze_loaded_objects()

    @bentoml.api(route="/predict", input_spec=PredictRequest)
    async def predict(self, rows: Rows, top_k: TopK = None, get_raw: GetRaw = None,
                      explain: bool = True) -> ScoringResponse:
        """Predictions, probabilities and the local importances behind them."""
        return await self.dispatch.run(n_rows(rows), lambda: self._answer(
            "predict", rows, top_k, get_raw, explain, predict=True))

    @bentoml.api(route="/explain", input_spec=ExplainRequest)
    async def explain(self, rows: Rows, top_k: TopK = None,
                      get_raw: GetRaw = None) -> ScoringResponse:
        """As /predict, importances only."""
        return await self.dispatch.run(n_rows(rows), lambda: self._answer(
            "explain", rows, top_k, get_raw, True, predict=False))

    @bentoml.api(route="/score")
    async def score(self, frame: Frame, /) -> ScoreResponse:
        """The seed's ``run(raw_data)``: a ``DataFrame.to_json()`` body."""
        try:
            rows = frame_from_json(frame.root, self.bundle.feature_names)
        except RequestError as exc:
            return exc.response()
        return await self.dispatch.run(n_rows(rows), lambda: self._answer_frame(rows))

    @bentoml.api(route=v2_routes.INFER, input_spec=InferenceRequest)
    async def v2_infer(self, inputs: list[RequestInput], id: str | None = None,
                       model_name: str | None = None,
                       parameters: InferParameters | None = None,
                       outputs: list[RequestedOutput] | None = None) -> InferenceResponse:
        """The Open Inference Protocol's (KServe V2) inference: /predict's, as tensors."""
        return await self.dispatch.run(declared_rows(inputs), lambda: self._v2_answer(
            inputs, id, model_name, parameters, outputs))

    @bentoml.api(route=v2_routes.INFER_VERSION, input_spec=InferenceRequest)
    async def v2_infer_version(self, inputs: list[RequestInput], id: str | None = None,
                               model_name: str | None = None,
                               parameters: InferParameters | None = None,
                               outputs: list[RequestedOutput] | None = None
                               ) -> InferenceResponse:
        """As /v2/models/{name}/infer."""
        return await self.dispatch.run(declared_rows(inputs), lambda: self._v2_answer(
            inputs, id, model_name, parameters, outputs))

    def global_explanation(self, top_k: str | None) -> JSONResponse:
        glob = self.bundle.global_explanation
        k = None if top_k is None else query_integer(top_k)
        if top_k is not None and (k is None or k < 1):
            return RequestError(f"top_k must be a positive integer of at most 9 digits 0-9, "
                                f"got {top_k!r}", reason="bad_top_k", field="top_k").response()
        if glob is None:
            return RequestError("this bundle has no stored global explanation",
                                reason="no_global_explanation", status=404).response()
        importance = glob.get_feature_importance_dict(k)
        return JSONResponse({"feature_names": list(importance),
                             "global_importance_values": list(importance.values()),
                             "expected_values": glob.to_dict()["expected_values"],
                             "class_names": glob.classes, "method": glob.method,
                             "model_output": glob.model_output, "raw": glob.raw,
                             "n_rows": glob.extra.get("n_rows")})

    # -- steps -------------------------------------------------------------------------
    def _answer(self, endpoint: str, rows: Any, top_k: int | None, get_raw: bool | None,
                explain: bool, predict: bool) -> Any:
        try:
            scored = self._score(endpoint, rows, get_raw, explain, predict)
        except RequestError as exc:
            return exc.response()
        return ScoringResponse(**scoring_response(scored, top_k, predict))

    def _answer_frame(self, rows: Any) -> Any:
        try:
            # raw columns whenever there are transformations, as /predict: raw-column
            # explainers have no per-engineered-column values
            scored = self._score("score", rows, None, True, True)
        except RequestError as exc:
            return exc.response()
        return ScoreResponse(**scoring_response(scored, None, True))

    def _v2_answer(self, inputs: list[RequestInput], request_id: str | None,
                   model_name: str | None, parameters: InferParameters | None,
                   outputs: list[RequestedOutput] | None) -> Any:
        model = self.v2_model
        try:
            if model_name not in (None, model.name):
                raise RequestError(f"the body names model {model_name[:60]!r}; this path "
                                   f"serves {model.name!r}", reason="bad_body",
                                   field="model_name")
            selection = OutputSelection.read(outputs, parameters, model.outputs)
            rows = rows_from_inputs(inputs, self.bundle.input_schema)
            scored = self._score("v2_infer", rows, selection.get_raw, selection.explain,
                                 selection.predict)
        except RequestError as exc:
            return exc.response()
        return InferenceResponse(model_name=model.name, model_version=model.version,
                                 id=request_id, parameters=response_parameters(scored),
                                 outputs=selection.tensors(scored))

    def _score(self, endpoint: str, rows: Any, get_raw: bool | None, explain: bool,
               predict: bool) -> Any:
        try:
            scored = self.bundle.score(rows, get_raw=get_raw, explain=explain,
                                       predict=predict)
        except InputError as exc:
            raise RequestError.from_input_error(exc) from None
        REQUEST_ROWS.labels(endpoint).observe(scored.n_rows)
        if predict:
            PREDICT_SECONDS.labels(endpoint, self.method).observe(scored.predict_seconds)
        if explain:
            EXPLAIN_SECONDS.labels(endpoint, self.method).observe(scored.explain_seconds)
            if self.attribution is not None:
                self.attribution.observe(scored.explanation)
        return scored
