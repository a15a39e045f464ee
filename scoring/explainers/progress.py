"""The model explainers' progress bar: on stderr, for calls that last, with the usual
switches."""

from __future__ import annotations

import os
import sys
from typing import Any

from tqdm.auto import tqdm

# seconds a call runs before its bar appears: quick calls stay silent
PROGRESS_DELAY = 2.0


def progress_bar(total: int, desc: str, show_progress: bool | None, unit: str = "row") -> Any:
    """A tqdm bar of ``total`` steps on stderr, to use as a context manager.

    ``show_progress``: ``None`` (the default) draws it once the call has run
    :data:`PROGRESS_DELAY` seconds, unless the environment sets ``TQDM_DISABLE``; ``True``
    draws it at once, ``False`` never.
    """
    check_show_progress(show_progress)
    quiet = _disabled_by_environment() if show_progress is None else not show_progress
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False,
                disable=quiet, delay=PROGRESS_DELAY if show_progress is None else 0.0)


def check_show_progress(show_progress: Any) -> bool | None:
    """``show_progress`` as given, or ``ValueError`` naming it."""
    if show_progress is not None and not isinstance(show_progress, bool):
        raise ValueError(f"show_progress must be None, True or False, got {show_progress!r}")
    return show_progress


def _disabled_by_environment() -> bool:
    """``TQDM_DISABLE`` as set now: tqdm itself reads it once, when it is imported, so a
    notebook that sets it later would still get bars."""
    return os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false")
