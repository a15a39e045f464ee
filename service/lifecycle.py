"""Loading the bundle the service serves: once per process, checked, or a clean exit."""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Callable
from typing import NoReturn

from scoring.artifacts.bundle import DEFAULT_NAME, BundleError, ExplanationBundle
from scoring.dashboard import dashboard_data
from scoring.monitoring.attribution import AttributionMonitor
from service.logs import logger

# the BentoML service's name (its configuration key, what the V2 server metadata names)
SERVICE_NAME = "explained_model"
BUNDLE_TAG = os.environ.get("SCORING_BUNDLE", f"{DEFAULT_NAME}:latest")
DRIFT_TOP_FEATURES_DEFAULT = 10
# an explanation file (`scoring explain --output FILE.json`) the dashboard draws instead of
# the bundle's stored rows
DASHBOARD_EXPLANATION = "SCORING_DASHBOARD_EXPLANATION"


def not_serving(message: str) -> NoReturn:
    """Stop the server (exit status 1) with one clear log line: before any worker starts
    (the checks of ``ExplainedModel.check_bundle``), rather than every worker failing in
    turn. The message goes with the exit only where no log handler printed it."""
    logger.critical(message)
    raise SystemExit(1 if logger.hasHandlers() else message)


def check_setting(read: Callable[[], object]) -> None:
    """``read()`` an operator setting (the token, the timeouts); one that cannot be used
    (``RuntimeError`` naming it) stops the server."""
    try:
        read()
    except RuntimeError as exc:
        not_serving(f"not serving: {exc}")


def load_bundle(tag: str) -> ExplanationBundle:
    """The bundle, loaded and checked against its model (the probe rows recorded when its
    explainer was built); exits with one clear log line otherwise."""
    try:
        return ExplanationBundle.load(tag)
    except BundleError as exc:
        not_serving(f"scoring bundle {tag} failed its checks; not serving: {exc}")


def freeze_loaded_objects() -> None:
    """Take everything a worker has loaded (the libraries, the bundle) out of the garbage
    collector's full collections: each of those otherwise walks these hundreds of thousands
    of long-lived objects, stalling every request in flight for tens of milliseconds, which
    is what a server's tail latency is made of. Call once, after loading."""
    gc.collect()
    gc.freeze()


def attribution_monitor(bundle: ExplanationBundle) -> AttributionMonitor | None:
    """What the service watches in its explanations: the top ``SCORING_DRIFT_TOP_FEATURES``
    features (default 10) of the bundle's global explanation; ``None`` when
    ``SCORING_DRIFT_MONITORING=0`` or the bundle has no global explanation over its input
    columns (the features of the answers monitored). A top-features value that is not a
    positive integer exits with one log line."""
    if os.environ.get("SCORING_DRIFT_MONITORING", "1").strip() == "0":
        return None
    glob = bundle.global_explanation
    if glob is None or glob.features != bundle.feature_names:
        logger.warning("bundle %s has no global explanation over its input columns: "
                       "attributions are not monitored", bundle.tag)
        return None
    value = os.environ.get("SCORING_DRIFT_TOP_FEATURES", str(DRIFT_TOP_FEATURES_DEFAULT))
    # ASCII digits only: str.isdigit also takes "³", which int() then refuses
    if not re.fullmatch(r"[0-9]{1,9}", value.strip()) or int(value) < 1:
        not_serving("not serving: SCORING_DRIFT_TOP_FEATURES must be a positive integer, "
                    f"got {value!r}")
    monitor = AttributionMonitor(glob, int(value))
    if not monitor.exact_reference:
        logger.warning("bundle %s's global explanation has no mean per-row shares (saved "
                       "before they were recorded): the attribution reference is its "
                       "normalised global importance", bundle.tag)
    return monitor


def check_dashboard_data(bundle: ExplanationBundle) -> None:
    """A ``SCORING_DASHBOARD_EXPLANATION`` file that cannot be read stops the server with one
    clear log line (rather than every worker failing)."""
    path = os.environ.get(DASHBOARD_EXPLANATION)
    if not path:
        return
    try:
        dashboard_data(bundle, path)
    except ValueError as exc:
        not_serving(f"{DASHBOARD_EXPLANATION}: not serving: {exc}")
