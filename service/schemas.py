"""The request and response bodies of the API, typed: what ``/docs.json`` shows and what
BentoML's clients send and receive."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_serializer

MAX_ROWS = 1000

Rows = Annotated[list[Any], Field(max_length=MAX_ROWS)] | dict[str, Any]
ROWS_HELP = (f"records ([{{column: value}}, ...], every training column by name) or lists in "
             f"training column order ([[v1, v2, ...], ...]); one record alone is accepted too; "
             f"at most {MAX_ROWS} rows")
TopK = Annotated[int | None, Field(ge=1, strict=True,
                                   description="add the top_k features of each row, ranked")]
GetRaw = Annotated[bool | None, Field(strict=True, description=(
    "values per raw column (true) or per engineered column (false); default: raw columns "
    "whenever the bundle has transformations"))]


class ExplainRequest(BaseModel):
    """``POST /explain``."""

    model_config = ConfigDict(extra="forbid")

    rows: Rows = Field(description=ROWS_HELP)
    top_k: TopK = None
    get_raw: GetRaw = None


class PredictRequest(ExplainRequest):
    """``POST /predict``."""

    explain: Annotated[bool, Field(strict=True, description=(
        "false: predictions only, no importances"))] = True


class ScoringResponse(BaseModel):
    """``/predict`` and ``/explain`` answers (``/explain`` has no predictions). Fields that
    do not apply are left out (``class_names`` for regressors, ``probabilities`` without
    ``predict_proba``, ``top_features`` without ``top_k``)."""

    predictions: list[Any] | None = None
    probabilities: list[list[float]] | None = None
    local_importance_values: list[Any] | None = Field(None, description=(
        "[n_classes][n_rows][n_features] for classifiers, [n_rows][n_features] for "
        "regressors"))
    expected_values: float | list[float] | None = None
    feature_names: list[str] | None = None
    class_names: list[Any] | None = None
    model_output: str | None = None
    top_features: list[Any] | None = None
    warnings: list[dict[str, Any]] | None = None

    @model_serializer(mode="wrap")
    def _without_empty_fields(self, handler: Any) -> dict:
        # BentoML's HTTP client fails to decode null list fields: leave them out
        return {k: v for k, v in handler(self).items() if v is not None}


class Frame(RootModel[dict[str, Any] | list[Any]]):
    """``POST /score``: a pandas ``DataFrame.to_json()`` body, the seed client's."""


class ScoreResponse(BaseModel):
    """``/score`` answers the seed's ``run(raw_data)`` layout."""

    predictions: list[Any]
    local_importance_values: list[Any]
