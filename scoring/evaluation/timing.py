"""Wall-clock timing that holds up on a shared machine: warm-up, repeats, the median."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

# a call slower than this is timed a few times only: its median is stable enough
_SLOW_SECONDS = 0.05


def median_ms(call: Callable[[], object], repeats: int = 7) -> float:
    """Median milliseconds of ``repeats`` calls after one warm-up call (at most 3 repeats
    when one call takes longer than 50 ms)."""
    started = time.perf_counter()
    call()
    if time.perf_counter() - started > _SLOW_SECONDS:
        repeats = min(repeats, 3)
    times = []
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return 1e3 * float(np.median(times))
