"""``save`` and ``load`` for scoring explainers, as in the Azure SDK, in data formats only.

A saved explainer is a directory of three files:

- ``scoring_explainer.json``: format, library versions, the explainer's class, parameters,
  model spec (schema, names, probe rows) and fitted state, the SHA-256 of the two other
  files, and an HMAC-SHA256 signature when ``SCORING_SIGNING_KEY`` is set;
- ``scoring_explainer.npz``: its arrays, read with ``allow_pickle=False``;
- ``model.skops``: the explained model and the spec's transformations, in skops' format
  (only the allow-list of :mod:`scoring.artifacts.trust` and the types the operator names
  are loaded).

``load`` never unpickles: files written by older versions (``scoring_explainer.pkl``) are
refused with how to re-save them (``scoring migrate``).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

from scoring.artifacts.state import (
    SIGNATURE_VERIFIED,
    check_hashes,
    check_signature,
    check_versions,
    library_versions,
    module_versions,
    read_arrays,
    read_json,
    sha256_file,
    sign,
    write_atomic,
)
from scoring.artifacts.trust import dump_model, load_model, operator_trusted_types
from scoring.core.codec import Arrays, StateError
from scoring.scoring_explainers.base import ScoringExplainer
from scoring.scoring_explainers.registry import SCORING_EXPLAINERS

FILENAME = "scoring_explainer.json"
ARRAYS_FILE = "scoring_explainer.npz"
MODEL_FILE = "model.skops"
PICKLED_MODEL_FILE = "model.pickle"  # only with allow_pickle=True at save time
OLD_FILENAME = "scoring_explainer.pkl"
FORMAT = "scoring.ScoringExplainer"
FORMAT_VERSION = 2
ALLOW_PICKLE_ENV = "SCORING_ALLOW_PICKLE"

__all__ = ["save", "load", "library_versions", "FILENAME", "OLD_FILENAME"]


def save(scoring_explainer: ScoringExplainer, directory: str | os.PathLike = ".",
         exist_ok: bool = False, *, trusted_types: list[str] | tuple = (),
         allow_pickle: bool = False) -> Path:
    """Write ``scoring_explainer.json``, ``.npz`` and ``model.skops`` into ``directory``
    and return the path of the JSON file.

    ``trusted_types``: types outside the allow-list the model holds (say
    ``"lightgbm.sklearn.LGBMClassifier"``); they are recorded, and loading needs them named
    again (or the files signed, see :func:`load`). ``allow_pickle=True`` stores a model
    skops cannot store as a pickle, which runs code when loaded (see :func:`load`).
    """
    if not isinstance(scoring_explainer, ScoringExplainer):
        raise TypeError(f"save expects a fitted scoring explainer, got "
                        f"{type(scoring_explainer).__name__}")
    scoring_explainer.check_fitted()
    directory = Path(directory)
    path = directory / FILENAME
    if path.exists() and not exist_ok:
        raise FileExistsError(f"{path} already exists; pass exist_ok=True to overwrite it")
    return write_explainer(scoring_explainer, directory, trusted_types=trusted_types,
                           allow_pickle=allow_pickle)


def write_explainer(explainer: ScoringExplainer, directory: Path, model: Any = None, *,
                    trusted_types: Any = (), allow_pickle: bool = False) -> Path:
    """The three files of :func:`save`; ``model`` (a bundle's model) is stored in the
    model file too, under ``"model"``."""
    arrays = Arrays()
    state = explainer.to_state(arrays)
    models = explainer.spec_.models()
    if model is not None:
        models["model"] = model
    try:
        data, needed = dump_model(models, trusted_types)
        model_file, model_format = MODEL_FILE, "skops"
    except TypeError:
        if not allow_pickle:
            raise
        import joblib

        buffer = io.BytesIO()
        joblib.dump(models, buffer)
        data, needed = buffer.getvalue(), sorted(
            {f"{type(m).__module__}.{type(m).__qualname__}" for m in models.values()
             if m is not None})
        model_file, model_format = PICKLED_MODEL_FILE, "pickle"
    directory.mkdir(parents=True, exist_ok=True)
    write_atomic(directory / ARRAYS_FILE, arrays.to_bytes())
    write_atomic(directory / model_file, data)
    for stale in {MODEL_FILE, PICKLED_MODEL_FILE} - {model_file}:
        (directory / stale).unlink(missing_ok=True)
    manifest = sign({
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "versions": {**library_versions(), **module_versions(needed)},
        "explainer_class": type(explainer).__name__,
        "model_fingerprint": explainer.spec_.fingerprint,
        "model": {"file": model_file, "format": model_format, "trusted_types": needed,
                  "allow_pickle": model_format == "pickle"},
        "files": {name: sha256_file(directory / name) for name in (ARRAYS_FILE, model_file)},
        "state": state,
    })
    path = directory / FILENAME
    write_atomic(path, json.dumps(manifest, separators=(",", ":")).encode())
    return path


def load(path: str | os.PathLike, *, trusted_types: list[str] | tuple = (),
         allow_pickle: bool = False) -> ScoringExplainer:
    """Read a scoring explainer written by :func:`save` (its directory, or a file in it).

    Checks, before reading the arrays or the model: the signature (when
    ``SCORING_SIGNING_KEY`` is set), the SHA-256 of every file, the format and the library
    versions. Refuses, with a message saying what to do, files that are not scoring
    explainers, truncated, damaged or altered files, other scikit-learn/shap/numpy/scipy
    versions, model types outside the allow-list that the operator did not name
    (``trusted_types``, ``SCORING_TRUSTED_TYPES``, or the types recorded in a manifest whose
    signature verified), and pickled models unless signed or ``allow_pickle=True`` (or
    ``SCORING_ALLOW_PICKLE=1``).
    """
    return read_explainer(Path(path), trusted_types=trusted_types,
                          allow_pickle=allow_pickle)[0]


def read_explainer(path: Path, label: str | None = None, *, trusted_types: Any = (),
                   allow_pickle: bool = False) -> tuple[ScoringExplainer, dict, dict]:
    """The explainer, the objects of its model file (``"model"``: a bundle's model) and
    the manifest's description of that file (format, types beyond the allow-list)."""
    path = Path(path)
    directory = path if path.is_dir() else path.parent
    if path.is_dir() or path.name in (ARRAYS_FILE, MODEL_FILE, PICKLED_MODEL_FILE, "bundle.json"):
        path = directory / FILENAME
    if path.name == OLD_FILENAME or (not path.exists() and (directory / OLD_FILENAME).exists()):
        if (directory / OLD_FILENAME).exists():
            raise StateError(old_format_message(directory))
    if not path.exists():
        raise FileNotFoundError(f"no scoring explainer at {path}")
    label = label or str(path)
    manifest = read_json(path, label, "scoring explainer file")  # JSON only, never code
    if manifest.get("format") != FORMAT:
        raise StateError(f"{label} is not a scoring explainer saved by scoring.save")
    signature = check_signature(manifest, label)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise StateError(f"{label} has format version {manifest.get('format_version')}; this "
                         f"library reads version {FORMAT_VERSION}")
    model_info = manifest.get("model")
    if not isinstance(model_info, dict) or model_info.get("file") not in (
            MODEL_FILE, PICKLED_MODEL_FILE):
        raise StateError(f"{label} is damaged: it names no model file")
    check_hashes(directory, manifest.get("files"), label, (ARRAYS_FILE, model_info["file"]))
    check_versions(manifest.get("versions"), label)
    state = manifest.get("state")
    cls = SCORING_EXPLAINERS.get(state.get("method")) if isinstance(state, dict) else None
    if cls is None or cls.__name__ != manifest.get("explainer_class"):
        raise StateError(f"{label} does not hold a scoring explainer "
                         f"({manifest.get('explainer_class')!r})")
    arrays = read_arrays((directory / ARRAYS_FILE).read_bytes(), f"{label}: {ARRAYS_FILE}")
    recorded = _recorded_types(model_info, label)
    trusted = operator_trusted_types(trusted_types)
    if signature == SIGNATURE_VERIFIED:  # the operator's key vouches for the saver's list
        trusted |= set(recorded)
    models = _read_models(directory, model_info, label, trusted,
                          allow_pickle or signature == SIGNATURE_VERIFIED)
    try:
        explainer = cls.from_state(state, arrays, models)
    except StateError as exc:
        message = str(exc)
        raise StateError(message if message.startswith(label) else f"{label}: {message}") \
            from None
    except Exception as exc:  # hostile state may fail anywhere in from_state
        raise StateError(f"{label} is damaged: its state ({FILENAME}) does not describe a "
                         f"{cls.__name__} ({type(exc).__name__}: {exc})") from None
    if explainer.spec_.fingerprint != manifest.get("model_fingerprint"):
        raise StateError(f"{label} is damaged: its state and manifest name different models")
    return explainer, models, model_info


def _recorded_types(info: dict, label: str) -> list[str]:
    """The types outside the allow-list the saver named (a record: trusted only when the
    manifest's signature verified)."""
    recorded = info.get("trusted_types", [])
    if not isinstance(recorded, list) or not all(isinstance(t, str) for t in recorded):
        raise StateError(f"{label} is damaged: its trusted types are not a list of names")
    return recorded


def _read_models(directory: Path, info: dict, label: str, trusted_types: set[str],
                 pickle_trusted: bool) -> dict:
    """The model file's objects: skops with ``trusted_types`` beyond the allow-list; a
    pickle only when ``pickle_trusted`` (a verified signature, ``allow_pickle``) or with
    ``SCORING_ALLOW_PICKLE=1``."""
    data = (directory / info["file"]).read_bytes()
    if info["file"] == PICKLED_MODEL_FILE or info.get("format") != "skops":
        if not (pickle_trusted or os.environ.get(ALLOW_PICKLE_ENV) == "1"):
            raise StateError(
                f"{label} stores its model as a pickle (saved with allow_pickle=True), which "
                "runs code when loaded; load it only if you trust who wrote it: sign bundles "
                f"with SCORING_SIGNING_KEY, or pass allow_pickle=True (or set "
                f"{ALLOW_PICKLE_ENV}=1)")
        import joblib

        models = joblib.load(io.BytesIO(data))
    else:
        models = load_model(data, trusted_types, label)
    if not isinstance(models, dict) or "explained_model" not in models:
        raise StateError(f"{label} is damaged: its model file holds no explained model")
    return models


def old_format_message(directory: Path) -> str:
    return (f"{directory} holds a scoring explainer saved by an older version of scoring as a "
            "pickle, which can run code when loaded, so it is not loaded; re-save it with this "
            "version: run `scoring distill` again, or, if you trust who wrote it, "
            f"`scoring migrate {directory}` (re-saves it in the data-only format)")
