"""Distill at the largest size it promises: 5,000 training rows, 30 raw columns.

``python -m bench.scale [--rows N] [--models a,b]`` generates a mixed-type table (22
skewed numeric columns with missing values, 8 string categoricals with missing values, a
target with interactions), fits the usual ``ColumnTransformer`` pipeline in front of each
model, and times ``distill`` on it with its defaults: the method it ships, what each
candidate achieved against its own reference, and whether it finished under two minutes.
Results go to ``bench/results/scale-*.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline

from bench.pipelines import TARGET_DISTILL_S, _reason, deadline
from bench.run import machine, write_result
from scoring import distill
from scoring.datasets import preprocessor

N_NUMERIC, N_CATEGORICAL = 22, 8
MODELS = {
    "logreg": lambda: LogisticRegression(max_iter=2000),
    "forest": lambda: RandomForestClassifier(n_estimators=200, min_samples_leaf=10,
                                             random_state=0),
    "hgb": lambda: HistGradientBoostingClassifier(max_iter=150, random_state=0),
    "mlp": lambda: MLPClassifier((32, 16), max_iter=300, random_state=0),
}


def make_wide(n_rows: int, random_state: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """``(X, y)``: 22 numeric columns (lognormal, Poisson counts, bounded ratios; ~4 % NaN
    each), 8 string columns (3-12 levels, skewed frequencies; ~4 % missing), binary y
    driven by a few main effects, two interactions and a category-dependent slope."""
    rng = np.random.default_rng(random_state)
    n = n_rows
    columns: dict[str, object] = {}
    for j in range(N_NUMERIC):
        kind = j % 3
        values = (rng.lognormal(0, 0.8, n) if kind == 0 else rng.poisson(2 + j % 5, n)
                  .astype(float) if kind == 1 else rng.beta(2, 5, n))
        values = np.round(values, 3)
        values[rng.random(n) < 0.04] = np.nan
        columns[f"num_{j:02d}"] = values
    for j in range(N_CATEGORICAL):
        levels = [f"c{j}_{k}" for k in range(3 + (j * 3) % 10)]
        weights = 1.0 / np.arange(1, len(levels) + 1)
        values = rng.choice(levels, n, p=weights / weights.sum()).astype(object)
        values[rng.random(n) < 0.04] = None
        columns[f"cat_{j}"] = values
    X = pd.DataFrame(columns)
    filled = X.select_dtypes("number").fillna(X.median(numeric_only=True))
    first = X["cat_0"].fillna("c0_0")
    logit = (0.8 * np.log1p(filled["num_00"]) - 0.3 * filled["num_01"]
             + 2.0 * filled["num_02"] * (filled["num_03"] > 1.0)
             + 0.6 * np.where(first == "c0_1", filled["num_06"], -0.5 * filled["num_06"])
             + 0.5 * (X["cat_1"] == "c1_0") - 0.4 * filled["num_09"] * filled["num_12"]
             - 0.5)
    y = pd.Series((rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int), name="y")
    return X, y


def run_model(name: str, X: pd.DataFrame, y: pd.Series, timeout: float,
              verbose: bool) -> dict:
    pipeline = Pipeline([("prep", preprocessor()), ("model", MODELS[name]())])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipeline.fit(X, y)
    result: dict = {"model": name}
    started = time.perf_counter()
    try:
        with deadline(timeout) as fired, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            explainer = distill(pipeline, X, verbose=verbose)
        result["timed_out"] = fired["fired"]
    except Exception as exc:  # noqa: BLE001 -- report and go on to the next model
        result["error"] = _reason(exc)
        result["distill_seconds"] = time.perf_counter() - started
        return result
    result["distill_seconds"] = time.perf_counter() - started
    report = explainer.report_.to_dict()
    result.update(method=report["method"], fidelity=report["fidelity"],
                  latency=report.get("latency"), tried=report["tried"],
                  summary=explainer.report_.summary())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--rows", type=int, default=5000, help="training rows (default 5000)")
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated subset of {','.join(MODELS)}")
    parser.add_argument("--timeout", type=float, default=600,
                        help="stop one distill after this many seconds (default 600)")
    parser.add_argument("--verbose", action="store_true", help="distill's progress")
    args = parser.parse_args(argv)
    names = args.models.split(",")
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {list(MODELS)}")
    X, y = make_wide(args.rows)
    info = {"machine": {**machine(), "load_average": list(os.getloadavg())},
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "rows": args.rows, "raw_columns": X.shape[1], "models": []}
    print(f"{args.rows} training rows x {X.shape[1]} raw columns ({N_NUMERIC} numeric, "
          f"{N_CATEGORICAL} strings, {int(X.isna().sum().sum())} missing cells); load "
          "average " + " ".join(f"{v:.2f}" for v in info["machine"]["load_average"]))
    print(f"   {'model':8s} {'distill s':>10s} {'< 120 s':>8s}  shipped")
    for name in names:
        r = run_model(name, X, y, args.timeout, args.verbose)
        info["models"].append(r)
        ok = "PASS" if r["distill_seconds"] < TARGET_DISTILL_S and "error" not in r else "FAIL"
        print(f"   {name:8s} {r['distill_seconds']:10.1f} {ok:>8s}  "
              f"{r.get('summary') or r.get('error')}", flush=True)
    path = write_result("scale", info)
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
