"""Timing that holds up on a shared machine: CPU time of the calling thread, with BLAS on
that one thread, the median of a few repeats.

Wall-clock time on a busy machine measures the other processes too; the CPU time of one
thread does not (or far less), so choices made on it come out the same on an idle or a
loaded machine. One thread is also what one service worker per core pays per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits

# a call slower than this is timed a few times only: its median is stable enough
_SLOW_SECONDS = 0.05


def median_ms(call: Callable[[], object], repeats: int = 7) -> float:
    """Median CPU milliseconds of ``repeats`` calls on this thread (BLAS and OpenMP limited
    to it) after one warm-up call; at most 3 repeats when one call takes over 50 ms."""
    with threadpool_limits(1):
        started = time.thread_time()
        call()
        if time.thread_time() - started > _SLOW_SECONDS:
            repeats = min(repeats, 3)
        times = []
        for _ in range(max(1, repeats)):
            started = time.thread_time()
            call()
            times.append(time.thread_time() - started)
    return 1e3 * float(np.median(times))
