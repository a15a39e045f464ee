"""Fitted state as data only: JSON for parameters and names, ``.npz`` arrays for numbers
(plain arrays only, read within bounded sizes); SHA-256 of every file, an optional
HMAC-SHA256 signature and the library versions the loader must run (the skops model file
is :mod:`scoring.artifacts.trust`'s).

Nothing here unpickles: a file that is not what it claims is refused before any code in it
could run.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import importlib.metadata
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from scoring.artifacts.archive import ArrayArchive
from scoring.core.bounded_json import parse_json
from scoring.core.codec import Arrays, StateError

SIGNING_KEY_ENV = "SCORING_SIGNING_KEY"
# what check_signature finds (GET /metadata shows it): a signature checked with the key, a
# signature block nobody could check (no key set), no signature
SIGNATURE_VERIFIED, SIGNATURE_UNVERIFIED, SIGNATURE_ABSENT = "verified", "unverified", "absent"


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
    owners = _module_owners()
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


@functools.cache
def _module_owners() -> Mapping[str, list[str]]:
    """The distributions of each top-level module, read once per process: reading them
    walks the file list of every installed distribution."""
    return importlib.metadata.packages_distributions()


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
    JSON, nesting deeper than :data:`~scoring.core.bounded_json.MAX_JSON_DEPTH`)."""
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


def read_arrays(data: bytes, label: str) -> Arrays:
    """The arrays of ``.npz`` bytes, read on request, each within the sizes
    :class:`~scoring.artifacts.archive.ArrayArchive` checks; ``label`` names the file."""
    try:
        return Arrays(source=ArrayArchive(data), label=label)
    except ValueError as exc:
        raise StateError(f"{label} is not readable: {exc}") from None
