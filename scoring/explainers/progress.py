"""The model explainers' progress bar: on stderr, for calls that last, with the usual
switches."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from scoring.model.rows import n_rows, take_rows

# seconds a call runs before its bar appears: quick calls stay silent
PROGRESS_DELAY = 2.0
_PARTS = 20


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


def over_rows(function: Callable[[Any], np.ndarray], X: Any, desc: str,
              show_progress: bool | None) -> np.ndarray:
    """``function(X)`` computed on parts of ``X``'s rows under a progress bar, the parts'
    results concatenated: about twenty parts, so the bar moves without cutting a batch into
    small model calls."""
    n = n_rows(X)
    step = max(1, -(-n // _PARTS))
    with progress_bar(n, desc, show_progress) as bar:
        parts = []
        for start in range(0, n, step):
            index = np.arange(start, min(n, start + step))
            parts.append(function(take_rows(X, index)))
            bar.update(len(index))
    return np.concatenate(parts)
