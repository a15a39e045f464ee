"""The ``scoring`` command: build bundles offline and explain files with them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from scoring.artifacts.bundle import DEFAULT_NAME, BundleError, ExplanationBundle
from scoring.artifacts.scored_table import check_feature_names, scored_table
from scoring.artifacts.trust import TRUSTED_TYPES_ENV, UntrustedTypes, check_storable
from scoring.core.counts import counted
from scoring.core.plain import plain
from scoring.dashboard.source import DATASET_MODEL_ROWS, DEFAULT_DATASET_ROWS, explain_dataset
from scoring.model.function import OUTPUTS
from scoring.model.schema import InputError
from scoring.remote.batch import add_batch_options, maybe_run_batch


def _read_table(path: str) -> pd.DataFrame:
    file = Path(path)
    if not file.exists():
        raise SystemExit(f"error: data file {path} does not exist")
    suffix = file.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(file)
    if suffix in (".parquet", ".pq"):
        try:
            return pd.read_parquet(file)
        except ImportError:
            raise SystemExit("error: reading Parquet needs pyarrow: "
                             "pip install 'scoring[parquet]'") from None
    raise SystemExit(f"error: {path}: unsupported data file type {suffix!r}; use .csv or "
                     ".parquet")


def _build_and_save(model: Any, X: Any, name: str, args: argparse.Namespace,
                    **distill_kwargs: Any) -> str:
    from scoring.evaluation.distill import distill

    trusted = getattr(args, "trusted_types", None) or []
    allow_pickle = getattr(args, "allow_pickle", False)
    if not allow_pickle:
        _check_storable(model, trusted)
    if getattr(args, "max_latency_ms", None) is not None:
        distill_kwargs["max_latency_ms"] = args.max_latency_ms
    if getattr(args, "min_fidelity", None) is not None:
        distill_kwargs["min_fidelity"] = args.min_fidelity
    if getattr(args, "model_output", None) is not None:
        distill_kwargs["model_output"] = args.model_output
    try:
        explainer = distill(model, X, method=args.method, random_state=args.random_state,
                            **distill_kwargs)
    except ValueError as exc:  # an output the model has not, a method that refuses it
        raise SystemExit(f"error: {exc}") from None
    bundle = ExplanationBundle(model, explainer, global_explanation=explainer.explain_global(X),
                               trusted_types=trusted, allow_pickle=allow_pickle)
    stored = ""
    if args.dashboard_rows > 0:
        bundle.dataset_explanation = explain_dataset(bundle, X, args.dashboard_rows,
                                                     random_state=args.random_state)
        stored = (f", {counted(bundle.dataset_explanation.num_examples, 'explained row')} "
                  "for its dashboard")
    try:
        tag = bundle.save(name)
    except TypeError as exc:  # types skops cannot store, or not named as trusted
        raise SystemExit(f"error: cannot save the bundle: {exc}") from None
    report = json.dumps(explainer.report_.to_dict(), indent=1)
    if args.report:
        Path(args.report).write_text(report)
    if args.verbose:
        print(report, file=sys.stderr)
    where = f"; full report in {args.report}" if args.report else \
        "; full report: GET /metadata, or --report FILE"
    print(f"[distill] saved bundle {tag} ({explainer.report_.method} explainer{stored})"
          f"{where}", file=sys.stderr)
    return tag


def _check_storable(model: Any, trusted_types: list[str]) -> None:
    """Stop before distilling a model the bundle could not store, with the flag to pass."""
    try:
        check_storable(model, trusted_types)
    except UntrustedTypes as exc:
        types = sorted({*trusted_types, *exc.types})
        raise SystemExit(
            f"error: the model holds types outside the allow-list: {exc.types}; nothing was "
            f"distilled. If you trust who wrote the model, run again with --trusted-types "
            f"{' '.join(types)} (and serve the bundle with {TRUSTED_TYPES_ENV}="
            f"{','.join(types)}, or sign it with SCORING_SIGNING_KEY)") from None
    except TypeError as exc:  # skops cannot store it at all
        raise SystemExit(f"error: cannot save the bundle: {exc}; nothing was distilled") \
            from None


def demo_model() -> tuple[Any, Any, Any]:
    """The seed's SVC on breast cancer, its probabilities calibrated (the seed's
    ``probability=True`` is deprecated in scikit-learn 1.9): the model, its training rows
    and the data set."""
    from sklearn import svm
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    data = load_breast_cancer()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.2, random_state=0)
    print("[demo] training CalibratedClassifierCV(svm.SVC(gamma=0.001, C=100.), "
          "ensemble=False) on breast cancer", file=sys.stderr)
    # one SVC fitted on every row, its decision values calibrated by a sigmoid fitted on
    # 5-fold cross-validated ones: deterministic, the same numbers on every run
    model = CalibratedClassifierCV(svm.SVC(gamma=0.001, C=100.), ensemble=False).fit(
        x_train, y_train)
    print(f"[demo] test accuracy {model.score(x_test, y_test):.3f}", file=sys.stderr)
    return model, x_train, data


def demo(args: argparse.Namespace) -> int:
    """The seed's example, distilled and saved as a bundle."""
    model, x_train, data = demo_model()
    tag = _build_and_save(model, x_train, args.name, args,
                          features=list(data.feature_names),
                          classes=data.target_names.tolist())
    print(tag)
    return 0


def distill_command(args: argparse.Namespace) -> int:
    """Model file + training data file + target column -> a saved bundle."""
    import joblib

    try:
        model = joblib.load(args.model)
    except FileNotFoundError:
        raise SystemExit(f"error: model file {args.model} does not exist") from None
    except Exception as exc:
        raise SystemExit(f"error: cannot load model {args.model}: {exc}") from None
    table = _read_table(args.data)
    if args.target not in table.columns:
        raise SystemExit(f"error: target column {args.target!r} is not in {args.data}; "
                         f"columns are {list(table.columns)}")
    X = table.drop(columns=[args.target])
    if not _takes_dataframe(model):
        X = X.to_numpy(dtype=float)
    features = list(table.columns.drop(args.target))
    tag = _build_and_save(model, X, args.name or Path(args.model).stem, args,
                          features=None if isinstance(X, pd.DataFrame) else features)
    print(tag)
    return 0


def _takes_dataframe(model: Any) -> bool:
    """Models fitted on DataFrames (pipelines with column selection) keep column names."""
    return hasattr(model, "feature_names_in_") or type(model).__name__ == "Pipeline"


def explain_command(args: argparse.Namespace) -> int:
    """Bundle + data file -> predictions and local importances as CSV, Parquet or JSON (or
    Parquet files, on Dask, when ``--output`` is a directory: ``scoring.remote.batch``)."""
    if (code := maybe_run_batch(args)) is not None:
        return code
    output = Path(args.output) if args.output else None
    suffix = ".json" if output is None else output.suffix.lower()
    if suffix not in (".csv", ".parquet", ".json"):
        raise SystemExit(f"error: output {output} must end in .csv, .parquet or .json (or "
                         "name a directory: Parquet files, explained on Dask)")
    try:
        bundle = ExplanationBundle.load(args.bundle, trusted_types=args.trusted_types)
    except BundleError as exc:
        raise SystemExit(f"error: {exc}") from None
    table = _read_table(args.data)
    unknown = [c for c in args.drop if c not in table.columns]
    if unknown:
        raise SystemExit(f"error: --drop names unknown column(s) {unknown}")
    table = table.drop(columns=args.drop)
    try:
        scored = bundle.score(table, get_raw=args.get_raw, keep_rows=True)
        explanation = scored.explanation
        if suffix != ".json":
            check_feature_names(explanation.features)
    except (InputError, ValueError) as exc:
        raise SystemExit(f"error: {args.data}: {exc}") from None
    if suffix == ".json":
        # an Explanation (the dashboard's --explanation file) with the predictions beside
        explanation.extra.update(predictions=plain(scored.predictions),
                                 probabilities=plain(scored.probabilities))
        text = explanation.to_json()
        if output is None:
            print(text)
            return 0
        output.write_text(text)
    elif suffix == ".csv":
        scored_table(explanation, scored.predictions, scored.probabilities).to_csv(
            output, index=False)
    else:
        scored_table(explanation, scored.predictions, scored.probabilities).to_parquet(
            output, index=False)
    print(f"wrote {counted(explanation.num_examples, 'explained row')} to {output}",
          file=sys.stderr)
    return 0


def _add_distill_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", default="auto",
                        help="scoring explainer: auto (the fastest that meets --min-fidelity), "
                        "linear, tree, amortized, svm, permutation or kernel (default: auto)")
    parser.add_argument("--model-output", default=None, choices=OUTPUTS,
                        help="the model output explained: predict_proba (classifiers' "
                        "default, as the Azure SDK), predict (regressors' default) or "
                        "decision_function (a classifier's margin; boosted trees' log-odds, "
                        "which the tree explainer gives exactly)")
    parser.add_argument("--max-latency-ms", type=float, default=None,
                        help="largest acceptable explanation time per row")
    parser.add_argument("--min-fidelity", type=float, default=None,
                        help="smallest acceptable fidelity (1 - relative L2 error) on "
                        "held-out rows")
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--report", default=None, metavar="FILE",
                        help="write distill's full report (every candidate's fidelity and "
                        "cost) to this JSON file")
    parser.add_argument("--verbose", action="store_true",
                        help="print distill's full report on stderr")
    parser.add_argument("--dashboard-rows", type=int, default=DEFAULT_DATASET_ROWS,
                        help="training rows explained and stored in the bundle for its "
                        f"dashboard (default {DEFAULT_DATASET_ROWS}, fewer when explaining "
                        f"them would take over {DATASET_MODEL_ROWS:,} model evaluations; 0: "
                        "none)")


def _add_trusted_types_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trusted-types", nargs="*", default=[],
                        help="types outside the allow-list the bundle's model may hold, if "
                        f"you trust who wrote it (as {TRUSTED_TYPES_ENV}; a bundle signed with "
                        "SCORING_SIGNING_KEY needs none)")


def migrate_command(args: argparse.Namespace) -> int:
    """An old (pickle) bundle or explainer you trust -> the same in the data-only format."""
    from scoring.artifacts.migrate import migrate

    try:
        print(migrate(args.source, args.name, trusted_types=args.trusted_types,
                      allow_pickle=args.allow_pickle))
    except (ValueError, TypeError, OSError, BundleError) as exc:
        raise SystemExit(f"error: {exc}") from None
    return 0


def _dashboard_bundle(args: argparse.Namespace) -> ExplanationBundle:
    try:
        bundle = ExplanationBundle.load(args.bundle, trusted_types=args.trusted_types)
    except BundleError as exc:
        raise SystemExit(f"error: {exc}") from None
    if args.explanation and not Path(args.explanation).is_file():
        raise SystemExit(f"error: explanation file {args.explanation} does not exist")
    if not args.explanation and bundle.dataset_explanation is None:
        raise SystemExit(f"error: bundle {bundle.tag} stores no explained rows for the "
                         "dashboard: rebuild it with `scoring distill` (--dashboard-rows), or "
                         "pass --explanation FILE from `scoring explain --output FILE.json`")
    return bundle


def dashboard_command(args: argparse.Namespace) -> int:
    """The service's dashboard on this machine: ``bentoml serve`` of the bundle (the same
    page, views, /predict and ICE), nothing deployed."""
    import os
    import subprocess

    bundle = _dashboard_bundle(args)
    env = {**os.environ, "SCORING_BUNDLE": str(bundle.tag)}
    if args.trusted_types:  # the server loads the bundle again: it trusts the same types
        env[TRUSTED_TYPES_ENV] = ",".join([env.get(TRUSTED_TYPES_ENV, ""), *args.trusted_types])
    if args.explanation:
        env["SCORING_DASHBOARD_EXPLANATION"] = str(Path(args.explanation).resolve())
    print(f"dashboard of {bundle.tag}: http://{args.host}:{args.port}/dashboard "
          "(Ctrl-C stops it)", file=sys.stderr)
    command = [sys.executable, "-m", "bentoml", "serve", "service.service:ExplainedModel",
               "--host", args.host, "--port", str(args.port)]
    try:
        return subprocess.run(command, env=env).returncode
    except KeyboardInterrupt:
        return 0


def report_command(args: argparse.Namespace) -> int:
    """A self-contained HTML report of the dashboard's global views and sampled local ones."""
    from scoring.dashboard import dashboard_data
    from scoring.dashboard.page import report_html

    bundle = _dashboard_bundle(args)
    try:
        data = dashboard_data(bundle, args.explanation)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    Path(args.output).write_text(report_html(data, title=f"Explanation report: {bundle.tag}"))
    print(f"wrote {args.output} ({Path(args.output).stat().st_size / 1e6:.1f} MB) from "
          f"{counted(data.n_rows, 'explained row')}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scoring", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("demo", help="train the seed's SVC (calibrated), distill it, save "
                            "the bundle")
    p.add_argument("--name", default=DEFAULT_NAME, help=f"bundle name (default {DEFAULT_NAME})")
    _add_distill_options(p)
    p.set_defaults(run=demo)

    p = commands.add_parser("distill", help="model file + training data -> saved bundle")
    p.add_argument("--model", required=True, help="joblib file of a fitted model")
    p.add_argument("--data", required=True, help="training data (.csv or .parquet)")
    p.add_argument("--target", required=True, help="target column, dropped before explaining")
    p.add_argument("--name", default=None, help="bundle name (default: model file stem)")
    p.add_argument("--trusted-types", nargs="*", default=[],
                   help="types outside the allow-list the model holds, each class by its "
                   "full name (an XGBoost classifier: xgboost.core.Booster "
                   "xgboost.sklearn.XGBClassifier); checked before distilling, which stops "
                   "naming the exact flag when one is missing; loading the bundle names them "
                   "again, unless it is signed")
    p.add_argument("--allow-pickle", action="store_true",
                   help="store a model skops cannot store as a pickle (runs code when loaded)")
    _add_distill_options(p)
    p.set_defaults(run=distill_command)

    p = commands.add_parser("explain", help="bundle + data file -> local importances")
    p.add_argument("--bundle", default=f"{DEFAULT_NAME}:latest", help="bundle tag")
    p.add_argument("--data", required=True, help="rows to explain (.csv or .parquet; a glob "
                   "with --output DIR)")
    p.add_argument("--output", default=None, help=".csv, .parquet or .json (default: JSON "
                   "on stdout), or a directory: Parquet files, explained on Dask")
    p.add_argument("--drop", nargs="*", default=[],
                   help="columns of the data file to ignore (a target column, ids)")
    p.add_argument("--get-raw", action=argparse.BooleanOptionalAction, default=None,
                   help="importances per raw column, or (--no-get-raw) per engineered column "
                   "(default: raw columns whenever the bundle has transformations)")
    _add_trusted_types_option(p)
    add_batch_options(p)
    p.set_defaults(run=explain_command)

    p = commands.add_parser(
        "migrate", help="re-save an old (pickle) bundle or explainer in the data-only format; "
        "this unpickles it: only for files you trust")
    p.add_argument("source", help="bundle tag, bundle directory or explainer directory")
    p.add_argument("--name", default=None, help="new bundle name (default: the old one's)")
    p.add_argument("--trusted-types", nargs="*", default=[],
                   help="types outside the allow-list the model holds")
    p.add_argument("--allow-pickle", action="store_true",
                   help="store a model skops cannot store as a pickle (runs code when loaded)")
    p.set_defaults(run=migrate_command)

    for name, help_text in (
            ("dashboard", "serve the explanation dashboard of a bundle on this machine"),
            ("report", "write the dashboard's global views as one self-contained HTML file")):
        p = commands.add_parser(name, help=help_text)
        p.add_argument("--bundle", default=f"{DEFAULT_NAME}:latest", help="bundle tag")
        p.add_argument("--explanation", default=None,
                       help="explained rows to draw: a file of `scoring explain --output "
                       "FILE.json` (default: the rows stored in the bundle)")
        _add_trusted_types_option(p)
        if name == "dashboard":
            p.add_argument("--host", default="127.0.0.1")
            p.add_argument("--port", type=int, default=3000)
            p.set_defaults(run=dashboard_command)
        else:
            p.add_argument("--output", required=True, help="the HTML file to write")
            p.set_defaults(run=report_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
