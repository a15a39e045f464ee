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
import uuid
from datetime import UTC, datetime
from pathlib import Path

from bench.servers import DEFAULT_BUNDLE, start_service
from tests.support.flood import KINDS, Requests, flood, worker_pid
from tests.support.processes import stop_process

ROOT = Path(__file__).resolve().parents[1]


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
