"""One client flooding a running service with the worst request of a kind, while
``/livez`` is timed and the worker's memory and metric series are watched (the flood test
of tests/test_hostile.py and ``python -m bench.flood``)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter

import numpy as np
import psutil
import requests

from service.limits import json_budget

KINDS = ("paths", "empty_rows", "empty_rows_at_bound", "ice_keys", "ice_keys_at_bound")
MAX_LIVEZ_SECONDS = 1.0
MAX_RSS_GROWTH_MIB = 300
# a flood may add the series of the statuses and reasons it provokes, never one per request
MAX_NEW_SERIES = 60
EMPTY_ROWS_BYTES = 8 * 2**20 - 100
ICE_KEYS = 250_000


def worker_pid(server_pid: int) -> int:
    """The one BentoML worker process under ``bentoml serve`` (pid ``server_pid``)."""
    workers = [c.pid for c in psutil.Process(server_pid).children(recursive=True)
               if "_bentoml_impl.worker.service" in " ".join(c.cmdline())]
    if len(workers) != 1:
        raise RuntimeError(f"expected one BentoML worker, found {len(workers)}")
    return workers[0]


def series(url: str) -> list[str]:
    """The sample lines of ``/metrics``: one per series."""
    text = requests.get(url + "/metrics", timeout=60).text
    return [line for line in text.splitlines() if line and not line.startswith("#")]


class Requests:
    """The worst request of each kind for the service at ``url`` (its ``/metadata``)."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.auth = {"Authorization": f"Bearer {token}"}
        meta = requests.get(url + "/metadata", headers=self.auth, timeout=60).json()
        self.budget = json_budget(meta["feature_names"], meta["categories"] or {})
        row = requests.get(url + "/dashboard/api/row?row=0", headers=self.auth,
                           timeout=60).json()["values"]
        self.feature = meta["feature_names"][0]
        empty = (EMPTY_ROWS_BYTES - 20) // 3
        # every empty row is one container and one ','; an ICE body's fields are values
        self.bodies = {
            "empty_rows": _empty_rows(empty),
            "empty_rows_at_bound": _empty_rows(self.budget.containers - 16),
            "ice_keys": self._ice(row, ICE_KEYS),
            "ice_keys_at_bound": self._ice(row, self.budget.values - len(row) - 16),
        }

    def _ice(self, row: dict, n_keys: int) -> bytes:
        extra = {f"k{i:06d}-{'x' * 3}": 1 for i in range(n_keys)}
        return json.dumps({"row": {**row, **extra}, "feature": self.feature,
                           "n_points": 200}).encode()

    def send(self, session: requests.Session, kind: str, marker: str, i: int) -> str:
        """One request of ``kind``; its status, or the name of the error that ended it."""
        try:
            if kind == "paths":
                prefix = ("/static_content/", "/assets/", "/")[i % 3]
                headers = self.auth if i % 2 else {}
                r = session.get(f"{self.url}{prefix}{marker}-{i}.js", headers=headers,
                                timeout=60)
            else:
                path = "/predict" if kind.startswith("empty_rows") else "/dashboard/api/ice"
                r = session.post(self.url + path, data=self.bodies[kind], timeout=60,
                                 headers={**self.auth, "Content-Type": "application/json"})
            return str(r.status_code)
        except requests.RequestException as exc:  # refused mid-body: the server closed
            return type(exc).__name__


def _empty_rows(n: int) -> bytes:
    return b'{"rows": [' + b",".join([b"[]"] * n) + b"]}"


def _rss_kib(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/status") as f:
        return {k: int(v.split()[0]) for k, _, v in (line.partition(":") for line in f)
                if k in ("VmRSS", "VmHWM")}


def flood(url: str, pid: int, make: Requests, kind: str, seconds: float,
          clients: int) -> dict:
    """``clients`` connections sending ``kind`` for ``seconds`` while ``/livez`` is asked
    every 100 ms and the worker ``pid``'s memory sampled: the measures and the checks."""
    marker = f"flood{uuid.uuid4().hex[:8]}"
    series_before = series(url)
    rss_before = _rss_kib(pid)
    peak = {"rss": rss_before["VmRSS"]}
    latencies: list[float] = []
    answers: Counter = Counter()
    counting = threading.Lock()
    done = threading.Event()
    deadline = time.monotonic() + seconds

    def client(c: int) -> None:
        with requests.Session() as session:
            i = c
            while time.monotonic() < deadline:
                answer = make.send(session, kind, marker, i)
                with counting:
                    answers[answer] += 1
                i += clients

    def probe() -> None:
        with requests.Session() as session:
            while not done.is_set():
                started = time.perf_counter()
                session.get(url + "/livez", timeout=60).raise_for_status()
                latencies.append(time.perf_counter() - started)
                time.sleep(0.1)

    def sample() -> None:
        while not done.is_set():
            peak["rss"] = max(peak["rss"], _rss_kib(pid)["VmRSS"])
            time.sleep(0.05)

    helpers = [threading.Thread(target=f, daemon=True) for f in (probe, sample)]
    senders = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    for thread in helpers + senders:
        thread.start()
    for thread in senders:
        thread.join()
    time.sleep(0.5)
    done.set()
    for thread in helpers:
        thread.join()
    rss_after = _rss_kib(pid)
    series_after = series(url)
    # a new high-water mark is a peak the sampling may have missed
    if rss_after["VmHWM"] > rss_before["VmHWM"]:
        peak["rss"] = max(peak["rss"], rss_after["VmHWM"])
    grown = peak["rss"] - rss_before["VmRSS"]
    result = {
        "kind": kind, "seconds": seconds, "clients": clients,
        "requests": sum(answers.values()), "answers": dict(answers),
        "livez_probes": len(latencies), "livez_max_s": max(latencies),
        "livez_p99_s": float(np.percentile(latencies, 99)),
        "rss_before_mib": rss_before["VmRSS"] / 1024, "rss_peak_mib": peak["rss"] / 1024,
        "rss_after_mib": rss_after["VmRSS"] / 1024, "rss_growth_mib": grown / 1024,
        "series_before": len(series_before), "series_after": len(series_after),
        "series_with_marker": sum(marker in line for line in series_after),
    }
    result["checks"] = {
        f"/livez under {MAX_LIVEZ_SECONDS:g} s": result["livez_max_s"] < MAX_LIVEZ_SECONDS,
        f"RSS growth under {MAX_RSS_GROWTH_MIB} MiB": result["rss_growth_mib"]
        < MAX_RSS_GROWTH_MIB,
        f"at most {MAX_NEW_SERIES} new series, none from the request":
            result["series_after"] - result["series_before"] <= MAX_NEW_SERIES
            and result["series_with_marker"] == 0,
    }
    return result
