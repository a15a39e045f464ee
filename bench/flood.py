"""One client floods the service with the worst request of a kind; does it stay alive?

    python -m bench.flood                       # 60 s per kind, breast_cancer_svc:latest
    python -m bench.flood --seconds 10 --kinds empty_rows ice_keys

Starts `bentoml serve` of the bundle (one worker, a bearer token set) and, kind after kind,
sends the worst request of that kind from ``--clients`` connections for ``--seconds``
while another connection asks ``/livez`` every 100 ms and the worker's resident memory is
sampled. The kinds (issue 19, classes 3-5):

- ``paths``: a new path under the Swagger UI's prefixes each time, half without the token:
  each path was one more metric series;
- ``empty_rows``: 8 MB of ``{"rows": [[], [], ...]}``, 2.7 million rows: parsed whole on the
  event loop before the row limit applied (seconds, hundreds of MiB);
- ``empty_rows_at_bound``: as many empty rows as the JSON budget lets through;
- ``ice_keys``: an ICE row of 3.6 MiB, 250,000 unknown fields: copied once per grid point;
- ``ice_keys_at_bound``: as many unknown fields as the JSON budget lets through.

Prints the machine, per kind the answers, max/p99 ``/livez`` latency, worker RSS before,
peak and after and the metric series before/after, checks them (``/livez`` < 1 s, RSS
growth < 300 MiB, no series added per request) and writes
``bench/results/flood-<UTC timestamp>.json``; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psutil
import requests

from bench.load import DEFAULT_BUNDLE, start_service
from bench.processes import stop_process
from service.limits import json_budget

ROOT = Path(__file__).resolve().parents[1]
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


def machine() -> str:
    load = os.getloadavg()
    return (f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, load average "
            f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, Python {platform.python_version()}, "
            f"{platform.platform()}")


def _print(result: dict) -> None:
    answers = ", ".join(f"{k}: {v}" for k, v in sorted(result["answers"].items()))
    print(f"{result['kind']:<20} {result['requests']:>6} requests ({answers})\n"
          f"{'':<20} /livez max {result['livez_max_s'] * 1000:.0f} ms, p99 "
          f"{result['livez_p99_s'] * 1000:.0f} ms over {result['livez_probes']} probes; "
          f"worker RSS {result['rss_before_mib']:.0f} -> peak {result['rss_peak_mib']:.0f}"
          f" -> {result['rss_after_mib']:.0f} MiB; series {result['series_before']} -> "
          f"{result['series_after']}")
    for check, ok in result["checks"].items():
        print(f"{'':<20} {'ok  ' if ok else 'FAIL'} {check}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default=os.environ.get("SCORING_BUNDLE", DEFAULT_BUNDLE),
                        help="a bundle with explained rows for the dashboard (ICE)")
    parser.add_argument("--seconds", type=float, default=60.0, help="per kind")
    parser.add_argument("--clients", type=int, default=4, help="connections per kind")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    args = parser.parse_args(argv)
    token = uuid.uuid4().hex
    print(f"machine: {machine()}")
    print(f"bundle {args.bundle}, one worker, token set; {args.seconds:g} s per kind from "
          f"{args.clients} connections; kinds: {', '.join(args.kinds)}")
    with tempfile.TemporaryDirectory() as work:
        url, proc = start_service(args.bundle, 1, Path(work), name="flood",
                                  env={"SCORING_API_TOKEN": token})
        try:
            pid = worker_pid(proc.pid)
            make = Requests(url, token)
            print(f"JSON budget of this model: {make.budget}; body sizes: " + ", ".join(
                f"{k} {len(v) / 2**20:.2f} MiB" for k, v in make.bodies.items()))
            results = []
            for kind in args.kinds:
                results.append(flood(url, pid, make, kind, args.seconds, args.clients))
                _print(results[-1])
        finally:
            stop_process(proc)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = ROOT / "bench" / "results" / f"flood-{stamp}.json"
    out.write_text(json.dumps({"date": stamp, "machine": machine(), "bundle": args.bundle,
                               "json_budget": vars(make.budget), "results": results},
                              indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    failed = [f"{r['kind']}: {check}" for r in results for check, ok in r["checks"].items()
              if not ok]
    if failed:
        print("FAILED: " + "; ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
