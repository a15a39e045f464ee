"""Fitted state as data only: JSON for parameters and names, ``.npz`` arrays for numbers
(plain arrays only, read within bounded sizes); SHA-256 of every file, an optional
HMAC-SHA256 signature and the library versions the loader must run (the skops model file
is :mod:`scoring.artifacts.trust`'s).

Nothing here unpickles: a file that is not what it claims is refused before any code in it
could run.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.metadata
import io
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scoring.artifacts.archive import ArrayArchive
from scoring.artifacts.bounded_json import parse_json

SIGNING_KEY_ENV = "SCORING_SIGNING_KEY"
# what check_signature finds (GET /metadata shows it): a signature checked with the key, a
# signature block nobody could check (no key set), no signature
SIGNATURE_VERIFIED, SIGNATURE_UNVERIFIED, SIGNATURE_ABSENT = "verified", "unverified", "absent"


class StateError(ValueError):
    """A file that cannot be read as saved state: damaged, tampered with, or foreign."""


# -- library versions ----------------------------------------------------------------------
def library_versions() -> dict[str, str]:
    """The versions a saved explainer's numbers and the model depend on."""
    import scipy
    import shap
    import sklearn

    return {"scikit-learn": sklearn.__version__, "shap": shap.__version__,
            "numpy": np.__version__, "scipy": scipy.__version__}


def module_versions(type_names: Iterable[str]) -> dict[str, str]:
    """``{distribution: version}`` installed for the top-level modules of ``type_names``
    (say ``lightgbm`` for ``lightgbm.sklearn.LGBMClassifier``), read without importing."""
    owners = importlib.metadata.packages_distributions()
    versions = {}
    for name in type_names:
        top = name.split(".")[0]
        if top in ("builtins", "scoring"):
            continue
        for dist in owners.get(top, [top]):
            try:
                versions[dist] = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                versions[dist] = "not installed"
    return versions


def check_versions(saved: Any, label: str) -> None:
    """Raise :class:`StateError` unless the ``saved`` versions (the core libraries and the
    distributions the model needs) are the ones installed where it loads."""
    if not isinstance(saved, dict):
        raise StateError(f"{label} records no library versions")
    running = library_versions()
    for dist in saved:
        if dist not in running:
            try:
                running[dist] = importlib.metadata.version(str(dist))
            except importlib.metadata.PackageNotFoundError:
                running[dist] = "not installed"
    mismatched = {k: (saved.get(k), v) for k, v in running.items() if saved.get(k) != v}
    if mismatched:
        detail = ", ".join(f"{k} saved with {a}, running {b}" for k, (a, b) in mismatched.items())
        raise StateError(f"{label} was saved by incompatible library versions ({detail}); "
                         "re-run distill with the installed versions or install the saved ones")


# -- hashes and signatures -----------------------------------------------------------------
def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_hashes(directory: Path, files: Any, label: str, required: Iterable[str]) -> None:
    """Raise :class:`StateError` unless every file listed exists with its SHA-256 (the
    ``required`` ones must be listed); nothing is read but the bytes hashed."""
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise StateError(f"{label} is damaged: its manifest lists no file hashes")
    missing = [name for name in required if name not in files]
    if missing:
        raise StateError(f"{label} is damaged: its manifest lists no hash for {missing}")
    for name, expected in files.items():
        if Path(name).name != name or name.startswith(".") or "\0" in name:
            raise StateError(f"{label}: its manifest names a file outside it: {name!r}")
        path = directory / name
        if not path.is_file():
            raise StateError(f"{label} is damaged: {name} is missing")
        if not hmac.compare_digest(sha256_file(path).encode(), _comparable(expected)):
            raise StateError(f"{label} is damaged or was altered: the SHA-256 of {name} does "
                             "not match its manifest")


def signing_key() -> bytes | None:
    key = os.environ.get(SIGNING_KEY_ENV)
    return key.encode() if key else None


def _canonical(manifest: dict) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=True).encode()


def sign(manifest: dict) -> dict:
    """``manifest`` with an HMAC-SHA256 ``signature`` when a signing key is configured."""
    key = signing_key()
    manifest = {k: v for k, v in manifest.items() if k != "signature"}
    if key is not None:
        manifest["signature"] = {"algorithm": "hmac-sha256",
                                 "value": hmac.new(key, _canonical(manifest),
                                                   hashlib.sha256).hexdigest()}
    return manifest


def check_signature(manifest: dict, label: str) -> str:
    """With a signing key configured, refuse a manifest without the right signature; say
    what was found: :data:`SIGNATURE_VERIFIED`, :data:`SIGNATURE_UNVERIFIED` (a signature
    and no key to check it: it proves nothing) or :data:`SIGNATURE_ABSENT`."""
    key = signing_key()
    signature = manifest.get("signature")
    if key is None:
        return SIGNATURE_ABSENT if signature is None else SIGNATURE_UNVERIFIED
    if not isinstance(signature, dict) or not isinstance(signature.get("value"), str):
        raise StateError(f"{label} is not signed, and {SIGNING_KEY_ENV} is set: refusing an "
                         "unsigned bundle (re-save it with the key set)")
    expected = hmac.new(key, _canonical(manifest), hashlib.sha256).hexdigest()
    if signature.get("algorithm") != "hmac-sha256" or not hmac.compare_digest(
            expected.encode(), _comparable(signature["value"])):
        raise StateError(f"{label} has a wrong signature: it was altered, or signed with "
                         f"another {SIGNING_KEY_ENV}")
    return SIGNATURE_VERIFIED


def _comparable(text: str) -> bytes:
    """``text`` as bytes to compare in constant time (any string a file holds, lone
    surrogates included)."""
    return text.encode("utf-8", "surrogatepass")


def read_json(path: Path, label: str, what: str) -> dict:
    """The JSON object in ``path``; :class:`StateError` naming the file otherwise (invalid
    JSON, nesting deeper than :data:`~scoring.artifacts.bounded_json.MAX_JSON_DEPTH`)."""
    try:
        value = parse_json(path.read_bytes())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise StateError(f"{label}: {path.name} is not a readable {what} (truncated or "
                         f"damaged?): {type(exc).__name__}: {exc}") from None
    if not isinstance(value, dict):
        raise StateError(f"{label}: {path.name} is not a readable {what} (truncated or "
                         "damaged?)")
    return value


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # never leave a half-written file under the real name


# -- state: JSON + arrays ------------------------------------------------------------------
class Arrays:
    """Numeric arrays referenced from JSON by key, stored in one ``.npz``: written at once,
    read back one key at a time as the state asks for them (an entry nothing refers to is
    never decompressed), each within the sizes :class:`ArrayArchive` checks."""

    def __init__(self, arrays: dict[str, np.ndarray] | None = None,
                 archive: ArrayArchive | None = None, label: str = "the arrays file") -> None:
        self.arrays = {} if arrays is None else arrays
        self._archive = archive
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
        if key not in self.arrays and self._archive is not None:
            if f"{key}.npy" not in self._archive:
                raise StateError(f"the state refers to a missing array {key!r}")
            try:
                self.arrays[key] = self._archive.read_array(f"{key}.npy")
            except ValueError as exc:
                raise StateError(f"{self._label} is not readable: {exc}") from None
        if key not in self.arrays:
            raise StateError(f"the state refers to a missing array {key!r}")
        return self.arrays[key]

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, **self.arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, label: str) -> Arrays:
        """The arrays of ``.npz`` bytes, read on request; ``label`` names the file."""
        try:
            return cls(archive=ArrayArchive(data), label=label)
        except ValueError as exc:
            raise StateError(f"{label} is not readable: {exc}") from None


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
