"""``ExplanationClient``: upload explanations to an MLflow run and download them anywhere.

The Azure SDK's ``ExplanationClient`` over MLflow runs. Each upload is stored as

- the artifact ``explanations/<id>/explanation.json`` (``Explanation.to_json``, lossless),
  and ``explanations/<id>/true_ys.json`` when ``true_ys`` is given;
- tags ``scoring.explanation.<id>.<field>`` with its metadata, readable in the MLflow UI;
- last, the tag ``scoring.explanation.<id>`` holding all the metadata as JSON: the commit
  marker. Only explanations with that tag are listed or downloaded, so an upload that dies
  half-way leaves nothing a reader can see, and since every key names its explanation's id,
  concurrent uploaders to one run never overwrite each other.

Readers trust none of it: tags can be set by anyone who can write to the run, so a marker
counts only when its id has the form uploads give (32 hex digits) and its JSON is whole;
artifact paths are built from that id alone (a marker's ``artifact_path`` is never
followed), and what is read back is checked by ``Explanation.from_json``.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

from scoring.core.counts import counted
from scoring.core.explanation import Explanation

TAG_PREFIX = "scoring.explanation."
ARTIFACT_DIR = "explanations"
EXPLANATION_FILE = "explanation.json"
TRUE_YS_FILE = "true_ys.json"
# MLflow 2.x stores at most 5,000 characters per tag value (3.x: 8,000)
_MAX_TAG_VALUE = 5000
_INSTALL_HINT = "pip install 'scoring[mlflow]'"
# what uploads name explanations with: uuid4().hex
_ID = re.compile(r"[0-9a-f]{32}")


class ExplanationNotFound(LookupError):
    """No (committed) explanation with that id, none at all in the run, or no such run."""


def _mlflow() -> Any:
    try:
        import mlflow
    except ImportError:
        raise ImportError("ExplanationClient needs MLflow, which is not installed: "
                          f"{_INSTALL_HINT}") from None
    return mlflow


def _retry(call: Any, *args: Any, attempts: int = 8, **kwargs: Any) -> Any:
    """Call an MLflow write, retrying on transient failures: a SQLite tracking store shared
    by several processes answers "database is locked" while another one writes."""
    delay = 0.05
    for attempt in range(attempts):
        try:
            return call(*args, **kwargs)
        except Exception as exc:  # MlflowException, sqlalchemy OperationalError, HTTP errors
            transient = any(word in str(exc).lower() for word in
                            ("locked", "busy", "timed out", "timeout", "temporarily",
                             "connection", "503", "502", "504"))
            if not transient or attempt == attempts - 1:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")


class ExplanationClient:
    """Upload explanations to an MLflow run and download them back (the seed's
    ``ExplanationClient``).

    ``tracking_uri`` defaults to MLflow's own default (``MLFLOW_TRACKING_URI``, otherwise
    ``sqlite:///mlflow.db`` with local artifacts); an ``http://`` URI talks to an
    ``mlflow server``.
    """

    def __init__(self, tracking_uri: str | None = None, run_id: str | None = None) -> None:
        mlflow = _mlflow()
        if not run_id:
            raise ValueError("ExplanationClient needs the run_id of an MLflow run "
                             "(or use ExplanationClient.from_run(run))")
        self.tracking_uri = tracking_uri or mlflow.get_tracking_uri()
        self.run_id = str(run_id)
        self._client = mlflow.MlflowClient(tracking_uri=self.tracking_uri)

    @classmethod
    def from_run(cls, run: Any, tracking_uri: str | None = None) -> ExplanationClient:
        """A client for ``run``: an ``mlflow.ActiveRun`` / ``mlflow.entities.Run`` or a run
        id."""
        run_id = run if isinstance(run, str) else getattr(getattr(run, "info", None),
                                                          "run_id", None)
        if run_id is None:
            raise TypeError(f"from_run needs an MLflow run or a run id, got {type(run).__name__}")
        return cls(tracking_uri=tracking_uri, run_id=run_id)

    def __repr__(self) -> str:
        return f"ExplanationClient(tracking_uri={self.tracking_uri!r}, run_id={self.run_id!r})"

    # -- upload -------------------------------------------------------------------------
    def upload_model_explanation(self, explanation: Explanation, comment: str | None = None,
                                 top_k: int | None = None, true_ys: Any = None) -> str:
        """Store ``explanation`` in the run (only its ``top_k`` most important features when
        given) and return its id. Several explanations can be uploaded to one run."""
        if not isinstance(explanation, Explanation):
            raise TypeError("upload_model_explanation takes a scoring.Explanation, got "
                            f"{type(explanation).__name__}")
        text = explanation.to_json(top_k=top_k)  # validates top_k before anything is written
        explanation_id = uuid.uuid4().hex
        n_features = len(explanation.features) if top_k is None \
            else min(top_k, len(explanation.features))
        metadata = {
            "id": explanation_id,
            "comment": comment,
            "method": explanation.method,
            "model_output": explanation.model_output,
            "classes": explanation.classes,
            "top_k": top_k,
            "n_features": n_features,
            "raw": explanation.raw,
            "rows": explanation.num_examples if explanation.has_local else None,
            "has_local": explanation.has_local,
            "has_true_ys": true_ys is not None,
            "artifact_path": _artifact(explanation_id, EXPLANATION_FILE),
        }
        # 1. the data; a writer killed here leaves an artifact no tag points to
        _retry(self._client.log_text, self.run_id, text, metadata["artifact_path"])
        if true_ys is not None:
            ys = true_ys.tolist() if hasattr(true_ys, "tolist") else list(true_ys)
            _retry(self._client.log_text, self.run_id, json.dumps(ys),
                   _artifact(explanation_id, TRUE_YS_FILE))
        # 2. readable tags per field (the UI's run page); not what readers trust
        from mlflow.entities import RunTag

        fields = [RunTag(f"{TAG_PREFIX}{explanation_id}.{key}", _tag_text(value))
                  for key, value in metadata.items() if key not in ("id", "artifact_path")]
        _retry(self._client.log_batch, self.run_id, tags=fields)
        # 3. the commit marker, last; its time orders the run's explanations
        metadata["uploaded_at"] = time.time()
        _retry(self._client.set_tag, self.run_id, f"{TAG_PREFIX}{explanation_id}",
               _marker_text(metadata))
        return explanation_id

    # -- read -----------------------------------------------------------------------------
    def list_model_explanations(self, comment: str | None = None) -> list[dict]:
        """Metadata of the run's committed explanations, oldest upload first; only those
        whose ``comment`` equals ``comment`` when given.

        Only the commit markers are read, not the stored explanations (a listing would
        otherwise download every upload): a malformed marker (an id uploads do not give,
        JSON that is not the metadata of that id) is skipped with a warning naming its tag,
        so the rest of the run stays readable; a damaged stored explanation shows when it
        is downloaded. ``artifact_path`` is where a download reads, built from the id.
        """
        from mlflow.exceptions import MlflowException

        try:
            tags = self._client.get_run(self.run_id).data.tags
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            raise ExplanationNotFound(f"no run {self.run_id!r} at {self.tracking_uri}") \
                from None
        found = []
        for key, value in tags.items():
            rest = key[len(TAG_PREFIX):] if key.startswith(TAG_PREFIX) else ""
            if not rest or "." in rest:  # per-field tags; only markers count
                continue
            problem = _marker_problem(rest, value)
            if problem:
                warnings.warn(f"run {self.run_id}: skipping tag {key!r}: {problem}",
                              UserWarning, stacklevel=2)
                continue
            metadata = {**json.loads(value), "artifact_path": _artifact(rest, EXPLANATION_FILE)}
            if comment is None or metadata.get("comment") == comment:
                found.append(metadata)
        found.sort(key=lambda m: (m["uploaded_at"], m["id"]))
        return found

    def download_model_explanation(self, explanation_id: str | None = None,
                                   top_k: int | None = None) -> Explanation:
        """The explanation ``explanation_id`` (the latest upload when ``None``), with only
        its ``top_k`` most important features when given.

        A stored explanation that does not pass ``Explanation.from_json``'s checks raises
        ``ValueError`` naming the run and the artifact: the caller asked for that one
        upload, so no other (an older one, say) is returned in its place. An upload that
        holds fewer than ``top_k`` features (uploaded with a smaller ``top_k``) is returned
        whole, with a ``UserWarning`` saying so.
        """
        metadata = self._find(explanation_id)
        path = _artifact(metadata["id"], EXPLANATION_FILE)
        try:
            explanation = Explanation.from_json(self._read_artifact(path))
        except ValueError as exc:
            raise ValueError(f"run {self.run_id}: artifact {path} is not a valid "
                             f"explanation: {exc}") from None
        if top_k is not None:
            stored = len(explanation.features)
            explanation = Explanation.from_json(explanation.to_json(top_k=top_k))
            if stored < top_k:
                kept = f" (uploaded with top_k={metadata['top_k']})" \
                    if metadata.get("top_k") is not None else ""
                warnings.warn(f"run {self.run_id}: explanation {metadata['id']} holds "
                              f"{counted(stored, 'feature')}{kept}; returning "
                              f"{'it' if stored == 1 else 'all ' + str(stored)}, not "
                              f"top_k={top_k}", UserWarning, stacklevel=2)
        return explanation

    def download_true_ys(self, explanation_id: str | None = None) -> list | None:
        """The ``true_ys`` uploaded with an explanation (``None`` if there were none);
        ``ValueError`` naming the run and the artifact when it is not a JSON list."""
        metadata = self._find(explanation_id)
        if not metadata.get("has_true_ys"):
            return None
        path = _artifact(metadata["id"], TRUE_YS_FILE)
        try:
            ys = json.loads(self._read_artifact(path))
        except ValueError as exc:
            raise ValueError(f"run {self.run_id}: artifact {path} is not JSON: {exc}") \
                from None
        if not isinstance(ys, list):
            raise ValueError(f"run {self.run_id}: artifact {path} holds a "
                             f"{type(ys).__name__}, not the list of true_ys")
        return ys

    def _find(self, explanation_id: str | None) -> dict:
        uploads = self.list_model_explanations()
        if not uploads:
            raise ExplanationNotFound(f"run {self.run_id} has no uploaded explanation "
                                      f"(tracking URI {self.tracking_uri})")
        if explanation_id is None:
            return uploads[-1]
        for metadata in uploads:
            if metadata["id"] == explanation_id:
                return metadata
        known = ", ".join(m["id"] for m in uploads)
        raise ExplanationNotFound(f"run {self.run_id} has no explanation {explanation_id!r}; "
                                  f"its explanations are {known}")

    def _read_artifact(self, path: str) -> str:
        from mlflow.exceptions import MlflowException

        # MLflow draws a progress bar per downloaded file unless told not to
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        with tempfile.TemporaryDirectory() as tmp:
            try:
                local = self._client.download_artifacts(self.run_id, path, dst_path=tmp)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
                raise ExplanationNotFound(f"run {self.run_id} has no artifact {path}") \
                    from None
            return Path(local).read_text()


def _artifact(explanation_id: str, name: str) -> str:
    """Where an upload's file is, from its validated id alone."""
    return f"{ARTIFACT_DIR}/{explanation_id}/{name}"


def _marker_problem(explanation_id: str, value: str) -> str:
    """Why the commit marker of ``explanation_id`` cannot be listed ("" when it can)."""
    if not _ID.fullmatch(explanation_id):
        return "not an explanation id (32 hex digits)"
    try:
        metadata = json.loads(value)
    except ValueError:
        return "its value is not JSON"
    if not isinstance(metadata, dict):
        return f"its value is a JSON {type(metadata).__name__}, not an object"
    if metadata.get("id") != explanation_id:
        return f"its metadata names id {str(metadata.get('id'))[:40]!r}"
    uploaded_at = metadata.get("uploaded_at")
    if isinstance(uploaded_at, bool) or not isinstance(uploaded_at, (int, float)) \
            or not math.isfinite(uploaded_at):
        return "its uploaded_at is not a time"
    if not isinstance(metadata.get("comment"), (str, type(None))):
        return "its comment is not text"
    return ""


def _tag_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= _MAX_TAG_VALUE else text[: _MAX_TAG_VALUE - 3] + "..."


def _marker_text(metadata: dict) -> str:
    """The metadata as JSON within MLflow's tag size; a long class list or comment is
    shortened here (the artifact keeps them whole)."""
    text = json.dumps(metadata)
    if len(text) > _MAX_TAG_VALUE and metadata.get("classes") is not None:
        metadata = {**metadata, "classes": None, "n_classes": len(metadata["classes"])}
        text = json.dumps(metadata)
    if len(text) > _MAX_TAG_VALUE and metadata.get("comment"):
        room = max(0, len(metadata["comment"]) - (len(text) - _MAX_TAG_VALUE) - 10)
        metadata = {**metadata, "comment": metadata["comment"][:room] + "..."}
        text = json.dumps(metadata)
    return text
