"""Batch explanations on Dask: every row of a large table explained by a bundle.

``explain_dataframe`` turns a Dask DataFrame into a Dask DataFrame of local importances;
``explain_to_parquet`` (and ``scoring explain --output DIR``) writes them as one Parquet
file per partition, resumably (for the same input, bundle and settings only:
:mod:`scoring.remote.resume`), and aggregates the table's global explanation on the
cluster. A bundle given by tag is loaded once per worker process (``_bundle``), not once
per partition.
"""

from __future__ import annotations

import argparse
import glob as globbing
import os
import sys
import threading
import uuid
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scoring.artifacts.bundle import BundleError, ExplanationBundle
from scoring.artifacts.scored_table import check_feature_names, scored_table
from scoring.core.counts import counted
from scoring.core.explanation import Explanation
from scoring.model.schema import InputError
from scoring.remote.client import ExplanationClient
from scoring.remote.resume import (
    GLOBAL_FILE,
    check_output,
    input_identity,
    new_manifest,
    part_name,
    partition_identity,
    prepare_output,
)

DEFAULT_PARTITION_ROWS = 20_000
_INSTALL_HINT = "pip install 'scoring[dask]'"

# bundles loaded in this process, by (reference, BentoML home): a worker loads each once
_BUNDLES: dict[tuple[BundleRef, str], ExplanationBundle] = {}
_BUNDLE_LOCK = threading.Lock()
_LOADS = 0  # bundles loaded by this process (the tests check: one per worker)


def _dask() -> Any:
    try:
        import dask
        import dask.dataframe  # noqa: F401
    except ImportError:
        raise ImportError(f"batch explanations need Dask, which is not installed: "
                          f"{_INSTALL_HINT}") from None
    return dask


@dataclass(frozen=True)
class BundleRef:
    """What a worker needs to load the planned bundle from its model store: the tag, the
    types beyond the allow-list the operator trusted where it was planned, and the model
    fingerprint the bundle must have (a store where the tag names another model is
    refused rather than explained with)."""

    tag: str
    trusted_types: tuple[str, ...] = ()
    fingerprint: str | None = None


def _bundle(ref: BundleRef | ExplanationBundle) -> ExplanationBundle:
    """The bundle for ``ref``: itself, or the one loaded from the model store by this process
    (first use only)."""
    global _LOADS
    if isinstance(ref, ExplanationBundle):
        return ref
    key = (ref, os.environ.get("BENTOML_HOME", ""))
    with _BUNDLE_LOCK:  # worker threads share the cache
        if key not in _BUNDLES:
            bundle = ExplanationBundle.load(ref.tag, trusted_types=ref.trusted_types)
            if ref.fingerprint is not None and bundle.spec.fingerprint != ref.fingerprint:
                raise BundleError(f"bundle {ref.tag} in this worker's model store explains "
                                  f"model {bundle.spec.fingerprint[:12]}, not the planned "
                                  f"{ref.fingerprint[:12]}")
            _BUNDLES[key] = bundle
            _LOADS += 1
        return _BUNDLES[key]


def _score_partition(bundle: ExplanationBundle, frame: pd.DataFrame, get_raw: bool
                     ) -> tuple[np.ndarray, np.ndarray | None, Explanation]:
    """Predictions, probabilities and local explanation of ``frame``, through the
    service's own request path."""
    scored = bundle.score(frame, get_raw=get_raw)
    return scored.predictions, scored.probabilities, scored.explanation


def _explain_piece(frame: pd.DataFrame, ref: BundleRef | ExplanationBundle, get_raw: bool,
                   first_row: int) -> pd.DataFrame:
    bundle = _bundle(ref)
    predictions, probabilities, explanation = _score_partition(
        bundle, frame.reset_index(drop=True), get_raw)
    return scored_table(explanation, predictions, probabilities, first_row)


def _slice(frame: pd.DataFrame, start: int, stop: int) -> pd.DataFrame:
    return frame.iloc[start:stop]


@dataclass
class _Plan:
    """How the table is cut: pieces of at most ``partition_rows`` rows, their first row id,
    and what one explained row looks like; what the input and the bundle are."""

    ref: Any
    get_raw: bool
    inputs: list  # dask.delayed input partitions
    pieces: list[tuple[int, int, int]]  # (input partition, start, stop)
    offsets: list[int]
    meta: pd.DataFrame
    sample: Explanation
    bundle: dict  # tag, model fingerprint, explainer
    settings: dict  # get_raw, partition_rows
    identity: dict  # rows per partition and SHA-256 of the input: resume.input_identity

    def piece(self, i: int) -> Any:
        from dask import delayed

        part, start, stop = self.pieces[i]
        source = self.inputs[part]
        if (start, stop) != (0, self.identity["lengths"][part]):
            source = delayed(_slice, pure=True)(source, start, stop)
        return delayed(_explain_piece, pure=True)(source, self.ref, self.get_raw,
                                                  self.offsets[i])


def recorded(bundle: ExplanationBundle, get_raw: bool | None,
             partition_rows: int | None) -> tuple[dict, dict]:
    """What an output's manifest records of the bundle and of the settings of a run:
    known before the input is read or a cluster started."""
    return ({"tag": bundle.tag, "model_fingerprint": bundle.spec.fingerprint,
             "explainer": type(bundle.scoring_explainer).__name__},
            {"get_raw": bundle.spec.layout.raw_values(get_raw, bundle.scoring_explainer.players_),
             "partition_rows": partition_rows})


def _plan(bundle: str | ExplanationBundle, data: Any, get_raw: bool | None,
          partition_rows: int | None, trusted_types: Iterable[str]) -> _Plan:
    dask = _dask()
    trusted = tuple(trusted_types)
    local = _bundle(BundleRef(bundle, trusted) if isinstance(bundle, str) else bundle)
    tag = local.tag  # resolved ("name:latest" names whichever bundle is latest now)
    identity_of_bundle, settings = recorded(local, get_raw, partition_rows)
    resolved_raw = settings["get_raw"]
    with warnings.catch_warnings():  # dask warns when the first partition is empty
        warnings.simplefilter("ignore", UserWarning)
        head = data.head(1, npartitions=1)  # reads one partition, not all of them
    if len(head) == 0:
        head = data.head(1, npartitions=-1)
    if len(head) == 0:
        raise ValueError("no rows to explain")
    predictions, probabilities, sample = _score_partition(
        local, head.reset_index(drop=True), resolved_raw)
    sample_frame = scored_table(sample, predictions, probabilities)
    check_feature_names(sample.features)
    # rows and content of every partition, in one read
    identity = input_identity(list(dask.compute(*[
        dask.delayed(partition_identity, pure=True)(part) for part in data.to_delayed()])))
    lengths = identity["lengths"]
    pieces, offsets, first = [], [], 0
    step = partition_rows or max(max(lengths), 1)
    for part, n in enumerate(lengths):
        for start in range(0, n, step):
            pieces.append((part, start, min(start + step, n)))
            offsets.append(first + start)
        first += n
    # a saved bundle travels as its tag (each worker loads it once, trusting the types the
    # operator named; never those its own files record); an unsaved one is one key of the
    # graph, shipped to each worker once
    ref = BundleRef(tag, trusted, local.spec.fingerprint) if tag else \
        dask.delayed(local, name=f"bundle-{uuid.uuid4().hex}")
    return _Plan(ref, resolved_raw, list(data.to_delayed()), pieces, offsets,
                 sample_frame.iloc[:0], sample, identity_of_bundle, settings, identity)


def explain_dataframe(bundle: str | ExplanationBundle, data: Any, get_raw: bool | None = None,
                      partition_rows: int | None = None,
                      trusted_types: Iterable[str] = ()) -> Any:
    """Local explanations of every row of the Dask DataFrame ``data``, as a Dask DataFrame.

    One line per input row (and class for classifiers): ``row`` (position in ``data``),
    ``class``, ``prediction``, ``probability`` of that class (models with
    ``predict_proba``), one importance column per feature, ``expected_value``.
    ``bundle`` is an :class:`ExplanationBundle` or its tag (loaded once per worker);
    ``get_raw=None`` explains raw columns when the bundle has transformations.
    ``partition_rows`` cuts the output into pieces of at most that many input rows.
    ``trusted_types``: types beyond the allow-list the bundle's model may hold, trusted by
    you (as :meth:`ExplanationBundle.load`'s; workers load a saved bundle by its tag with
    them and ``SCORING_TRUSTED_TYPES``). Counting the rows of each partition (and hashing
    them, for resumes) reads ``data`` once, eagerly.
    """
    import dask.dataframe as dd

    plan = _plan(bundle, data, get_raw, partition_rows, trusted_types)
    return dd.from_delayed([plan.piece(i) for i in range(len(plan.pieces))], meta=plan.meta,
                           verify_meta=False)


# -- writing Parquet, resumably ----------------------------------------------------------
def _stats(frame: pd.DataFrame, features: list[str], classes: list | None) -> dict:
    """Sum of |importance| per class and feature, and the number of rows: what the global
    explanation needs, small enough to gather."""
    values = np.abs(frame[features].to_numpy(dtype=float))
    if classes is None:
        return {"rows": len(frame), "abs_sum": values.sum(axis=0, keepdims=True)}
    k = len(classes)
    sums = values.reshape(-1, k, len(features)).sum(axis=0)  # lines are row-major, class-minor
    return {"rows": len(frame) // k, "abs_sum": sums}


def _merge(stats: list[dict]) -> dict:
    return {"rows": sum(s["rows"] for s in stats),
            "abs_sum": np.sum([s["abs_sum"] for s in stats], axis=0)}


def _write_piece(frame: pd.DataFrame, path: str, features: list[str],
                 classes: list | None) -> dict:
    # write beside the target, then rename: a killed worker never leaves a partial part-file
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex}")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, target)
    return _stats(frame, features, classes)


def _read_stats(path: str, features: list[str], classes: list | None) -> dict:
    return _stats(pd.read_parquet(path, columns=features), features, classes)


@dataclass
class BatchResult:
    """What :func:`explain_to_parquet` did."""

    output: Path
    rows: int
    partitions: int
    written: int
    skipped: int
    global_explanation: Explanation
    recomputed: str = ""  # why part-files already in ``output`` were deleted ("" if not)


def _global(sample: Explanation, merged: dict, source: str, input_sha256: str) -> Explanation:
    abs_sum, rows = merged["abs_sum"], max(merged["rows"], 1)
    per_class = abs_sum / rows
    extra: dict[str, Any] = {"rows": merged["rows"], "source": source,
                             "input_sha256": input_sha256}
    if sample.classes is not None:
        extra["per_class_global_importance"] = {
            str(c): per_class[i].tolist() for i, c in enumerate(sample.classes)}
    return Explanation(sample.features, global_importance_values=per_class.mean(axis=0),
                       expected_values=sample.expected_values, classes=sample.classes,
                       method=sample.method, model_output=sample.model_output,
                       raw=sample.raw, extra=extra)


def explain_to_parquet(bundle: str | ExplanationBundle, data: Any, output: str | Path, *,
                       get_raw: bool | None = None,
                       partition_rows: int = DEFAULT_PARTITION_ROWS, client: Any = None,
                       progress: bool = True, source: str = "",
                       trusted_types: Iterable[str] = ()) -> BatchResult:
    """Explain ``data`` (a Dask DataFrame) into ``output``: ``part-NNNNN.parquet`` per
    piece of at most ``partition_rows`` rows (see :func:`explain_dataframe` for the
    columns), ``_global_explanation.json`` (mean |importance| over the whole table, per
    class in ``extra``, with the input's ``source`` and ``input_sha256``) and
    ``_manifest.json``. Part-files already in ``output`` from an interrupted run on the same
    input (same content), bundle and settings are kept, not recomputed; those of another
    input are deleted and recomputed, another bundle or other settings are refused
    (:func:`scoring.remote.resume.prepare_output`). ``progress`` draws a progress bar on
    stderr and says there why part-files were recomputed. ``client`` is a
    ``distributed.Client`` (default: the current one); ``trusted_types`` as
    :func:`explain_dataframe`'s."""
    from distributed import as_completed, default_client

    client = client or default_client()
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    plan = _plan(bundle, data, get_raw, partition_rows, trusted_types)
    recomputed = prepare_output(out, new_manifest(plan.bundle, plan.settings, plan.identity,
                                                  source))
    if recomputed and progress:
        print(f"[explain] {recomputed}", file=sys.stderr)
    features, classes = plan.sample.features, plan.sample.classes
    tasks, skipped = [], 0
    from dask import delayed

    for i in range(len(plan.pieces)):
        path = out / part_name(i)
        if path.exists():
            skipped += 1
            tasks.append(delayed(_read_stats, pure=True)(str(path), features, classes))
        else:
            tasks.append(delayed(_write_piece, pure=True)(plan.piece(i), str(path), features,
                                                          classes))
    futures = client.compute(tasks)
    bar = _progress(len(futures), progress)
    for _ in as_completed(futures):
        bar(1)
    bar(None)
    # the table's global explanation is summed on the cluster; only its result comes back
    merged = client.submit(_merge, futures, pure=False).result()
    explanation = _global(plan.sample, merged, source, plan.identity["sha256"])
    (out / GLOBAL_FILE).write_text(explanation.to_json())
    return BatchResult(out, merged["rows"], len(tasks), len(tasks) - skipped, skipped,
                       explanation, recomputed)


def _progress(total: int, enabled: bool) -> Callable[[int | None], None]:
    """A tqdm bar on stderr (``bar(n)`` advances, ``bar(None)`` closes)."""
    if not enabled:
        return lambda n: None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="partition", desc="explaining", file=sys.stderr)
    return lambda n: bar.close() if n is None else bar.update(n)


# -- the command line --------------------------------------------------------------------
def read_table(path: str, drop: list[str] | None = None) -> Any:
    """A Dask DataFrame over CSV or Parquet files: a path, a glob, or a Parquet directory."""
    _dask()
    import dask.dataframe as dd

    if "://" in path:  # s3://, gs://...: fsspec expands the glob (needs s3fs, gcsfs...)
        target: Any = path
        is_dir, suffix = False, Path(path.split("?")[0].rstrip("/")).suffix.lower()
    else:
        matches = sorted(globbing.glob(path))
        if not matches:
            raise ValueError(f"no data file matches {path}")
        target = matches if len(matches) > 1 else matches[0]
        is_dir, suffix = Path(matches[0]).is_dir(), Path(matches[0]).suffix.lower()
    if is_dir or suffix in (".parquet", ".pq") or (suffix == "" and "://" in path):
        frame = dd.read_parquet(target)
    elif suffix == ".csv":
        frame = dd.read_csv(target)
    else:
        raise ValueError(f"{path}: unsupported data file type {suffix!r}; use .csv or .parquet")
    unknown = [c for c in drop or [] if c not in frame.columns]
    if unknown:
        raise ValueError(f"--drop names unknown column(s) {unknown}")
    return frame.drop(columns=list(drop)) if drop else frame


def add_batch_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``scoring explain --output DIR`` (the Dask path)."""
    group = parser.add_argument_group("batch on Dask (--output DIR)")
    group.add_argument("--scheduler", default=None,
                       help="address of a running Dask scheduler (default: a local cluster "
                       "with one worker per core)")
    group.add_argument("--workers", type=int, default=None,
                       help="workers of the local cluster (default: one per core)")
    group.add_argument("--partition-rows", type=int, default=DEFAULT_PARTITION_ROWS,
                       help=f"input rows per output file (default {DEFAULT_PARTITION_ROWS})")
    group.add_argument("--upload-run", default=None,
                       help="MLflow run id to upload the table's global explanation to")
    group.add_argument("--comment", default=None, help="comment of the uploaded explanation")
    group.add_argument("--tracking-uri", default=None,
                       help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or "
                       "sqlite:///mlflow.db)")


def is_batch_output(output: str | None) -> bool:
    """``--output`` names a directory: no suffix, or an existing directory."""
    return output is not None and (Path(output).suffix == "" or Path(output).is_dir())


def maybe_run_batch(args: argparse.Namespace) -> int | None:
    """Run ``scoring explain`` on Dask when ``--output`` is a directory; ``None`` otherwise
    (the single-file path), after refusing batch options there."""
    if is_batch_output(args.output):
        return run_batch(args)
    given = [name for name in ("scheduler", "workers", "upload_run", "comment")
             if getattr(args, name, None) is not None]
    if given:
        raise SystemExit(f"error: --{given[0].replace('_', '-')} needs --output DIR (a "
                         "directory: the Dask batch path)")
    return None


def run_batch(args: argparse.Namespace) -> int:
    """``scoring explain --bundle TAG --data GLOB --output DIR [...]``."""
    if args.partition_rows < 1:
        raise SystemExit("error: --partition-rows must be a positive integer")
    if args.workers is not None and args.workers < 1:
        raise SystemExit("error: --workers must be a positive integer")
    try:
        # fail early, before any cluster: the bundle, the input's files and columns, and
        # whether the output directory takes this bundle and these settings
        bundle = ExplanationBundle.load(args.bundle, trusted_types=args.trusted_types)
        data = read_table(args.data, args.drop)
        check_output(Path(args.output), *recorded(bundle, args.get_raw, args.partition_rows))
        from distributed import Client, LocalCluster
    except (BundleError, ValueError, OSError, ImportError) as exc:
        raise SystemExit(f"error: {exc}") from None
    cluster = None
    if args.scheduler:
        client = Client(args.scheduler)
    else:
        # one single-threaded worker process per core: explainers hold the GIL in Python code
        cluster = LocalCluster(n_workers=args.workers or os.cpu_count() or 1,
                               threads_per_worker=1, dashboard_address=None)
        client = Client(cluster)
    try:
        workers = counted(len(client.scheduler_info()["workers"]), "worker")
        print(f"[explain] {args.data} on {client.scheduler.address} ({workers})",
              file=sys.stderr)
        result = explain_to_parquet(bundle, data, args.output, get_raw=args.get_raw,
                                    partition_rows=args.partition_rows, client=client,
                                    source=args.data, trusted_types=args.trusted_types)
    except (InputError, ValueError, OSError) as exc:
        raise SystemExit(f"error: {args.data}: {exc}") from None
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    print(f"wrote {counted(result.rows, 'explained row')} to {result.output} "
          f"({counted(result.written, 'partition')} written, {result.skipped} already there)",
          file=sys.stderr)
    if args.upload_run:
        uploader = ExplanationClient(tracking_uri=args.tracking_uri, run_id=args.upload_run)
        explanation_id = uploader.upload_model_explanation(
            result.global_explanation, comment=args.comment)
        print(f"uploaded the global explanation to run {args.upload_run} as "
              f"{explanation_id}", file=sys.stderr)
        print(explanation_id)
    return 0
