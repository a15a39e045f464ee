"""Saved state as plain data: JSON for parameters and names, numeric arrays by key
(:class:`Arrays`), and nothing else: :func:`decode` gives back only plain data, arrays and
DataFrames, never objects a file could name."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd


class StateError(ValueError):
    """A file that cannot be read as saved state: damaged, tampered with, or foreign."""


class Arrays:
    """Numeric arrays referenced from JSON by key, stored in one ``.npz``: written at once,
    read back one key at a time as the state asks for them from ``source`` (an entry
    nothing refers to is never read). ``source`` has ``name in source`` and
    ``source.read_array(name)`` for the ``.npz`` entry ``name`` (the artifacts layer's
    bounded reader); ``label`` names the file in errors."""

    def __init__(self, arrays: dict[str, np.ndarray] | None = None, source: Any = None,
                 label: str = "the arrays file") -> None:
        self.arrays = {} if arrays is None else arrays
        self._source = source
        self._label = label

    def put(self, array: np.ndarray) -> str:
        if array.dtype.hasobject or array.dtype.kind not in "biufcUSM":
            raise TypeError(f"arrays of dtype {array.dtype} cannot be saved as data")
        key = f"a{len(self.arrays)}"
        self.arrays[key] = array
        return key

    def get(self, key: Any) -> np.ndarray:
        if not isinstance(key, str):
            raise StateError(f"the state refers to a missing array {key!r}")
        if key not in self.arrays and self._source is not None:
            if f"{key}.npy" not in self._source:
                raise StateError(f"the state refers to a missing array {key!r}")
            try:
                self.arrays[key] = self._source.read_array(f"{key}.npy")
            except ValueError as exc:
                raise StateError(f"{self._label} is not readable: {exc}") from None
        if key not in self.arrays:
            raise StateError(f"the state refers to a missing array {key!r}")
        return self.arrays[key]

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, **self.arrays)
        return buffer.getvalue()


def encode(value: Any, arrays: Arrays, where: str = "value") -> Any:
    """``value`` as JSON, its arrays put in ``arrays``; ``TypeError`` naming ``where`` for
    anything that is not plain data."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)) and type(value) in (int, float):
        return value
    if isinstance(value, np.generic):
        if value.dtype.kind not in "biufc":
            raise TypeError(f"{where}: cannot save a numpy {value.dtype} scalar as data")
        return {"__scalar__": value.dtype.str, "value": encode(value.item(), arrays, where)}
    if isinstance(value, np.ndarray):
        return {"__array__": arrays.put(value)}
    if isinstance(value, pd.DataFrame):
        return {"__frame__": _encode_frame(value, arrays, where)}
    if isinstance(value, (list, tuple)):
        items = [encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if isinstance(value, list) else {"__tuple__": items}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {"__dict__": {k: encode(v, arrays, f"{where}.{k}") for k, v in value.items()}}
        return {"__items__": [[encode(k, arrays, where), encode(v, arrays, f"{where}[{k!r}]")]
                              for k, v in value.items()]}
    if value is pd.NA:
        return {"__na__": True}
    raise TypeError(f"{where}: cannot save a {type(value).__module__}."
                    f"{type(value).__qualname__} as data")


def decode(value: Any, arrays: Arrays) -> Any:
    """The inverse of :func:`encode`: only plain data and arrays come back."""
    if isinstance(value, list):
        return [decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if "__array__" in value:
        return arrays.get(value["__array__"])
    if "__tuple__" in value:
        return tuple(decode(v, arrays) for v in value["__tuple__"])
    if "__dict__" in value:
        return {k: decode(v, arrays) for k, v in value["__dict__"].items()}
    if "__items__" in value:
        return {_hashable(decode(k, arrays)): decode(v, arrays) for k, v in value["__items__"]}
    if "__scalar__" in value:
        dtype = np.dtype(str(value["__scalar__"]))
        if dtype.kind not in "biufc":
            raise StateError(f"the state holds a scalar of dtype {dtype}")
        return dtype.type(value["value"])
    if "__frame__" in value:
        return _decode_frame(value["__frame__"], arrays)
    if "__na__" in value:
        return pd.NA
    raise StateError(f"the state holds an unknown object {sorted(value)[:3]}")


def _hashable(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key


def _encode_frame(frame: pd.DataFrame, arrays: Arrays, where: str) -> dict:
    """A DataFrame column by column: numbers as arrays (bit for bit), other columns as
    JSON values with their dtype, so it comes back identical."""
    columns = []
    for i, name in enumerate(frame.columns):
        column = frame.iloc[:, i]
        dtype = column.dtype
        entry: dict[str, Any] = {"name": encode(name, arrays, where), "dtype": str(dtype)}
        if isinstance(dtype, pd.CategoricalDtype):
            entry["categories"] = encode(list(dtype.categories), arrays, where)
            entry["ordered"] = bool(dtype.ordered)
            entry["values"] = encode([None if pd.isna(v) else v for v in column.tolist()],
                                     arrays, where)
        elif isinstance(dtype, np.dtype) and dtype.kind in "biufc":
            entry["array"] = arrays.put(column.to_numpy())
        else:
            entry["values"] = encode([_item(v) for v in column.tolist()], arrays,
                                     f"{where}[{name!r}]")
        columns.append(entry)
    index = frame.index
    return {"columns": columns,
            "index": None if isinstance(index, pd.RangeIndex) and index.start == 0
            and index.step == 1 else encode(np.asarray(index), arrays, where)}


def _item(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if value is None or value is pd.NA:
        return value
    if isinstance(value, float) and np.isnan(value):
        return float("nan")
    return value


def _decode_frame(state: dict, arrays: Arrays) -> pd.DataFrame:
    data = {}
    for entry in state["columns"]:
        name = decode(entry["name"], arrays)
        dtype = str(entry["dtype"])
        if "array" in entry:
            column = pd.Series(arrays.get(entry["array"]), copy=True)
        elif dtype == "category":
            categories = decode(entry["categories"], arrays)
            cat = pd.CategoricalDtype(categories, ordered=bool(entry.get("ordered")))
            column = pd.Series(decode(entry["values"], arrays), dtype=object).astype(cat)
        else:
            column = pd.Series(decode(entry["values"], arrays), dtype=object)
            if dtype != "object":
                column = column.astype(pd.api.types.pandas_dtype(dtype))
        data[name] = column
    frame = pd.DataFrame(data)
    if state.get("index") is not None:
        frame.index = decode(state["index"], arrays)
    return frame
