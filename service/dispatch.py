"""Where a request is scored: on the worker's event loop when it is small and the bundle
answers it within a millisecond, in a thread otherwise.

BentoML runs a synchronous API in a thread; for a request the bundle answers in a fraction
of a millisecond, the handoff (two thread switches, the GIL passed back and forth with the
event loop reading the next requests) costs more than the answer. A request scored on the
loop holds the loop for that long, so only those estimated cheaper than ``INLINE_SECONDS``
and of at most ``MAX_INLINE_ROWS`` rows are; the rest, and every request of a bundle slower
than that on one row, run in a thread as before, leaving the loop to health checks,
metrics and the other connections."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio

from scoring.artifacts.bundle import ExplanationBundle
from scoring.core.settings import integer_setting
from scoring.model.rows import n_rows, take_rows
from scoring.model.schema import InputError

INLINE_SETTING = "SCORING_INLINE_ROWS"
# how long a request may hold the event loop: every other connection of the worker waits
INLINE_SECONDS = 0.001
# and how many rows it may hold: a body or an answer that one pass over the socket does not
# read or write whole waits for the loop's next turn, as long as every inline request
# queued meanwhile (under overload, 100-row requests on the loop doubled the p99)
MAX_INLINE_ROWS = 16
_TIMINGS = 3

T = TypeVar("T")


def inline_rows_setting() -> int | None:
    """``SCORING_INLINE_ROWS`` (a non-negative integer; ``0``: every request in a thread)
    when set, else ``None`` (measured: :func:`measured_inline_rows`); any other value is a
    ``RuntimeError`` naming it (the service refuses to start)."""
    return integer_setting(INLINE_SETTING, "rows scored on the event loop; 0: none",
                           minimum=0, digits=6)


def measured_inline_rows(bundle: ExplanationBundle, budget: float = INLINE_SECONDS) -> int:
    """The most rows a request may hold to be scored on the event loop: how many the bundle
    answers (predictions and explanations) within ``budget`` seconds, at most
    ``MAX_INLINE_ROWS``, from the best of a few timings of one probe row and of all of them
    (a fixed cost plus a cost per row); ``0`` when one row takes longer, or the bundle
    refuses its probe rows (every request then runs in a thread, where a refusal is
    answered as ever)."""
    probe = bundle.spec.probe_rows
    try:
        one = _best_seconds(bundle, take_rows(probe, slice(0, 1)))
        if one > budget:
            return 0
        everything = _best_seconds(bundle, probe)
    except InputError:
        return 0
    k = n_rows(probe)
    per_row = max((everything - one) / max(k - 1, 1), 0.0)
    fixed = max(one - per_row, 0.0)
    if per_row == 0.0:
        return MAX_INLINE_ROWS
    return int(min(max((budget - fixed) / per_row, 1), MAX_INLINE_ROWS))


def _best_seconds(bundle: ExplanationBundle, rows: Any) -> float:
    best = float("inf")
    for _ in range(_TIMINGS):
        started = time.perf_counter()
        bundle.score(rows)
        best = min(best, time.perf_counter() - started)
    return best


class ScoringDispatch:
    """Runs a worker's scoring calls one at a time (as BentoML's one thread did): those of
    at most ``inline_rows`` rows on the event loop, the others in a thread."""

    def __init__(self, inline_rows: int) -> None:
        self.inline_rows = inline_rows
        # one call at a time: an inline call never overlaps a threaded one
        self._lock = asyncio.Lock()

    async def run(self, rows: int, call: Callable[[], T]) -> T:
        """``call()`` for a request of ``rows`` rows, where it belongs."""
        async with self._lock:
            if rows <= self.inline_rows:
                return call()
            return await anyio.to_thread.run_sync(call)
