"""The Open Inference Protocol's (KServe V2 REST) bodies, typed: what ``/docs.json`` shows
for the ``/v2`` routes and what BentoML validates before an inference runs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer

from service.schemas import GetRaw, TopK

Datatype = Literal["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32",
                   "INT64", "FP16", "FP32", "FP64", "BYTES"]
# the protocol's parameter values: a string, a number or a boolean
Parameter = str | int | float | bool
Shape = list[Annotated[int, Field(ge=0, strict=True)]]
# what the metadata routes give for a dimension of any size
ShapeWithAny = list[Annotated[int, Field(ge=-1, strict=True)]]


class _WithoutEmptyFields(BaseModel):
    @model_serializer(mode="wrap")
    def _without_empty_fields(self, handler: Any) -> dict:
        # optional fields the protocol leaves out when they have no value
        return {k: v for k, v in handler(self).items() if v is not None}


class RequestInput(BaseModel):
    """One input tensor: a training column (``[n]`` or ``[n, 1]``), or every column of an
    all-numeric model in training column order (``[n, n_features]``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(strict=True)
    shape: Shape
    datatype: Datatype
    parameters: dict[str, Parameter] | None = None
    data: list[Any] | None = Field(None, description=(
        "the tensor's elements in row-major order, flat or nested; JSON null (and NaN for "
        "FP datatypes) is a missing value"))


class OutputParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    binary_data: bool | None = Field(None, strict=True, description=(
        "tritonclient's flag: answers are JSON whatever it says"))


class RequestedOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(strict=True)
    parameters: OutputParameters | None = None


class InferParameters(BaseModel):
    """The request's ``parameters``: those of ``/predict``, and tritonclient's own flag."""

    model_config = ConfigDict(extra="forbid")

    top_k: TopK = None
    get_raw: GetRaw = None
    explain: bool = Field(True, strict=True, description=(
        "false: predictions only, no importances"))
    binary_data_output: bool | None = Field(None, strict=True, description=(
        "tritonclient's flag: answers are JSON whatever it says"))


class InferenceRequest(BaseModel):
    """``POST /v2/models/{name}[/versions/{version}]/infer``."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, strict=True)
    # the KServe client names the model in the body too
    model_name: str | None = Field(None, strict=True)
    parameters: InferParameters | None = None
    inputs: list[RequestInput] = Field(description=(
        "one tensor per training column, named as the column; or, for an all-numeric model, "
        "one 2-D FP64/FP32/INT tensor of any other name in training column order"))
    outputs: list[RequestedOutput] | None = Field(None, description=(
        "the outputs to answer (default: all)"))


class ResponseOutput(_WithoutEmptyFields):
    name: str
    shape: list[int]
    datatype: Datatype
    parameters: dict[str, Parameter] | None = None
    data: list[Any]


class InferenceResponse(_WithoutEmptyFields):
    """The answer of an inference: predictions, probabilities and the local importances
    behind them as tensors (see ``GET /v2/models/{name}`` for every output)."""

    model_name: str
    model_version: str
    id: str | None = None
    parameters: dict[str, Parameter] | None = None
    outputs: list[ResponseOutput]


class TensorMetadata(BaseModel):
    name: str
    datatype: Datatype
    shape: ShapeWithAny = Field(description="-1: a dimension of any size (rows)")


class ModelMetadata(BaseModel):
    """``GET /v2/models/{name}[/versions/{version}]``."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class ServerMetadata(BaseModel):
    """``GET /v2``."""

    name: str
    version: str
    extensions: list[str]


class ServerLive(BaseModel):
    live: bool


class ServerReady(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool
