"""Batch explanations on Dask: throughput on 1 and 2 workers, and peak memory per worker.

``python -m bench.remote`` (about 4 minutes on 2 cores). Two bundles in a temporary
BentoML home:

- ``people``: logistic regression behind a ColumnTransformer (imputers, a one-hot string
  column with missing values), linear explainer on raw columns: cheap per row, so it
  measures the batch machinery (read, validate, explain, reshape, write Parquet);
- ``svc``: breast-cancer SVC with ``KernelScoringExplainer(nsamples=64, n_background=5)``:
  compute-bound, so it shows how the work scales with workers.

Prints rows per second of ``explain_to_parquet`` on 1 and 2 workers (cluster start-up not
counted; the pass that counts rows is), the per-row cost of the single-process path
(``validate`` + ``predict`` + ``explain`` on one pandas table, as ``scoring explain
--output x.csv`` does), and each worker's peak resident memory for a 200,000-row and a
2,000,000-row input at the same partition size.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer

from scoring import ExplanationBundle
from scoring.remote import explain_to_parquet
from tests.support.batch_examples import example_explainers, people

FILE_ROWS = 50_000  # rows per input Parquet file: the input partitions
# set by main(), not at import: Dask's spawned workers import this module again
HOME = Path()


def build_bundles() -> dict[str, ExplanationBundle]:
    _, objects = example_explainers()
    bundles = {name: ExplanationBundle(model, explainer)
               for name, (model, explainer) in objects.items()}
    for name, bundle in bundles.items():
        bundle.save(name)
    return bundles


def write_input(name: str, frame: pd.DataFrame) -> Path:
    folder = HOME / "data" / name
    folder.mkdir(parents=True)
    for i, start in enumerate(range(0, len(frame), FILE_ROWS)):
        frame.iloc[start:start + FILE_ROWS].to_parquet(folder / f"{i:04d}.parquet", index=False)
    return folder


def jittered(base: pd.DataFrame, n: int, numeric: list[str], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = base.iloc[rng.integers(0, len(base), n)].reset_index(drop=True)
    for column in numeric:
        rows[column] = rows[column] + rng.normal(0, 0.01 * float(base[column].std()), n)
    return rows


def _peak_kib() -> int:
    """This process's peak resident set (KiB). VmHWM, not ru_maxrss: a spawned worker's
    ru_maxrss carries over the peak of the process it was forked from (here the bench,
    holding the inputs)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _load_only(tag: str) -> int:
    from scoring.remote.batch import _bundle

    _bundle(tag)
    return _peak_kib()


def run(bundle: ExplanationBundle | None, folder: Path, workers: int, partition_rows: int,
        label: str) -> dict:
    """One batch on a fresh LocalCluster: seconds, rows/s, peak RSS per worker. Without a
    bundle's data (``folder`` None): the workers only load the bundle (the baseline)."""
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None,
                           memory_limit=None)
    client = Client(cluster)
    try:
        if folder is None:
            peaks = client.run(_load_only, bundle.tag)
            return {"peak_mib": sorted(v / 1024 for v in peaks.values())}
        data = dd.read_parquet(str(folder / "*.parquet"))
        out = HOME / "out" / f"{label}-{workers}"
        start = time.perf_counter()
        result = explain_to_parquet(bundle, data, out, partition_rows=partition_rows,
                                    client=client, progress=False)
        seconds = time.perf_counter() - start
        peaks = client.run(_peak_kib)
    finally:
        client.close()
        cluster.close()
    return {"rows": result.rows, "seconds": seconds, "rows_per_s": result.rows / seconds,
            "peak_mib": sorted(v / 1024 for v in peaks.values())}


def single_process(bundle: ExplanationBundle, frame: pd.DataFrame) -> tuple[float, float]:
    """Milliseconds per row: the whole table in one call, and one row per call."""
    def score(rows: pd.DataFrame) -> None:
        bundle.score(rows)

    start = time.perf_counter()
    score(frame)
    table = (time.perf_counter() - start) / len(frame) * 1e3
    sample = frame.iloc[:50]
    start = time.perf_counter()
    for i in range(len(sample)):
        score(sample.iloc[[i]])
    alone = (time.perf_counter() - start) / len(sample) * 1e3
    return table, alone


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="people rows (small input)")
    parser.add_argument("--big-rows", type=int, default=2_000_000,
                        help="people rows of the large input (throughput, memory)")
    parser.add_argument("--svc-rows", type=int, default=8_000, help="svc rows (throughput)")
    parser.add_argument("--partition-rows", type=int, default=20_000)
    args = parser.parse_args(argv)
    global HOME
    HOME = Path(tempfile.mkdtemp(prefix="bench-remote-"))
    # bentoml reads its home when first imported (in save); the workers inherit it
    os.environ["BENTOML_HOME"] = str(HOME / "bentoml")

    cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}, "
          f"{cpu} cores, Python {platform.python_version()}; load average "
          f"{os.getloadavg()[0]:.2f} (other processes share these cores); scratch {HOME}")
    bundles = build_bundles()
    base, _ = people(400, 0)
    small = write_input("people-small", jittered(base, args.rows, ["age", "income"], 1))
    big = write_input("people-big", jittered(base, args.big_rows, ["age", "income"], 2))
    cancer = load_breast_cancer()
    svc_frame = jittered(pd.DataFrame(cancer.data, columns=cancer.feature_names),
                         args.svc_rows, list(cancer.feature_names), 3)
    svc_folder = write_input("svc", svc_frame)
    svc_partition = max(args.svc_rows // 16, 1)
    print(f"inputs: people {args.rows:,} and {args.big_rows:,} rows, svc {args.svc_rows:,} "
          f"rows, in Parquet files of {FILE_ROWS:,} rows; --partition-rows "
          f"{args.partition_rows:,} (svc: {svc_partition:,})\n")

    print("throughput of explain_to_parquet, rows/s (cluster start-up not counted; the pass "
          "that counts rows, the bundle's load on each worker and the Parquet writes are)")
    print(f"{'bundle':<28}{'rows':>11}{'1 worker':>11}{'2 workers':>11}{'speed-up':>10}")
    results = {}
    for key, name, folder, partition in (
            ("people", "people (linear, pipeline)", big, args.partition_rows),
            ("svc", "svc (kernel, 64 x 5)", svc_folder, svc_partition)):
        one = run(bundles[key], folder, 1, partition, f"{key}-1")
        two = run(bundles[key], folder, 2, partition, f"{key}-2")
        results[key] = two
        print(f"{name:<28}{two['rows']:>11,}{one['rows_per_s']:>11,.0f}"
              f"{two['rows_per_s']:>11,.0f}{two['rows_per_s'] / one['rows_per_s']:>9.2f}x",
              flush=True)

    print("\nsingle-process path (validate + predict + explain), ms per row")
    print(f"{'bundle':<28}{'whole table':>14}{'one row/call':>14}")
    for name, bundle, frame in (
            ("people (linear, pipeline)", bundles["people"], pd.read_parquet(small)),
            ("svc (kernel, 64 x 5)", bundles["svc"], svc_frame.iloc[:1000])):
        table, alone = single_process(bundle, frame)
        print(f"{name:<28}{table:>14.4f}{alone:>14.2f}", flush=True)

    print(f"\npeak resident memory per worker (MiB), 2 workers, people, --partition-rows "
          f"{args.partition_rows:,}")
    baseline = run(bundles["people"], None, 2, args.partition_rows, "baseline")
    print(f"{'bundle loaded, nothing explained':>34}: "
          + ", ".join(f"{p:,.0f}" for p in baseline["peak_mib"]))
    small_run = run(bundles["people"], small, 2, args.partition_rows, "people-small")
    for rows, result in ((args.rows, small_run), (args.big_rows, results["people"])):
        peaks = ", ".join(f"{p:,.0f}" for p in result["peak_mib"])
        print(f"{rows:>20,} rows explained: {peaks}  ({result['seconds']:.1f} s)", flush=True)
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
