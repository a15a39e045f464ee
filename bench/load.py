"""Side-by-side load test: our service against a bare BentoML service and MLServer.

    python -m bench.load                     # make load: every server, level and body
    python -m bench.load --duration 5 --levels 1 32
    python -m bench.load --soak 600          # make soak: ours alone, 32 connections

In one run on one machine, three servers of the same model (the served bundle's, the demo's
SVC by default): ours with its default settings (`bentoml serve`, one worker per CPU),
answering with explanations; a bare one-worker BentoML service returning ``predict`` and
``predict_proba`` (bench/bare_service.py: the framework's ceiling); and MLServer's
scikit-learn runtime over the Open Inference Protocol (``make mlserver-venv``; left out
when not installed). wrk POSTs one row and 100 rows per request at each concurrency level,
servers in turn within a level so that all see the same moments of a shared machine; ours
also answers one-row requests on its V2 route. Prints req/s, rows/s, p50/p99 and errors per
line and the ratios, and writes ``bench/results/load-<UTC>.json``.

``--soak SECONDS`` serves ours alone at 32 connections for that long, in windows: errors,
the workers' resident memory and p99 per window (``bench/results/soak-<UTC>.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import joblib
import psutil
import requests
from sklearn.datasets import load_breast_cancer

from bench.run import machine, write_result
from bench.servers import (
    DEFAULT_BUNDLE,
    mlserver_ready,
    own_home,
    start_bare_bentoml,
    start_mlserver,
    start_service,
)
from bench.wrk import WrkRun, need, post
from tests.support.processes import stop_process

LEVELS = (1, 8, 32, 128)
ROWS = (1, 100)
SOAK_WINDOW_SECONDS = 30
SOAK_CONNECTIONS = 32


def _v2_body(rows: list[list[float]], outputs: list[str] | None = None) -> dict:
    body: dict = {"inputs": [{"name": "input-0", "shape": [len(rows), len(rows[0])],
                              "datatype": "FP64", "data": [v for r in rows for v in r]}]}
    if outputs:
        body["outputs"] = [{"name": name} for name in outputs]
    return body


def targets(servers: dict[str, str], name: str, rows: list[list[float]]) -> dict[str, tuple]:
    """What each server is asked, by label: ``(url, body)``."""
    out = {"ours /predict": (servers["ours"] + "/predict", {"rows": rows}),
           "bare BentoML": (servers["bare"] + "/predict", {"rows": rows})}
    if len(rows) == 1:
        out["ours V2 infer"] = (f"{servers['ours']}/v2/models/{name}/infer", _v2_body(rows))
    if "mlserver" in servers:
        out["MLServer"] = (f"{servers['mlserver']}/v2/models/{name}/infer",
                           _v2_body(rows, ["predict", "predict_proba"]))
    return out


def resident_mb(proc: subprocess.Popen) -> float:
    """Resident memory of a server and its processes, in MB."""
    try:
        root = psutil.Process(proc.pid)
        return sum(p.memory_info().rss for p in (root, *root.children(recursive=True))) / 1e6
    except psutil.NoSuchProcess:
        return float("nan")


def _record(label: str, rows: int, connections: int, run: WrkRun) -> dict:
    return {"server": label, "rows": rows, "connections": connections,
            "requests": run.requests, "seconds": run.seconds, "errors": run.errors,
            "requests_per_s": run.throughput, "rows_per_s": run.throughput * rows,
            "p50_ms": run.p50 * 1e3, "p95_ms": run.p95 * 1e3, "p99_ms": run.p99 * 1e3}


def ratios(runs: list[dict]) -> list[dict]:
    """Per rows and level: ours (and its V2 route) over each peer, in requests/s."""
    out = []
    by = {(r["server"], r["rows"], r["connections"]): r for r in runs}
    for (server, rows, connections), run in by.items():
        if server != "ours /predict":
            continue
        for other in ("bare BentoML", "MLServer", "ours V2 infer"):
            peer = by.get((other, rows, connections))
            if peer and peer["requests_per_s"]:
                key = ("V2 infer / ours /predict" if other == "ours V2 infer"
                       else f"ours /predict / {other}")
                value = (peer["requests_per_s"] / run["requests_per_s"]
                         if other == "ours V2 infer"
                         else run["requests_per_s"] / peer["requests_per_s"])
                out.append({"ratio": key, "rows": rows, "connections": connections,
                            "value": value})
    return out


HEADER = (f"{'server':>16} {'rows':>4} {'conn':>4} {'req/s':>8} {'rows/s':>9} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'errors':>6}")


def print_run(r: dict) -> None:
    print(f"{r['server']:>16} {r['rows']:>4} {r['connections']:>4} "
          f"{r['requests_per_s']:8.0f} {r['rows_per_s']:9.0f} {r['p50_ms']:7.1f} "
          f"{r['p99_ms']:7.1f} {r['errors']:>6}", flush=True)


def _check(url: str, body: dict) -> None:
    reply = requests.post(url, json=body, timeout=60)
    if reply.status_code != 200:
        sys.exit(f"error: {url} answered {reply.status_code}: {reply.text[:300]}")


def _machine_info() -> dict:
    return {**machine(), "node": platform.node(),
            "cpus_usable": len(os.sched_getaffinity(0)),
            "load_average": list(os.getloadavg())}


def side_by_side(args: argparse.Namespace, servers: dict[str, str], name: str,
                 procs: dict[str, subprocess.Popen]) -> dict:
    X = load_breast_cancer().data
    runs = []
    print(HEADER)
    print("-" * len(HEADER))
    for rows in args.rows:
        asked = targets(servers, name, X[:rows].tolist())
        for url, body in asked.values():
            _check(url, body)
            post(url, json.dumps(body).encode(), 2, 2)  # warm-up, not counted
        for connections in args.levels:
            for label, (url, body) in asked.items():
                run = post(url, json.dumps(body).encode(), connections, args.duration)
                runs.append(_record(label, rows, connections, run))
                print_run(runs[-1])
    return {"runs": runs, "ratios": ratios(runs),
            "resident_mb": {k: resident_mb(p) for k, p in procs.items()}}


def soak(args: argparse.Namespace, url: str, proc: subprocess.Popen) -> dict:
    body = json.dumps({"rows": load_breast_cancer().data[:1].tolist()}).encode()
    post(url + "/predict", body, 2, 2)
    windows = []
    started = time.monotonic()
    while time.monotonic() - started < args.soak:
        run = post(url + "/predict", body, SOAK_CONNECTIONS, SOAK_WINDOW_SECONDS)
        windows.append({**_record("ours /predict", 1, SOAK_CONNECTIONS, run),
                        "at_s": time.monotonic() - started, "resident_mb": resident_mb(proc)})
        w = windows[-1]
        print(f"{w['at_s']:6.0f} s  {w['requests_per_s']:6.0f} req/s  p99 {w['p99_ms']:6.1f} ms"
              f"  errors {w['errors']}  resident {w['resident_mb']:.0f} MB", flush=True)
    after = windows[1:] or windows  # the first window warms up
    memory = [w["resident_mb"] for w in after]
    p99 = [w["p99_ms"] for w in after]
    return {"windows": windows, "errors": sum(w["errors"] for w in windows),
            "resident_growth": max(memory) / min(memory) - 1,
            "p99_median_ms": statistics.median(p99), "p99_max_ms": max(p99),
            "requests": sum(w["requests"] for w in windows)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", default=os.environ.get("SCORING_BUNDLE", DEFAULT_BUNDLE))
    parser.add_argument("--levels", type=int, nargs="+", default=list(LEVELS),
                        help="concurrent connections (default 1 8 32 128)")
    parser.add_argument("--rows", type=int, nargs="+", default=list(ROWS),
                        help="rows per request (default 1 100)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per line")
    parser.add_argument("--soak", type=int, default=0, metavar="SECONDS",
                        help="ours alone at 32 connections for SECONDS, in 30 s windows")
    args = parser.parse_args(argv)
    need("wrk")
    info = {"started": datetime.now(UTC).isoformat(timespec="seconds"), "argv": sys.argv[1:],
            "machine": _machine_info(), "bundle": args.bundle, "duration_s": args.duration}
    print(f"machine: {info['machine']['cores']} CPUs ({info['machine']['cpu']}), load "
          "average " + " ".join(f"{x:.2f}" for x in info["machine"]["load_average"]))
    procs: dict[str, subprocess.Popen] = {}
    with tempfile.TemporaryDirectory(prefix="scoring-load-") as tmp:
        work = Path(tmp)
        try:
            url, procs["ours"] = start_service(args.bundle, None, work, "ours",
                                               own_home(work, "home-ours"))
            metadata = requests.get(url + "/metadata", timeout=10).json()
            name = metadata["tag"].split(":")[0]
            workers = [p for p in psutil.Process(procs["ours"].pid).children(recursive=True)
                       if "_bentoml_impl.worker" in " ".join(p.cmdline())]
            info["ours"] = {"tag": metadata["tag"], "model_class": metadata["model_class"],
                            "explainer": metadata["explainer"]["class"],
                            "workers": len(workers)}
            print(f"ours: {metadata['tag']} ({metadata['model_class']} + "
                  f"{metadata['explainer']['class']}), {len(workers)} workers")
            if args.soak:
                result = {**info, "soak_s": args.soak, "connections": SOAK_CONNECTIONS,
                          **soak(args, url, procs["ours"])}
                print(f"\nwrote {write_result('soak', result)}")
                return 0
            model_file = work / "model.joblib"
            # the bundle's own model object, as the peers load it: one joblib file
            subprocess.run([sys.executable, "-c", "import joblib, sys; from scoring import "
                            "ExplanationBundle; joblib.dump(ExplanationBundle.load("
                            "sys.argv[1]).model, sys.argv[2])", args.bundle, str(model_file)],
                           check=True)
            assert joblib.load(model_file) is not None
            servers = {"ours": url}
            servers["bare"], procs["bare"] = start_bare_bentoml(
                model_file, own_home(work, "home-bare"), work)
            if mlserver_ready():
                servers["mlserver"], procs["mlserver"] = start_mlserver(
                    model_file, name, work)
            else:
                print("MLServer is not installed (make mlserver-venv): measured without it")
            info["servers"] = sorted(servers)
            print(f"\nwrk, {args.duration} s per line, servers in turn within each level\n")
            result = {**info, **side_by_side(args, servers, name, procs),
                      "load_average_end": list(os.getloadavg()),
                      # what each worker holds after the load (the size of a replica)
                      "ours_worker_resident_mb": [w.memory_info().rss / 1e6
                                                  for w in workers]}
            print()
            for ratio in result["ratios"]:
                print(f"{ratio['ratio']:>34}  {ratio['rows']:>3} row(s)  "
                      f"{ratio['connections']:>3} conn  {ratio['value']:.2f}")
            print(f"\nresident MB: {result['resident_mb']}, ours per worker "
                  f"{result['ours_worker_resident_mb']}; load average at the end "
                  + " ".join(f"{x:.2f}" for x in result["load_average_end"]))
            print(f"wrote {write_result('load', result)}")
        finally:
            for label, proc in reversed(procs.items()):
                stop_process(proc, group=label == "mlserver")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
