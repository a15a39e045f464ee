"""The model and its scoring explainer, saved side by side in the BentoML model store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from scoring.explanation import Explanation
from scoring.input_schema import InputSchema
from scoring.model_output import model_fingerprint
from scoring.persistence import library_versions, load, save
from scoring.scoring_explainer import ScoringExplainer

MODEL_FILE = "model.pkl"
MANIFEST_FILE = "bundle.json"
DEFAULT_NAME = "breast_cancer_svc"


class BundleError(RuntimeError):
    """A bundle that must not be served: damaged files or a mismatched explainer."""


class ExplanationBundle:
    """A fitted model, the scoring explainer built for it, and what the service shows:
    feature names, classes, the input schema, a global explanation of the training data
    and the distillation report.

    Build it with :func:`scoring.distill.build_bundle` or directly, save it with
    :meth:`save` (a BentoML model) and get it back with :meth:`load`.
    """

    def __init__(self, model: Any, scoring_explainer: ScoringExplainer, *,
                 global_explanation: Explanation | None = None,
                 report: dict | None = None, tag: str | None = None) -> None:
        scoring_explainer._check_fitted()
        self.model = model
        self.scoring_explainer = scoring_explainer
        self.global_explanation = global_explanation
        self.report = dict(report or getattr(scoring_explainer, "report", None) or {})
        self.tag = tag

    # -- what the service needs ----------------------------------------------------------
    @property
    def input_schema(self) -> InputSchema:
        return self.scoring_explainer.input_schema_

    @property
    def feature_names(self) -> list[str]:
        """The model's input columns (raw columns when the bundle has transformations)."""
        return list(self.input_schema.columns)

    @property
    def engineered_feature_names(self) -> list[str]:
        return list(self.scoring_explainer.features_)

    @property
    def has_transformations(self) -> bool:
        return self.scoring_explainer.raw_feature_map_ is not None

    @property
    def classes(self) -> list | None:
        classes = getattr(self.model, "classes_", None)
        names = self.scoring_explainer.classes_
        if names is not None:
            return list(names)
        return None if classes is None else [c.item() if isinstance(c, np.generic) else c
                                             for c in classes]

    def validate(self, data: Any) -> Any:
        return self.scoring_explainer.validate(data)

    def predict(self, rows: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """The model's own predictions for validated rows, and its probabilities (``None``
        without ``predict_proba``); the transformations run once for both."""
        X = self.scoring_explainer._engineer(rows)
        probabilities = self.model.predict_proba(X) if hasattr(self.model, "predict_proba") \
            else None
        return self.model.predict(X), probabilities

    def explain(self, rows: Any, get_raw: bool = False,
                probabilities: np.ndarray | None = None) -> Explanation:
        """Local explanation of validated rows. ``probabilities`` (from
        :meth:`predict_proba` on the same rows) spare explainers of ``predict_proba`` that
        need ``f(x)`` a second model call."""
        explainer = self.scoring_explainer
        reuse = probabilities is not None and explainer.model_function_.output == "predict_proba"
        return explainer.explain_local(rows, get_raw=get_raw,
                                       outputs=probabilities if reuse else None)

    def self_check(self) -> None:
        """Raise :class:`BundleError` unless the model reproduces the outputs recorded when
        the explainer was built (the readiness check of the service)."""
        try:
            self.scoring_explainer.verify_model(self.model)
        except ValueError as exc:
            raise BundleError(f"bundle {self.tag or ''}: {exc}") from None

    def metadata(self) -> dict:
        explainer = self.scoring_explainer
        return {
            "tag": self.tag,
            "model_class": f"{type(self.model).__module__}.{type(self.model).__name__}",
            "model_fingerprint": explainer.model_fingerprint_,
            "feature_names": self.feature_names,
            "feature_kinds": list(self.input_schema.kinds),
            "categories": self.input_schema.categories,
            "engineered_feature_names": self.engineered_feature_names,
            "has_transformations": self.has_transformations,
            "class_names": self.classes,
            "explainer": {"kind": explainer.method, "class": type(explainer).__name__,
                          "params": _jsonable(explainer.get_params()),
                          "model_output": explainer.model_function_.output,
                          "expected_values": _jsonable(explainer.expected_values)},
            "report": _jsonable(self.report),
        }

    # -- persistence -------------------------------------------------------------------
    def save(self, name: str = DEFAULT_NAME, labels: dict | None = None) -> str:
        """Save into the BentoML model store (``bentoml.models.create``); returns the tag."""
        import bentoml

        metadata = {"explainer": self.scoring_explainer.method,
                    "model_class": type(self.model).__name__,
                    "n_features": len(self.feature_names)}
        with bentoml.models.create(name, labels=labels or {}, metadata=metadata) as ref:
            self.write(Path(ref.path))
            tag = str(ref.tag)
        self.tag = tag
        return tag

    def write(self, directory: Path) -> None:
        """Write the bundle's files into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        joblib.dump(self.model, directory / MODEL_FILE)
        save(self.scoring_explainer, directory, exist_ok=True)
        manifest = {
            "format": "scoring.ExplanationBundle",
            "format_version": 1,
            "versions": library_versions(),
            "model_fingerprint": self.scoring_explainer.model_fingerprint_,
            "global_explanation": None if self.global_explanation is None
            else self.global_explanation.to_dict(),
            "report": _jsonable(self.report),
        }
        (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1))

    @classmethod
    def load(cls, tag: str = f"{DEFAULT_NAME}:latest") -> ExplanationBundle:
        """Load a bundle from the BentoML model store and check that its parts belong
        together. Raises :class:`BundleError` with the reason otherwise."""
        import bentoml

        try:
            ref = bentoml.models.get(tag)
        except bentoml.exceptions.NotFound:
            raise BundleError(f"no bundle {tag!r} in the BentoML model store; build one with "
                              "`scoring demo` or `scoring distill`") from None
        bundle = cls.read(Path(ref.path), tag=str(ref.tag))
        return bundle

    @classmethod
    def read(cls, directory: Path, tag: str | None = None) -> ExplanationBundle:
        """Read bundle files from ``directory`` (see :meth:`write`)."""
        label = tag or str(directory)
        try:
            manifest = json.loads((directory / MANIFEST_FILE).read_text())
            model = joblib.load(directory / MODEL_FILE)
            explainer = load(directory)
        except (OSError, ValueError, EOFError) as exc:
            raise BundleError(f"bundle {label} is damaged: {exc}") from None
        except Exception as exc:  # unpickling a damaged model raises anything
            raise BundleError(f"bundle {label} is damaged: {type(exc).__name__}: {exc}") \
                from None
        fingerprint = model_fingerprint(model)
        if manifest.get("model_fingerprint") != explainer.model_fingerprint_:
            raise BundleError(f"bundle {label}: its explainer was built for model "
                              f"{explainer.model_fingerprint_[:12]}, the manifest names "
                              f"{str(manifest.get('model_fingerprint'))[:12]}")
        if fingerprint != explainer.model_fingerprint_:
            # pickles can differ across a round trip; the behavioural check decides
            try:
                explainer.verify_model(model)
            except ValueError as exc:
                raise BundleError(f"bundle {label}: {exc}") from None
        glob = manifest.get("global_explanation")
        bundle = cls(model, explainer,
                     global_explanation=None if glob is None else Explanation.from_dict(glob),
                     report=manifest.get("report"), tag=tag)
        bundle.self_check()
        # serve the model object itself through the explainer: one copy in memory
        explainer.model_function_.model = model
        return bundle


def _jsonable(value: Any) -> Any:
    """Arrays and numpy scalars to plain Python, recursively."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
