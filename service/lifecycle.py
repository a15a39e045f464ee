"""Loading the bundle the service serves: once per process, checked, or a clean exit."""

from __future__ import annotations

import logging
import os

from scoring.artifacts.bundle import DEFAULT_NAME, BundleError, ExplanationBundle

BUNDLE_TAG = os.environ.get("SCORING_BUNDLE", f"{DEFAULT_NAME}:latest")
logger = logging.getLogger("bentoml.scoring")


def load_bundle(tag: str) -> ExplanationBundle:
    """The bundle, loaded and checked against its model (the probe rows recorded when its
    explainer was built); exits with one clear log line otherwise."""
    try:
        return ExplanationBundle.load(tag)
    except BundleError as exc:
        message = f"scoring bundle {tag} failed its checks; not serving: {exc}"
        logger.critical(message)
        raise SystemExit(message) from None
