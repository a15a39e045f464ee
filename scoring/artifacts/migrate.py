"""Re-save bundles and explainers written as pickles by older versions in the data-only
format. This unpickles them, which runs any code they hold: only for files you trust."""

from __future__ import annotations

import json
import pickle
import zlib
from pathlib import Path
from typing import Any

from scoring.artifacts.bundle import MANIFEST_FILE, OLD_MODEL_FILE, ExplanationBundle
from scoring.artifacts.persistence import OLD_FILENAME, save
from scoring.core.explanation import Explanation
from scoring.scoring_explainers.base import ScoringExplainer


def read_old_explainer(path: Path) -> ScoringExplainer:
    """The explainer of an old ``scoring_explainer.pkl`` (unpickles: trusted files only)."""
    import joblib

    envelope = joblib.load(path)
    if not isinstance(envelope, dict) or envelope.get("format") != "scoring.ScoringExplainer":
        raise ValueError(f"{path} is not a scoring explainer saved by scoring.save")
    payload = envelope.get("payload", b"")
    if zlib.crc32(payload) != envelope.get("crc32"):
        raise ValueError(f"{path} is damaged: its checksum does not match")
    explainer = pickle.loads(payload)
    if not isinstance(explainer, ScoringExplainer) or not hasattr(explainer, "spec_"):
        raise ValueError(f"{path} does not hold a scoring explainer")
    return explainer


def migrate(source: str, name: str | None = None, **save_options: Any) -> str:
    """Re-save the old bundle ``source`` (a BentoML tag or a bundle directory) as a new
    bundle (``name``: default the old one's) and return its tag; or re-save an old
    explainer directory (or its ``scoring_explainer.pkl``) in place and return its path.
    ``save_options``: ``trusted_types``, ``allow_pickle`` (see :func:`scoring.save`)."""
    import joblib

    path = Path(source)
    tag_name = None
    if not path.exists():
        import bentoml

        ref = bentoml.models.get(source)
        path, tag_name = Path(ref.path), ref.tag.name
    directory = path if path.is_dir() else path.parent
    if not (directory / OLD_FILENAME).exists():
        raise ValueError(f"{source} holds no old-format scoring explainer ({OLD_FILENAME})")
    explainer = read_old_explainer(directory / OLD_FILENAME)
    if not (directory / OLD_MODEL_FILE).exists():
        saved = save(explainer, directory, exist_ok=True, **save_options)
        (directory / OLD_FILENAME).unlink()
        return str(saved)
    model = joblib.load(directory / OLD_MODEL_FILE)
    manifest = json.loads((directory / MANIFEST_FILE).read_text()) \
        if (directory / MANIFEST_FILE).exists() else {}
    glob = manifest.get("global_explanation")
    explainer.spec_.bind(model)
    bundle = ExplanationBundle(
        model, explainer, report=manifest.get("report"),
        global_explanation=None if glob is None else Explanation.from_dict(glob),
        **save_options)
    return bundle.save(name or tag_name or directory.name)
