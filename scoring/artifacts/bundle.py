"""The model and its scoring explainer, saved side by side in the BentoML model store, and
the one request path from user rows to predictions with their explanation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scoring.artifacts.archive import unpacked_limit
from scoring.artifacts.persistence import (
    ARRAYS_FILE,
    FILENAME,
    OLD_FILENAME,
    read_explainer,
    write_explainer,
)
from scoring.artifacts.state import (
    SIGNATURE_ABSENT,
    SIGNATURE_VERIFIED,
    check_hashes,
    check_signature,
    check_versions,
    read_json,
    sha256_file,
    sign,
    signing_key,
    write_atomic,
)
from scoring.artifacts.trust import check_storable
from scoring.core.codec import StateError
from scoring.core.explanation import Explanation
from scoring.core.plain import plain
from scoring.evaluation.report import DistillReport, as_report
from scoring.model.schema import InputSchema
from scoring.model.spec import ModelSpec
from scoring.scoring_explainers.base import ScoringExplainer
from scoring.scoring_explainers.request import ScoredRows

MANIFEST_FILE = "bundle.json"
# optional: the explained sample of training rows the dashboard draws
DATASET_FILE = "dataset_explanation.json"
OLD_MODEL_FILE = "model.pkl"
BUNDLE_FORMAT = "scoring.ExplanationBundle"
BUNDLE_FORMAT_VERSION = 2
DEFAULT_NAME = "breast_cancer_svc"


class BundleError(RuntimeError):
    """A bundle that must not be served: damaged files or a mismatched explainer."""


class ExplanationBundle:
    """A fitted model, the scoring explainer built for it, and what the service shows:
    feature names, classes, the input schema, a global explanation of the training data,
    the distillation report and, optionally, a dataset explanation (local values of a
    sample of training rows, with the rows) for the dashboard.

    Build it from a model and a fitted scoring explainer (:func:`~scoring.distill` or any
    scoring explainer's ``fit``), save it with :meth:`save` (a BentoML model) and get it
    back with :meth:`load`. :meth:`score` is the request path.

    The model must be storable as built: types outside the allow-list are refused here,
    by name (:class:`~scoring.artifacts.trust.UntrustedTypes`), unless ``trusted_types``
    names them or ``allow_pickle`` lets a pickle hold it, so no work is spent on a bundle
    that cannot be saved.
    """

    def __init__(self, model: Any, scoring_explainer: ScoringExplainer, *,
                 global_explanation: Explanation | None = None,
                 dataset_explanation: Explanation | None = None,
                 report: DistillReport | dict | None = None, tag: str | None = None,
                 trusted_types: list[str] | tuple = (), allow_pickle: bool = False) -> None:
        scoring_explainer.check_fitted()
        if not allow_pickle:
            check_storable(model, trusted_types)
        self._assemble(model, scoring_explainer, global_explanation, dataset_explanation,
                       report, tag, trusted_types, allow_pickle)

    def _assemble(self, model: Any, scoring_explainer: ScoringExplainer,
                  global_explanation: Explanation | None,
                  dataset_explanation: Explanation | None,
                  report: DistillReport | dict | None, tag: str | None,
                  trusted_types: list[str] | tuple, allow_pickle: bool) -> None:
        # what the model file may hold beyond the allow-list, named by the saver (see write)
        self.trusted_types = list(trusted_types)
        self.allow_pickle = allow_pickle
        self.trust: dict = {}
        self.model = model
        self.scoring_explainer = scoring_explainer
        self.global_explanation = global_explanation
        self.dataset_explanation = dataset_explanation
        self.report = as_report(report) or scoring_explainer.report_
        self.tag = tag

    # -- what the service needs ----------------------------------------------------------
    @property
    def spec(self) -> ModelSpec:
        """What the model takes and gives (shared with the explainer)."""
        return self.scoring_explainer.spec_

    @property
    def input_schema(self) -> InputSchema:
        return self.spec.schema

    @property
    def feature_names(self) -> list[str]:
        """The model's input columns (raw columns when the bundle has transformations)."""
        return list(self.spec.raw_features)

    @property
    def engineered_feature_names(self) -> list[str]:
        return list(self.spec.engineered_features)

    @property
    def has_transformations(self) -> bool:
        return self.spec.layout.has_raw

    @property
    def classes(self) -> list | None:
        if self.spec.classes is not None:
            return list(self.spec.classes)
        return plain(getattr(self.model, "classes_", None))

    def score(self, data: Any, *, get_raw: bool | None = None, explain: bool = True,
              predict: bool = True, keep_rows: bool = False) -> ScoredRows:
        """The request path (:meth:`ScoringExplainer.score
        <scoring.scoring_explainers.base.ScoringExplainer.score>`) of the bundle's
        explainer, which explains the bundle's model: predictions and (``explain``) local
        explanations of user rows ``data``. Raises :class:`~scoring.InputError` for rows
        the schema or the model refuses."""
        return self.scoring_explainer.score(data, get_raw=get_raw, explain=explain,
                                            predict=predict, keep_rows=keep_rows)

    def metadata(self) -> dict:
        explainer = self.scoring_explainer
        schema = self.input_schema
        return plain(finite=True, value={
            "tag": self.tag,
            "model_class": f"{type(self.model).__module__}.{type(self.model).__name__}",
            "model_fingerprint": self.spec.fingerprint,
            "feature_names": self.feature_names,
            "feature_kinds": list(schema.kinds),
            "categories": schema.categories,
            "engineered_feature_names": self.engineered_feature_names,
            "has_transformations": self.has_transformations,
            "class_names": self.classes,
            "explainer": {"method": explainer.method, "class": type(explainer).__name__,
                          "params": explainer.get_params(),
                          "model_output": self.spec.function.output,
                          "expected_values": explainer.expected_values},
            "report": None if self.report is None else self.report.to_dict(),
            "trust": self.trust,
        })

    # -- persistence -------------------------------------------------------------------
    def save(self, name: str = DEFAULT_NAME, labels: dict | None = None) -> str:
        """Save into the BentoML model store (``bentoml.models.create``); returns the tag."""
        import bentoml

        metadata = {"explainer": self.scoring_explainer.method,
                    "model_class": type(self.model).__name__,
                    "n_features": len(self.feature_names),
                    "allow_pickle": self.allow_pickle}
        with bentoml.models.create(name, labels=labels or {}, metadata=metadata) as ref:
            self.write(Path(ref.path))
            tag = str(ref.tag)
        self.tag = tag
        return tag

    def write(self, directory: Path) -> None:
        """Write the bundle's files into ``directory``: the explainer's JSON and arrays,
        ``model.skops`` (the model, and the explainer's transformations) and the manifest
        ``bundle.json`` with the SHA-256 of every file (signed with ``SCORING_SIGNING_KEY``
        when set)."""
        directory.mkdir(parents=True, exist_ok=True)
        for old in (OLD_MODEL_FILE, OLD_FILENAME):
            (directory / old).unlink(missing_ok=True)
        explainer_file = write_explainer(self.scoring_explainer, directory, self.model,
                                         trusted_types=self.trusted_types,
                                         allow_pickle=self.allow_pickle)
        explainer_manifest = json.loads(explainer_file.read_text())
        model = explainer_manifest["model"]
        files = [FILENAME, ARRAYS_FILE, model["file"]]
        (directory / DATASET_FILE).unlink(missing_ok=True)
        if self.dataset_explanation is not None:
            write_atomic(directory / DATASET_FILE, self.dataset_explanation.to_json().encode())
            files.append(DATASET_FILE)
        self.trust = _trust(model, SIGNATURE_VERIFIED if signing_key() else SIGNATURE_ABSENT)
        manifest = sign({
            "format": BUNDLE_FORMAT,
            "format_version": BUNDLE_FORMAT_VERSION,
            "versions": explainer_manifest["versions"],
            "model_fingerprint": self.spec.fingerprint,
            "model": model,
            "files": {name: sha256_file(directory / name) for name in files},
            "global_explanation": None if self.global_explanation is None
            else self.global_explanation.to_dict(),
            "report": None if self.report is None else self.report.to_dict(),
        })
        write_atomic(directory / MANIFEST_FILE, json.dumps(manifest, indent=1).encode())

    @classmethod
    def load(cls, tag: str = f"{DEFAULT_NAME}:latest", *, trusted_types: list[str] | tuple = (),
             allow_pickle: bool = False) -> ExplanationBundle:
        """Load a bundle from the BentoML model store and check that its parts belong
        together (``trusted_types``: see :meth:`read`). Raises :class:`BundleError` with
        the reason otherwise."""
        import bentoml

        try:
            ref = bentoml.models.get(tag)
        except bentoml.exceptions.NotFound:
            raise BundleError(f"no bundle {tag!r} in the BentoML model store; build one with "
                              "`scoring demo` or `scoring distill`") from None
        return cls.read(Path(ref.path), tag=str(ref.tag), trusted_types=trusted_types,
                        allow_pickle=allow_pickle)

    @classmethod
    def read(cls, directory: Path, tag: str | None = None, *,
             trusted_types: list[str] | tuple = (),
             allow_pickle: bool = False) -> ExplanationBundle:
        """Read bundle files from ``directory`` (see :meth:`write`) and check them: the
        signature, then the SHA-256 of every file before reading any, the library versions,
        the model's types; nothing is unpickled (``allow_pickle`` aside, see
        :func:`~scoring.load`). ``trusted_types``: types beyond the allow-list the model
        may hold (``SCORING_TRUSTED_TYPES`` adds more; the bundle's own list counts only
        when its signature verified with ``SCORING_SIGNING_KEY``). Every file that is not
        what it should be is a :class:`BundleError` naming it."""
        label = f"bundle {tag or directory}"
        try:
            unpacked_limit()  # an operator's setting that cannot be used, named first
        except RuntimeError as exc:
            raise BundleError(f"{label} is not read: {exc}") from None
        manifest_path = directory / MANIFEST_FILE
        old = (f"{label} was saved by an older version of scoring as pickles, which can run "
               "code when loaded, so it is not loaded; re-save it: run `scoring distill` "
               f"again, or, if you trust who wrote it, `scoring migrate {tag or directory}`")
        if not manifest_path.exists() and (directory / OLD_MODEL_FILE).exists():
            raise BundleError(old)
        try:
            manifest = read_json(manifest_path, label, "bundle manifest")
            if manifest.get("format") != BUNDLE_FORMAT or manifest.get(
                    "format_version") != BUNDLE_FORMAT_VERSION:
                if (directory / OLD_MODEL_FILE).exists():
                    raise StateError(old)
                raise StateError(f"{label} is damaged: {MANIFEST_FILE} is not a bundle manifest "
                                 f"of format version {BUNDLE_FORMAT_VERSION}")
            signature = check_signature(manifest, label)
            info = manifest.get("model") if isinstance(manifest.get("model"), dict) else {}
            check_hashes(directory, manifest.get("files"), label,
                         (FILENAME, ARRAYS_FILE, str(info.get("file"))))
            check_versions(manifest.get("versions"), label)
            explainer, models, read_info = read_explainer(
                directory, label, trusted_types=trusted_types, allow_pickle=allow_pickle)
            if read_info != info:
                raise StateError(f"{label} is damaged: {MANIFEST_FILE} and {FILENAME} "
                                 "describe the model file differently")
        except StateError as exc:
            message = str(exc)
            raise BundleError(message if message.startswith(label)
                              else f"{label}: {message}") from None
        except OSError as exc:
            raise BundleError(f"{label} is damaged: {exc}") from None
        model = models.get("model")
        spec = explainer.spec_
        if model is None:
            raise BundleError(f"{label} is damaged: its model file holds no model")
        if manifest.get("model_fingerprint") != spec.fingerprint:
            raise BundleError(f"{label}: its explainer was built for model "
                              f"{spec.fingerprint[:12]}, the manifest names "
                              f"{str(manifest.get('model_fingerprint'))[:12]}")
        try:
            # one model object in memory, the bundle's, checked on the probe rows
            spec.bind(model)
        except Exception as exc:  # a damaged model may fail in any way on the probe rows
            raise BundleError(f"{label}: {exc}") from None
        views = _stored_views(directory, manifest, label)
        # its model file was just loaded under the trust rule: no second check
        bundle = cls.__new__(cls)
        bundle._assemble(model, explainer, views["global_explanation"],
                         views["dataset_explanation"], views.get("report"), tag,
                         info.get("trusted_types", []), bool(info.get("allow_pickle")))
        bundle.trust = _trust(info, signature)
        return bundle


def _stored_views(directory: Path, manifest: dict, label: str) -> dict:
    """The global explanation and distillation report of ``manifest`` and the dataset
    explanation file, each checked: a :class:`BundleError` naming the one that is not
    valid (which would otherwise fail later, on a request or in every worker)."""
    views: dict[str, Any] = {"global_explanation": None, "dataset_explanation": None}
    try:
        where = f"{MANIFEST_FILE}'s global explanation"
        if manifest.get("global_explanation") is not None:
            views["global_explanation"] = Explanation.from_dict(manifest["global_explanation"])
        where = f"{MANIFEST_FILE}'s distillation report"
        report = manifest.get("report")
        if report is not None and not isinstance(report, dict):
            raise ValueError("not an object")
        views["report"] = as_report(report)
        where = DATASET_FILE
        if DATASET_FILE in manifest["files"]:  # its hash was checked with the others
            dataset = Explanation.from_json((directory / DATASET_FILE).read_bytes())
            if not dataset.has_local or dataset.data is None:
                raise ValueError("it holds no local values with their rows")
            views["dataset_explanation"] = dataset
    except (ValueError, TypeError, KeyError, OSError) as exc:
        raise BundleError(f"{label} is damaged: {where} is not valid: {exc}") from None
    return views


def _trust(model: dict, signature: str) -> dict:
    """What ``GET /metadata`` shows of how far the bundle can be trusted: the model file's
    format, whether a pickle was allowed, the types beyond the allow-list it holds (named
    by the operator, or by the saver under a verified signature), and ``signature``:
    ``verified``, ``unverified`` (a signature but no key to check it) or ``absent``."""
    return {"model_format": model.get("format"),
            "allow_pickle": bool(model.get("allow_pickle")),
            "trusted_types": list(model.get("trusted_types", [])),
            "signature": signature}
