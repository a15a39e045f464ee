"""Open Inference Protocol input tensors to the rows the request path takes, and the tensors
a model takes. Only the protocol is checked here (names, shapes, element counts, elements
of the declared datatype); the values themselves are validated once, by the bundle's
schema, as ``/predict``'s rows are."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from scoring.model.schema import InputSchema
from service.errors import RequestError, safe_text
from service.schemas import MAX_ROWS
from service.v2_schemas import RequestInput, TensorMetadata

_INTEGERS = {f"{sign}INT{bits}": (0, 2**bits - 1) if sign else (-(2**(bits - 1)),
                                                               2**(bits - 1) - 1)
             for sign in ("", "U") for bits in (8, 16, 32, 64)}
_FLOATS = frozenset({"FP16", "FP32", "FP64"})
# the Python types JSON elements of each datatype may have (null, a missing value, is
# accepted for every datatype)
_ELEMENT_TYPES = {"BOOL": {bool}, "BYTES": {str}, **{d: {int, float} for d in _FLOATS},
                  **{d: {int} for d in _INTEGERS}}


def rows_from_inputs(inputs: list[RequestInput], schema: InputSchema) -> Any:
    """The rows ``inputs`` hold, in a form :meth:`ExplanationBundle.score
    <scoring.artifacts.bundle.ExplanationBundle.score>` takes: lists in training column
    order from one 2-D tensor of an all-numeric model (any name but a column's), else a
    frame of the columns, one tensor each (``[n]`` or ``[n, 1]``, named as the column).
    ``RequestError`` for tensors that break the protocol or name no column."""
    if len(inputs) == 1 and len(inputs[0].shape) == 2 and inputs[0].name not in schema.columns:
        return _matrix_rows(inputs[0], schema)
    columns: dict[str, list] = {}
    n_rows = None
    for tensor in inputs:
        name = tensor.name
        if name not in schema.columns:
            raise RequestError(
                f"unknown input {safe_text(name, 60)!r}; the model takes one tensor per "
                f"training column {schema.columns}"
                + (" or one 2-D tensor of every column" if schema.all_numeric else ""),
                reason="unknown_column", field=name)
        if name in columns:
            raise RequestError(f"input {name!r} is given twice", reason="bad_body", field=name)
        rows = _column_rows(tensor)
        if n_rows is not None and rows != n_rows:
            raise RequestError(f"input {name!r} has {rows} rows, the inputs before it "
                               f"{n_rows}: every column has one value per row",
                               reason="bad_shape", field=name)
        n_rows = rows
        columns[name] = _elements(tensor, lambda i, name=name: (i, name))
    missing = [c for c in schema.columns if c not in columns]
    if missing:
        raise RequestError(f"no input for the training column(s) {missing}",
                           reason="missing_column", field=missing[0])
    return pd.DataFrame({c: columns[c] for c in schema.columns}, dtype=object)


def declared_rows(inputs: list[RequestInput]) -> int:
    """The rows ``inputs`` say they hold (the largest first dimension of their shapes),
    read before any check: where the request is scored depends on it
    (:mod:`service.dispatch`); :func:`rows_from_inputs` refuses shapes the data contradict."""
    return max((tensor.shape[0] for tensor in inputs if tensor.shape), default=1)


def input_metadata(schema: InputSchema) -> list[TensorMetadata]:
    """One tensor per training column: ``FP64`` for numbers, ``BYTES`` for categories (the
    categories' own type when they are all booleans or integers)."""
    return [TensorMetadata(name=name, datatype="FP64" if kind == "numeric" else
                           _category_datatype(schema.categories.get(name, [])), shape=[-1])
            for name, kind in zip(schema.columns, schema.kinds, strict=True)]


def _category_datatype(categories: list) -> str:
    if categories and all(type(c) is bool for c in categories):
        return "BOOL"
    if categories and all(type(c) is int for c in categories):
        return "INT64"
    return "BYTES"


def _matrix_rows(tensor: RequestInput, schema: InputSchema) -> list[list]:
    if not schema.all_numeric:
        categorical = [c for c, k in zip(schema.columns, schema.kinds, strict=True)
                       if k != "numeric"]
        raise RequestError(
            f"input {safe_text(tensor.name, 60)!r} is a 2-D tensor: that layout is for "
            f"all-numeric models, and this one takes categories in {categorical}; send one "
            f"tensor per training column {schema.columns}", reason="bad_shape",
            field=tensor.name)
    n_rows, width = tensor.shape
    _check_rows(n_rows, tensor.name)
    if width != schema.n_features:
        raise RequestError(f"input {tensor.name!r} has {width} columns; the model takes "
                           f"{schema.n_features} ({', '.join(schema.columns)})",
                           reason="wrong_column_count", field=tensor.name)
    flat = _elements(tensor, lambda i: (i // width, schema.columns[i % width]))
    return [flat[i:i + width] for i in range(0, len(flat), width)]


def _column_rows(tensor: RequestInput) -> int:
    shape = tensor.shape
    if len(shape) == 1 or (len(shape) == 2 and shape[1] == 1):
        _check_rows(shape[0], tensor.name)
        return shape[0]
    raise RequestError(f"input {tensor.name!r} has shape {shape}; a column's tensor is [n] "
                       "or [n, 1]", reason="bad_shape", field=tensor.name)


def _check_rows(n_rows: int, name: str) -> None:
    if n_rows > MAX_ROWS:
        raise RequestError(f"input {name!r} holds {n_rows} rows; the limit is {MAX_ROWS} rows "
                           "per request", reason="too_many_rows", status=413, field=name)


def _elements(tensor: RequestInput, locate: Any) -> list:
    """The tensor's elements, flat, checked against its shape and datatype; ``locate(i)``
    gives the row and training column of element ``i``, for the messages."""
    if tensor.data is None:
        raise RequestError(
            f"input {tensor.name!r} has no 'data': binary tensor data is not supported, send "
            "the elements as JSON (tritonclient: set_data_from_numpy(array, "
            "binary_data=False))", reason="bad_body", field=tensor.name)
    flat = _flat(tensor.data)
    expected = math.prod(tensor.shape)
    if len(flat) != expected:
        raise RequestError(f"input {tensor.name!r} has {len(flat)} elements; its shape "
                           f"{tensor.shape} holds {expected}", reason="bad_shape",
                           field=tensor.name)
    _check_datatype(flat, tensor.datatype, tensor.name, locate)
    return flat


def _flat(data: list) -> list:
    """Nested lists (the protocol allows them) as one row-major list."""
    if not any(type(v) is list for v in data):
        return data
    out: list = []
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if type(value) is list:
                stack.append(iter(value))
                break
            out.append(value)
        else:
            stack.pop()
    return out


def _check_datatype(flat: list, datatype: str, name: str, locate: Any) -> None:
    allowed = _ELEMENT_TYPES[datatype] | {type(None)}
    wrong = {type(v) for v in flat} - allowed
    if wrong:
        i = next(i for i, v in enumerate(flat) if type(v) in wrong)
        # a string, a boolean, a list or an object where numbers are declared, as /predict
        # calls them; a number a datatype cannot hold (1.5 in INT64) is a bad value
        numbers = datatype in _FLOATS or datatype in _INTEGERS
        _refuse_element(flat[i], i, datatype, name, locate, "not_a_number" if numbers and
                        type(flat[i]) not in (int, float) else "bad_value")
    if datatype in _INTEGERS:
        low, high = _INTEGERS[datatype]
        for i, v in enumerate(flat):
            if v is not None and not low <= v <= high:
                _refuse_element(v, i, datatype, name, locate, "bad_value")


def _refuse_element(value: Any, i: int, datatype: str, name: str, locate: Any,
                    reason: str) -> None:
    row, column = locate(i)
    try:
        text = safe_text(repr(value), 80)
    except ValueError:  # an integer of more digits than Python converts to text
        text = f"an integer of {value.bit_length()} bits"
    raise RequestError(f"input {name!r} is {datatype}, but its element {i} (row {row}, field "
                       f"{column!r}) is {text}", reason=reason, row=row, field=column)
