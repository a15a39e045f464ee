"""Cost of attribution monitoring on the request path, in process: the service's
``AttributionMetrics.observe`` on one-row explanations beside the bundle's own one-row
``score`` (validation, prediction, explanation), alternated row by row.

    python -m bench.monitoring                  # SCORING_BUNDLE, default breast_cancer_svc:latest
    python -m bench.monitoring --bundle credit_mlp:latest --rows 2000

The counters write to Prometheus multiprocess files, as in a BentoML worker.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

from bench.load_prometheus import machine_line
from bench.servers import DEFAULT_BUNDLE


def _median_us(seconds: list[float]) -> float:
    return float(np.median(seconds)) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", default=os.environ.get("SCORING_BUNDLE", DEFAULT_BUNDLE))
    parser.add_argument("--rows", type=int, default=1000, help="one-row requests (1000)")
    parser.add_argument("--top-features", type=int, default=10,
                        help="SCORING_DRIFT_TOP_FEATURES (10)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="scoring-prometheus-") as metrics_dir:
        # before prometheus_client is imported: its values then live in mmap files
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        from scoring.artifacts.bundle import BundleError, ExplanationBundle
        from scoring.monitoring.attribution import AttributionMonitor
        from service.metrics import AttributionMetrics

        try:
            bundle = ExplanationBundle.load(args.bundle)
        except BundleError as exc:
            sys.exit(f"error: {exc}")
        if bundle.global_explanation is None:
            sys.exit(f"error: bundle {args.bundle} has no global explanation to monitor")
        monitor = AttributionMonitor(bundle.global_explanation, args.top_features)
        metrics = AttributionMetrics(monitor)
        # the training rows the bundle recorded to check its model (a few, replayed)
        probes = bundle.spec.probe_rows
        take = (lambda i: probes.iloc[[i % len(probes)]]) if hasattr(probes, "iloc") \
            else (lambda i: probes[i % len(probes)][None])
        score, sums, observe = [], [], []
        for i in range(args.rows):
            row = take(i)
            started = time.perf_counter()
            scored = bundle.score(row)
            scored_at = time.perf_counter()
            monitor.share_sums(scored.explanation)
            summed_at = time.perf_counter()
            metrics.observe(scored.explanation)
            observed_at = time.perf_counter()
            score.append(scored_at - started)
            sums.append(summed_at - scored_at)
            observe.append(observed_at - summed_at)
    print(f"machine: {machine_line()}")
    print(f"bundle {bundle.tag}: {type(bundle.model).__name__} + "
          f"{type(bundle.scoring_explainer).__name__}; {len(monitor.outputs)} output(s) x "
          f"{len(monitor.labels)} monitored features; {args.rows} one-row requests\n")
    print(f"bundle.score, one row            median {_median_us(score):9.1f} us")
    print(f"share sums (numpy)               median {_median_us(sums):9.1f} us")
    print(f"observe (share sums + counters)  median {_median_us(observe):9.1f} us")
    print(f"\nobserve / bundle.score: {np.median(observe) / np.median(score):.4f}; the budget "
          "is 5 % of a one-row /predict over HTTP (parsing, JSON, BentoML: `make load`'s p50)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
