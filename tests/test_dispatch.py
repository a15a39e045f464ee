"""Where the service scores a request (service.dispatch): on the event loop when it is small
and the bundle answers it within a millisecond, in a thread otherwise, one call at a
time."""

from __future__ import annotations

import asyncio
import copy
import threading
import time

import pytest
import requests

from scoring import ExplanationBundle
from service.dispatch import (
    INLINE_SETTING,
    MAX_INLINE_ROWS,
    ScoringDispatch,
    inline_rows_setting,
    measured_inline_rows,
)
from tests.test_hostile import Watch


@pytest.mark.parametrize("name", ["credit", "svc_amortized"])
def test_the_inline_rows_follow_the_time_budget(bundles, name):
    """Timed on the bundle's probe rows (a DataFrame of strings and missing values for the
    credit pipeline, an array for the SVC): none when one row exceeds the budget, the
    cap when the budget is generous."""
    b = bundles[name]
    bundle = ExplanationBundle(b.model, b.explainer)
    assert measured_inline_rows(bundle, budget=1e-9) == 0
    assert measured_inline_rows(bundle, budget=60.0) == MAX_INLINE_ROWS
    assert 0 <= measured_inline_rows(bundle) <= MAX_INLINE_ROWS


def test_probe_rows_the_bundle_refuses_put_every_request_in_a_thread(bundles):
    """The tabular model's encoder refuses unseen cities: probe rows holding one are
    refused, which leaves the worker serving (in threads) rather than failing to start."""
    b = bundles["tabular"]
    bundle = ExplanationBundle(b.model, copy.deepcopy(b.explainer))
    assert measured_inline_rows(bundle, budget=60.0) > 0
    bundle.spec.probe_rows = bundle.spec.probe_rows.assign(city="Atlantis")
    assert measured_inline_rows(bundle, budget=60.0) == 0


def test_cheap_requests_run_on_the_event_loop_and_others_in_a_thread():
    async def scenario() -> tuple[int, int, int]:
        dispatch = ScoringDispatch(inline_rows=5)
        return (threading.get_ident(), await dispatch.run(5, threading.get_ident),
                await dispatch.run(6, threading.get_ident))

    loop, inline, threaded = asyncio.run(scenario())
    assert inline == loop
    assert threaded != loop


def test_calls_never_overlap():
    """An inline call waits for a threaded one in progress (the bundle is scored by one
    call at a time, as BentoML's one thread did)."""
    spans: list[tuple[float, float]] = []

    def call() -> None:
        started = time.perf_counter()
        time.sleep(0.05)
        spans.append((started, time.perf_counter()))

    async def scenario() -> None:
        dispatch = ScoringDispatch(inline_rows=1)
        await asyncio.gather(*(dispatch.run(rows, call) for rows in (10, 1, 10, 1, 1)))

    asyncio.run(scenario())
    spans.sort()
    assert len(spans) == 5
    assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:], strict=False))


@pytest.mark.parametrize("value,expected", [("", None), ("0", 0), (" 12 ", 12)])
def test_the_inline_rows_setting(monkeypatch, value, expected):
    monkeypatch.setenv(INLINE_SETTING, value)
    assert inline_rows_setting() == expected


@pytest.mark.parametrize("bad", ["-1", "many", "1.5", "³", "1234567"])
def test_a_bad_inline_rows_setting_is_refused(monkeypatch, bad):
    monkeypatch.setenv(INLINE_SETTING, bad)
    with pytest.raises(RuntimeError, match="SCORING_INLINE_ROWS must be a non-negative"):
        inline_rows_setting()


def test_an_expensive_request_leaves_the_event_loop_to_the_probes(svc_server):
    """Two hundred rows of the kernel bundle (over the cap, and milliseconds each) are
    scored in a thread, /livez answered meanwhile."""
    assert "requests of up to" in svc_server.output()
    rows = [[float(i % 7) for i in range(30)]] * 200
    with Watch(svc_server) as watch:
        started = time.perf_counter()
        r = requests.post(svc_server.url + "/predict", json={"rows": rows}, timeout=120)
        took = time.perf_counter() - started
    print("\n" + watch.report(f"200 kernel rows in {took:.2f} s"))
    assert r.status_code == 200, r.text[:300]
    assert max(watch.latencies) < min(0.5, took / 2)
