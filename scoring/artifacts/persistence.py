"""``save`` and ``load`` for scoring explainers, as in the Azure SDK (joblib underneath),
with the library versions and the model fingerprint recorded and checked."""

from __future__ import annotations

import os
import pickle
import zlib
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import shap
import sklearn

from scoring.scoring_explainers.base import ScoringExplainer

FILENAME = "scoring_explainer.pkl"
FORMAT = "scoring.ScoringExplainer"
FORMAT_VERSION = 1


def library_versions() -> dict[str, str]:
    """The versions whose pickles must match for a saved explainer to load safely."""
    return {"scikit-learn": sklearn.__version__, "shap": shap.__version__,
            "numpy": np.__version__}


def save(scoring_explainer: ScoringExplainer, directory: str | os.PathLike = ".",
         exist_ok: bool = False) -> Path:
    """Write ``scoring_explainer.pkl`` into ``directory`` and return its path."""
    if not isinstance(scoring_explainer, ScoringExplainer):
        raise TypeError(f"save expects a fitted scoring explainer, got "
                        f"{type(scoring_explainer).__name__}")
    scoring_explainer.check_fitted()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / FILENAME
    if path.exists() and not exist_ok:
        raise FileExistsError(f"{path} already exists; pass exist_ok=True to overwrite it")
    payload = pickle.dumps(scoring_explainer, protocol=pickle.HIGHEST_PROTOCOL)
    envelope = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "versions": library_versions(),
        "explainer_class": type(scoring_explainer).__name__,
        "model_fingerprint": scoring_explainer.spec_.fingerprint,
        # the checksum tells a truncated or altered file from an incompatible one
        "crc32": zlib.crc32(payload),
        "payload": payload,
    }
    tmp = path.with_suffix(".tmp")
    joblib.dump(envelope, tmp)
    os.replace(tmp, path)  # never leave a half-written file under the real name
    return path


def load(path: str | os.PathLike) -> ScoringExplainer:
    """Read a scoring explainer written by :func:`save` (a file, or the directory holding it).

    Refuses, with a message saying what to do, files that are not scoring explainers, are
    truncated or damaged, or were written by other scikit-learn/shap/numpy versions.
    """
    path = Path(path)
    if path.is_dir():
        path = path / FILENAME
    if not path.exists():
        raise FileNotFoundError(f"no scoring explainer at {path}")
    try:
        envelope = joblib.load(path)
    except Exception as exc:  # joblib/pickle raise many types for damaged files
        raise ValueError(f"{path} is not a readable scoring explainer file (truncated or "
                         f"damaged?): {type(exc).__name__}: {exc}") from None
    if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
        raise ValueError(f"{path} is not a scoring explainer saved by scoring.save")
    if envelope.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} has format version {envelope.get('format_version')}; this "
                         f"library reads version {FORMAT_VERSION}")
    saved, current = envelope.get("versions", {}), library_versions()
    mismatched = {k: (saved.get(k), v) for k, v in current.items() if saved.get(k) != v}
    if mismatched:
        detail = ", ".join(f"{k} saved with {a}, running {b}" for k, (a, b) in mismatched.items())
        raise ValueError(f"{path} was saved by incompatible library versions ({detail}); "
                         "re-run distill with the installed versions or install the saved ones")
    payload = envelope.get("payload", b"")
    if zlib.crc32(payload) != envelope.get("crc32"):
        raise ValueError(f"{path} is damaged: its checksum does not match")
    try:
        explainer: Any = pickle.loads(payload)
    except (ModuleNotFoundError, AttributeError) as exc:
        # the classes moved into subpackages (scoring.scoring_explainers...) and took a
        # model spec: older files name modules and attributes that no longer exist
        raise ValueError(f"{path} was saved by an older version of scoring ({exc}); re-save "
                         "it with this version: run `scoring distill` (or fit and `save`) "
                         "again") from None
    if not isinstance(explainer, ScoringExplainer) or not hasattr(explainer, "spec_"):
        raise ValueError(f"{path} does not hold a scoring explainer")
    return explainer
