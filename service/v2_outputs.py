"""What an Open Inference Protocol inference answers: the outputs a bundle has, the ones a
request asks for, and scored rows as those tensors (no explainer maths here)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from scoring.artifacts.bundle import ExplanationBundle
from scoring.core.plain import plain
from scoring.scoring_explainers.request import ScoredRows
from service.errors import RequestError, safe_text
from service.v2_schemas import (
    InferParameters,
    RequestedOutput,
    ResponseOutput,
    TensorMetadata,
)

PREDICT = "predict"
PREDICT_PROBA = "predict_proba"
LOCAL_IMPORTANCE_VALUES = "local_importance_values"
EXPECTED_VALUES = "expected_values"
FEATURE_NAMES = "feature_names"
CLASS_NAMES = "class_names"
TOP_FEATURE_NAMES = "top_feature_names"
TOP_FEATURE_VALUES = "top_feature_values"
WARNINGS = "warnings"
PREDICTIONS = frozenset({PREDICT, PREDICT_PROBA})
EXPLANATION = frozenset({LOCAL_IMPORTANCE_VALUES, EXPECTED_VALUES, FEATURE_NAMES, CLASS_NAMES,
                         TOP_FEATURE_NAMES, TOP_FEATURE_VALUES})
RANKED = frozenset({TOP_FEATURE_NAMES, TOP_FEATURE_VALUES})


def output_metadata(bundle: ExplanationBundle) -> list[TensorMetadata]:
    """Every output the bundle's model answers, with its datatype and shape (-1: rows, or
    the features of ``get_raw: false`` and the ``top_k`` ranked)."""
    model, classes = bundle.spec.model, bundle.classes
    labels = getattr(model, "classes_", None)
    features = -1 if bundle.has_transformations else len(bundle.feature_names)
    per_class = [] if classes is None else [len(classes)]
    outputs = [(PREDICT, "FP64" if labels is None else datatype_of(np.asarray(labels)), [-1])]
    if hasattr(model, "predict_proba") and labels is not None:
        outputs.append((PREDICT_PROBA, "FP64", [-1, len(labels)]))
    outputs += [(LOCAL_IMPORTANCE_VALUES, "FP64", [*per_class, -1, features]),
                (EXPECTED_VALUES, "FP64", per_class or [1]),
                (FEATURE_NAMES, "BYTES", [features])]
    if classes is not None:
        outputs.append((CLASS_NAMES, datatype_of(np.asarray(classes)), per_class))
    outputs += [(TOP_FEATURE_NAMES, "BYTES", [*per_class, -1, -1]),
                (TOP_FEATURE_VALUES, "FP64", [*per_class, -1, -1])]
    if bundle.input_schema.categories:
        outputs.append((WARNINGS, "BYTES", [-1]))
    return [TensorMetadata(name=n, datatype=d, shape=s) for n, d, s in outputs]


@dataclass(frozen=True)
class OutputSelection:
    """What one request asks for: the outputs (``None``: all), whether to predict and to
    explain, and ``/predict``'s ``get_raw`` and ``top_k``."""

    names: list[str] | None
    predict: bool
    explain: bool
    get_raw: bool | None
    top_k: int | None

    @classmethod
    def read(cls, outputs: list[RequestedOutput] | None, parameters: InferParameters | None,
             available: list[str]) -> OutputSelection:
        """The selection of a request's ``outputs`` and ``parameters``; ``RequestError``
        (``bad_output``) for an output the model does not have or the parameters rule out."""
        parameters = parameters or InferParameters()
        names = [o.name for o in outputs] if outputs else None
        for name in names or ():
            if name not in available:
                raise RequestError(f"no output {safe_text(name, 60)!r}; this model's outputs "
                                   f"are {available}", reason="bad_output", field="outputs")
            if name in EXPLANATION and not parameters.explain:
                raise RequestError(f"output {name!r} is an explanation, and the parameter "
                                   "explain is false", reason="bad_output", field="outputs")
            if name in RANKED and parameters.top_k is None:
                raise RequestError(f"output {name!r} ranks the top_k features: give the "
                                   "parameter top_k", reason="bad_output", field="outputs")
        asked = set(available if names is None else names)
        return cls(names, predict=bool(asked & PREDICTIONS),
                   explain=parameters.explain and bool(asked & EXPLANATION),
                   get_raw=parameters.get_raw, top_k=parameters.top_k)

    def tensors(self, scored: ScoredRows) -> list[ResponseOutput]:
        """The scored rows as the selected outputs, in the order asked (every element as
        ``/predict`` answers it, flat in row-major order)."""
        out: dict[str, tuple[np.ndarray, str | None]] = {}
        if self.predict:
            out[PREDICT] = np.asarray(scored.predictions), None
            if scored.probabilities is not None:
                out[PREDICT_PROBA] = scored.probabilities, None
        explanation = scored.explanation
        if explanation is not None:
            out[LOCAL_IMPORTANCE_VALUES] = explanation.local_importance_values, None
            out[EXPECTED_VALUES] = np.atleast_1d(np.asarray(explanation.expected_values)), None
            out[FEATURE_NAMES] = np.asarray(explanation.features, dtype=object), "BYTES"
            if explanation.classes is not None:
                out[CLASS_NAMES] = np.asarray(explanation.classes), None
            if self.top_k is not None:
                names, values = explanation.ranked_local(self.top_k)
                out[TOP_FEATURE_NAMES] = np.asarray(names, dtype=object), "BYTES"
                out[TOP_FEATURE_VALUES] = np.asarray(values), None
        if scored.warnings:
            out[WARNINGS] = np.asarray([json.dumps(w) for w in scored.warnings],
                                       dtype=object), "BYTES"
        names = list(out) if self.names is None else [n for n in self.names if n in out]
        return [_tensor(name, *out[name]) for name in names]


def _tensor(name: str, values: np.ndarray, datatype: str | None) -> ResponseOutput:
    datatype = datatype or datatype_of(values)
    # numbers' tolist() is plain already; objects (names, classes) may hold numpy scalars
    flat = values.ravel()
    data = flat.tolist() if flat.dtype.kind in "biuf" else plain(flat)
    if datatype == "BYTES":
        data = [v if isinstance(v, str) else str(v) for v in data]
    return ResponseOutput(name=name, shape=list(values.shape), datatype=datatype, data=data)


def datatype_of(values: np.ndarray) -> str:
    """The protocol's datatype for a numpy array (object arrays by their elements' Python
    types: ``BYTES`` unless they are all booleans or all numbers)."""
    kind, bits = values.dtype.kind, 8 * values.dtype.itemsize
    if kind == "b":
        return "BOOL"
    if kind in "iu":
        return f"{'U' if kind == 'u' else ''}INT{bits}"
    if kind == "f":
        return f"FP{bits}"
    types = {type(v) for v in values.ravel().tolist()}
    if types == {bool}:
        return "BOOL"
    if types and types <= {int}:
        return "INT64"
    if types and types <= {int, float}:
        return "FP64"
    return "BYTES"


def response_parameters(scored: ScoredRows) -> dict[str, Any] | None:
    """What the answer says beside its tensors: the explained model output."""
    if scored.explanation is None:
        return None
    return {"model_output": scored.explanation.model_output}
