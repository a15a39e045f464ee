"""Load test of the scoring service with wrk, cross-checked against Prometheus's histograms.

    python -m bench.load_prometheus            # starts `bentoml serve` on 127.0.0.1 itself
    python -m bench.load_prometheus --url http://127.0.0.1:3000 --levels 1 4 16 --duration 10
    python -m bench.load_prometheus --compare-monitoring 3000   # attribution monitoring on vs off

For each concurrency level wrk POSTs the same /predict body for a fixed time; the table
shows wrk's throughput, latency percentiles and errors beside the percentiles a real
Prometheus computes with histogram_quantile over the service's own histograms for the same
window (deploy/prometheus/prometheus.yml, scraping every second). Needs `wrk` and
`prometheus` (Debian: `apt-get install -y wrk prometheus`). ``--compare-monitoring``
serves the bundle twice instead, with and without attribution monitoring, and alternates
requests between the two: the monitoring's cost on a one-row /predict.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bench.servers import DEFAULT_BUNDLE, own_home, start_service
from bench.wrk import WrkRun, need, post
from tests.support.processes import start_prometheus, stop_process

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
QUANTILES = (0.5, 0.95, 0.99)

def scraping_prometheus(target_url: str, work: Path,
                        more_targets: tuple[str, ...] = ()) -> tuple[str, subprocess.Popen]:
    """The repo's scrape config and rules, the `scoring` job pointed at ``target_url`` (and
    ``more_targets``)."""
    binary = need("prometheus")
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(PROMETHEUS_CONFIG.parent / f) for f in config["rule_files"]]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "scoring"]
    job["static_configs"] = [{"targets": [urlsplit(u).netloc
                                          for u in (target_url, *more_targets)]}]
    try:
        url, proc = start_prometheus(config, work, binary)
    except RuntimeError as exc:
        sys.exit(f"error: {exc}")
    log = work / "prometheus.log"
    try:
        # target discovery reaches the scrape loop within ~5 s; wait for the first scrape
        deadline = time.monotonic() + 30
        while (_query(url, 'count(up{job="scoring"} == 1)', time.time()) or 0) \
                < 1 + len(more_targets):
            if time.monotonic() > deadline:
                sys.exit(f"error: prometheus has not scraped {target_url} after 30s:\n"
                         f"{log.read_text()[-3000:]}")
            time.sleep(0.5)
    except BaseException:
        stop_process(proc)
        raise
    return url, proc


def _query(prometheus: str, expr: str, at: float) -> float | None:
    reply = requests.get(prometheus + "/api/v1/query", params={"query": expr, "time": at},
                         timeout=10).json()
    if reply["status"] != "success":
        raise RuntimeError(f"{expr}: {reply}")
    result = reply["data"]["result"]
    return float(result[0]["value"][1]) if result else None


@dataclass
class Level:
    """One number of connections: what wrk measured and Prometheus over the same window."""

    concurrency: int
    wrk: WrkRun
    prom: dict


def _drain(url: str, timeout: float = 300) -> None:
    """Wait until the service has no /predict request in flight."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = requests.get(url + "/metrics", timeout=10).text
        busy = sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
                   if s.name == "bentoml_service_request_in_progress"
                   and s.labels.get("endpoint") == "/predict")
        if busy == 0:
            return
        time.sleep(0.2)


def prometheus_window(prometheus: str, start: float, end: float) -> dict:
    """What Prometheus saw of /predict between ``start`` and ``end`` (unix seconds): the
    counters' exact change between the last scrape before and a scrape after the run."""
    at = end + 2.5  # a scrape after the run is in

    def delta(series: str, by: str = "") -> str:
        grouping = f" by ({by})" if by else ""
        return f"(sum{grouping} ({series}) - sum{grouping} ({series} @ {start:.3f}))"

    sel = 'endpoint="/predict",http_response_code="200"'
    out = {"requests": _query(prometheus, delta(f"bentoml_service_request_total{{{sel}}}"),
                              at)}
    for q in QUANTILES:
        out[f"p{round(q * 100)}"] = _query(prometheus, f"histogram_quantile({q}, " + delta(
            f"bentoml_service_request_duration_seconds_bucket{{{sel}}}", "le") + ")", at)
    for stage in ("predict", "explain"):
        metric = f'scoring_{stage}_seconds_%s{{endpoint="predict"}}'
        out[f"{stage}_mean"] = _query(
            prometheus, delta(metric % "sum") + " / " + delta(metric % "count"), at)
        out[f"{stage}_p99"] = _query(
            prometheus, "histogram_quantile(0.99, " + delta(metric % "bucket", "le") + ")", at)
    return out


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def _ratio(a: float | None, b: float) -> str:
    return "-" if a is None or not b else f"{a / b:.2f}"


def print_table(levels: list[Level]) -> None:
    header = ("conc", "reqs", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "prom reqs",
              "prom p50", "prom p95", "prom p99", "p99 prom/wrk", "predict ms", "explain ms",
              "explain p99")
    rows = [header]
    for lv in levels:
        p, w = lv.prom, lv.wrk
        rows.append((str(lv.concurrency), str(w.requests), f"{w.throughput:.1f}",
                     _ms(w.p50), _ms(w.p95), _ms(w.p99), str(w.errors),
                     "-" if p["requests"] is None else f"{p['requests']:.0f}",
                     _ms(p["p50"]), _ms(p["p95"]), _ms(p["p99"]), _ratio(p["p99"], w.p99),
                     _ms(p["predict_mean"]), _ms(p["explain_mean"]), _ms(p["explain_p99"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for i, row in enumerate(rows):
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def compare_monitoring(on: str, off: str, body: bytes, pairs: int) -> None:
    """One-row requests alternating between a service with attribution monitoring (``on``)
    and one without (``off``), one connection each, which goes first swapped every pair:
    both see the same moments of a shared, noisy machine. Prints p50/p95/p99 of each and
    the median of the pairs' differences (what monitoring adds to a request)."""
    connections = {name: http.client.HTTPConnection(urlsplit(url).netloc, timeout=60)
                   for name, url in (("on", on), ("off", off))}
    headers = {"Content-Type": "application/json"}
    seconds: dict[str, list[float]] = {"on": [], "off": []}
    for i in range(pairs):
        for name in ("on", "off") if i % 2 == 0 else ("off", "on"):
            started = time.perf_counter()
            connections[name].request("POST", "/predict", body, headers)
            reply = connections[name].getresponse()
            reply.read()
            seconds[name].append(time.perf_counter() - started)
            if reply.status != 200:
                sys.exit(f"error: /predict answered {reply.status} on the {name} service")
    for connection in connections.values():
        connection.close()
    latency = {name: np.asarray(values) * 1e3 for name, values in seconds.items()}
    print(f"{'':>16}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}")
    for name in ("on", "off"):
        p50, p95, p99 = np.percentile(latency[name], [50, 95, 99])
        print(f"{'monitoring ' + name:>16}{p50:10.3f}{p95:10.3f}{p99:10.3f}")
    p50_on, p50_off = (float(np.median(latency[k])) for k in ("on", "off"))
    difference = float(np.median(latency["on"] - latency["off"])) * 1e3
    print(f"\n{pairs} pairs: p50 on/off {p50_on / p50_off:.3f} (budget 1.05); median "
          f"difference within a pair {difference:+.0f} us")


def machine_line() -> str:
    load = os.getloadavg()
    return (f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, "
            f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
            f"Python {platform.python_version()}, {platform.platform()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running service (default: start one on 127.0.0.1)")
    parser.add_argument("--bundle", default=os.environ.get("SCORING_BUNDLE", DEFAULT_BUNDLE),
                        help="bundle tag to serve when starting the service")
    parser.add_argument("--workers", type=int, default=1,
                        help="BentoML workers when starting the service (default 1)")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 4, 16],
                        help="concurrent connections, one run each (default 1 4 16)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per level")
    parser.add_argument("--rows", type=int, default=1, help="rows per request (default 1)")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--compare-monitoring", type=int, default=0, metavar="PAIRS",
                        help="instead of the levels: serve the bundle twice, with and "
                             "without attribution monitoring (SCORING_DRIFT_MONITORING), and "
                             "send PAIRS pairs of requests alternating between the two")
    args = parser.parse_args(argv)
    if args.compare_monitoring and args.url:
        parser.error("--compare-monitoring starts its own two services: leave out --url")
    need("wrk")
    need("prometheus")

    from sklearn.datasets import load_breast_cancer

    X = load_breast_cancer().data
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="scoring-load-") as tmp:
        work = Path(tmp)
        body = work / "body.json"
        body.write_text(json.dumps({"rows": X[:args.rows].tolist(), "top_k": args.top_k}))
        try:
            url, more = args.url, ()
            if url is None:
                on = {"SCORING_DRIFT_MONITORING": "1", **own_home(work, "home-on")} \
                    if args.compare_monitoring else None
                url, proc = start_service(args.bundle, args.workers, work, env=on)
                procs.append(proc)
            if args.compare_monitoring:
                off, proc = start_service(args.bundle, args.workers, work, "monitoring-off",
                                          {"SCORING_DRIFT_MONITORING": "0",
                                           **own_home(work, "home-off")})
                procs.append(proc)
                more = (off,)
            prometheus, proc = scraping_prometheus(url, work, more)
            procs.append(proc)
            for target in (url, *more):
                reply = requests.post(target + "/predict", data=body.read_bytes(), timeout=60,
                                      headers={"Content-Type": "application/json"})
                reply.raise_for_status()
            metadata = requests.get(url + "/metadata", timeout=10).json()
            print(f"machine: {machine_line()}")
            explainer = metadata.get("explainer") or {}
            origin = "already running" if args.url else f"started here, {args.workers} worker(s)"
            print(f"service: {url} ({origin}), bundle {metadata.get('tag')}: "
                  f"{metadata.get('model_class')} + {explainer.get('class')} "
                  f"{explainer.get('params')}")
            for target in (url, *more):
                post(target + "/predict", body.read_bytes(), 1, 2)  # warm-up, not counted
            time.sleep(3)
            if args.compare_monitoring:
                print(f"load: {args.compare_monitoring} pairs of POST /predict, {args.rows} "
                      f"row(s), top_k {args.top_k}, alternating between attribution "
                      f"monitoring on ({url}) and off ({more[0]}); Prometheus scrapes both "
                      "every 1s\n")
                compare_monitoring(url, more[0], body.read_bytes(), args.compare_monitoring)
                return 0
            print(f"load: wrk POST /predict, {args.rows} row(s), top_k {args.top_k}, "
                  f"{args.duration}s per level; Prometheus scrapes every 1s\n")
            levels = []
            for concurrency in args.levels:
                start = time.time()
                result = post(url + "/predict", body.read_bytes(), concurrency, args.duration)
                _drain(url)  # requests wrk abandoned at its deadline still run
                end = time.time()
                time.sleep(3.5)  # two scrapes after the run; windows do not overlap
                levels.append(Level(concurrency, result,
                                    prometheus_window(prometheus, start, end)))
            print_table(levels)
            print("\nreqs..errors: wrk, client side (errors: connect/read/write/timeout and "
                  "non-2xx).\nprom: Prometheus over the same window: requests the service "
                  "answered with a 200\n(wrk abandons its in-flight requests at the end; "
                  "the service still answers them), and\nhistogram_quantile over BentoML's request "
                  "duration buckets (interpolated within a\nbucket, so only as fine as the "
                  "buckets); predict/explain ms: the service's own stage means.\n"
                  "p99 prom/wrk: the server's p99 over the client's. The server times a "
                  "request from\nwhen its worker takes it; wrk also counts the wait in the "
                  "queue before the worker\nand in the connection's socket, and shares the "
                  "CPUs with the service: at high\nconcurrency the client's tail is mostly "
                  "that wait, hence ratios far below 1.")
        finally:
            for proc in reversed(procs):
                stop_process(proc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
