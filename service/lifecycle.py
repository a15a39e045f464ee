"""Loading the bundle the service serves: once per process, checked, or a clean exit."""

from __future__ import annotations

import logging
import os

from scoring.artifacts.bundle import DEFAULT_NAME, BundleError, ExplanationBundle
from scoring.dashboard import dashboard_data

BUNDLE_TAG = os.environ.get("SCORING_BUNDLE", f"{DEFAULT_NAME}:latest")
# an explanation file (`scoring explain --output FILE.json`) the dashboard draws instead of
# the bundle's stored rows
DASHBOARD_EXPLANATION = "SCORING_DASHBOARD_EXPLANATION"
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


def check_dashboard_data(bundle: ExplanationBundle) -> None:
    """A ``SCORING_DASHBOARD_EXPLANATION`` file that cannot be read stops the server with one
    clear log line (rather than every worker failing)."""
    path = os.environ.get(DASHBOARD_EXPLANATION)
    if not path:
        return
    try:
        dashboard_data(bundle, path)
    except ValueError as exc:
        message = f"{DASHBOARD_EXPLANATION}: not serving: {exc}"
        logger.critical(message)
        raise SystemExit(message) from None
