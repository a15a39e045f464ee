"""The Open Inference Protocol's (KServe V2 REST) routes: their paths for the served model,
the metadata and health routes, and their documentation in ``/docs.json`` (inference
itself is a typed BentoML API of :mod:`service.service`)."""

from __future__ import annotations

from dataclasses import dataclass

import bentoml
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from scoring.artifacts.bundle import ExplanationBundle
from service.lifecycle import SERVICE_NAME
from service.v2_outputs import output_metadata
from service.v2_schemas import (
    ModelMetadata,
    ModelReady,
    ServerLive,
    ServerMetadata,
    ServerReady,
)
from service.v2_tensors import input_metadata

SERVER = "/v2"
LIVE = "/v2/health/live"
READY = "/v2/health/ready"
MODEL = "/v2/models/{name}"
MODEL_VERSION = "/v2/models/{name}/versions/{version}"
INFER = f"{MODEL}/infer"
INFER_VERSION = f"{MODEL_VERSION}/infer"
# the routes whose paths carry the model's name and version: a fixed label each (metrics)
ROUTE_LABELS = {MODEL: "v2_model_metadata", MODEL_VERSION: "v2_model_metadata",
                f"{MODEL}/ready": "v2_model_ready", f"{MODEL_VERSION}/ready": "v2_model_ready",
                INFER: "v2_infer", INFER_VERSION: "v2_infer"}
INFER_ROUTES = frozenset({INFER, INFER_VERSION})
PUBLIC_PATHS = frozenset({LIVE, READY})
PATHS = frozenset({SERVER, LIVE, READY})
PLATFORM = "scikit-learn"


@dataclass(frozen=True)
class ServedModel:
    """The served bundle as the protocol names it: its name and version (the BentoML tag's),
    its metadata and the paths of its routes, ``{path: route}``."""

    name: str
    version: str
    metadata: ModelMetadata
    paths: dict[str, str]

    @classmethod
    def of(cls, bundle: ExplanationBundle) -> ServedModel:
        name, _, version = str(bundle.tag).partition(":")
        metadata = ModelMetadata(name=name, versions=[version], platform=PLATFORM,
                                 inputs=input_metadata(bundle.input_schema),
                                 outputs=output_metadata(bundle))
        paths = {route.format(name=name, version=version): route for route in ROUTE_LABELS}
        return cls(name, version, metadata, paths)

    @property
    def outputs(self) -> list[str]:
        return [output.name for output in self.metadata.outputs]


def _served() -> ServedModel:
    return bentoml.get_current_service().v2_model


async def _server(request: Request) -> JSONResponse:
    return _json(ServerMetadata(name=SERVICE_NAME, version=bentoml.__version__, extensions=[]))


async def _live(request: Request) -> JSONResponse:
    return _json(ServerLive(live=True))


async def _ready(request: Request) -> JSONResponse:
    # answered by the worker once it has loaded and checked its bundle
    return _json(ServerReady(ready=True))


async def _model(request: Request) -> JSONResponse:
    return _json(_served().metadata)


async def _model_ready(request: Request) -> JSONResponse:
    return _json(ModelReady(name=_served().name, ready=True))


def _json(body: BaseModel) -> JSONResponse:
    return JSONResponse(body.model_dump())


# the guard lets through only the served model's name and version (404 otherwise)
routes = [Route(SERVER, _server, methods=["GET"]), Route(LIVE, _live, methods=["GET"]),
          Route(READY, _ready, methods=["GET"]),
          *(Route(path, _model, methods=["GET"]) for path in (MODEL, MODEL_VERSION)),
          *(Route(f"{path}/ready", _model_ready, methods=["GET"])
            for path in (MODEL, MODEL_VERSION))]

# what /docs.json says of each GET route: its operation, summary and answer
_GET_ROUTES: dict[str, tuple[str, str, type[BaseModel]]] = {
    SERVER: ("v2_server_metadata", "The server's name (the BentoML service's), version "
             "(BentoML's) and protocol extensions (none)", ServerMetadata),
    LIVE: ("v2_server_live", "Whether the server is live (public, as /livez)", ServerLive),
    READY: ("v2_server_ready", "Whether the server is ready (public, as /readyz)",
            ServerReady),
    MODEL: ("v2_model_metadata", "The model's metadata: every input and output tensor",
            ModelMetadata),
    MODEL_VERSION: ("v2_model_version_metadata", "As /v2/models/{name}", ModelMetadata),
    f"{MODEL}/ready": ("v2_model_ready", "Whether the model is ready", ModelReady),
    f"{MODEL_VERSION}/ready": ("v2_model_version_ready", "As /v2/models/{name}/ready",
                               ModelReady)}
_REF = "#/components/schemas/{model}"
_TAG = "Open Inference Protocol (KServe V2)"


def openapi_paths() -> tuple[dict[str, dict], dict[str, dict]]:
    """What ``/docs.json`` adds for the protocol (BentoML documents its typed APIs only):
    ``({path: {method: operation}}, {name: JSON schema})``, the GET routes' operations and
    the path parameters and tag of the inference APIs'."""
    models = [(model, "serialization") for *_, model in _GET_ROUTES.values()]
    refs, definitions = models_json_schema(models, ref_template=_REF)
    paths = {}
    for path, (operation, summary, model) in _GET_ROUTES.items():
        answer = {"application/json": {"schema": refs[(model, "serialization")]}}
        paths[path] = {"get": {"operationId": operation, "summary": summary, "tags": [_TAG],
                               "parameters": _path_parameters(path),
                               "responses": {200: {"description": "Successful Response",
                                                   "content": answer}}}}
    for path in INFER_ROUTES:
        paths[path] = {"post": {"parameters": _path_parameters(path), "tags": [_TAG]}}
    return paths, definitions["$defs"]


def _path_parameters(path: str) -> list[dict]:
    return [{"name": n, "in": "path", "required": True, "schema": {"type": "string"},
             "description": f"the served model's {n}, as GET /v2/models/{{name}} gives it"}
            for n in ("name", "version") if f"{{{n}}}" in path]
