"""distill's fallback for black boxes on small data, the centroid walks, side by side with
the anchor (the Azure SDK's configuration) and distill's bar in one run.

``python -m bench.fallback [--cases a,b] [--n-explain N]`` runs the cases of
:data:`tests.support.realistic.SMALL_BLACK_BOX` (kNN, MLP, SVC and boosting probabilities
on 300 training rows, strings through a ``ColumnTransformer``). Per case, against exact
interventional Shapley values of the raw columns on every training row:

- the anchor: shap's ``KernelExplainer`` on ``shap.kmeans(engineered rows, 10)``, as
  ``bench.pipelines`` runs it (fidelity the mean of 3 seeds);
- distill's bar: ``KernelScoringExplainer`` (kmeans-10, raw columns as players);
- the centroid walks forced at each of distill's budgets (``CENTROID_BUDGETS``).

Times are CPU milliseconds of one thread for one engineered row given the model outputs,
each explainer timed in turn in three rounds (the median of the rounds), so the
speed-ups are ratios from the same moments. Writes ``bench/results/fallback-<UTC>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from datetime import UTC, datetime
from typing import Any

import numpy as np

from bench.pipelines import (
    _Anchor,
    engineer,
    exact_group_shapley,
    fidelity,
    group_map,
    layout,
    output_fn,
    to_raw,
)
from bench.run import machine, write_result
from scoring import CentroidWalksScoringExplainer, KernelScoringExplainer
from scoring.evaluation.candidates import CENTROID_BUDGETS
from scoring.evaluation.timing import median_ms
from tests.support.realistic import SMALL_BLACK_BOX, RealisticCase

ANCHOR_SEEDS = 3
ROUNDS = 3


def _log(message: str) -> None:
    print(f"[fallback] {message}", file=sys.stderr, flush=True)


def run_case(name: str, n_explain: int, repeats: int) -> dict:
    case: RealisticCase = SMALL_BLACK_BOX[name]()
    _log(f"case {name}: {case.description}")
    rows = case.X_test.iloc[:n_explain].reset_index(drop=True)
    E_train, E_rows = engineer(case.model, case.X_train), engineer(case.model, rows)
    groups = group_map(case.model, case.X_train, np.random.default_rng(0))
    R = case.X_train.shape[1]
    started = time.perf_counter()
    phi, _ = exact_group_shapley(output_fn(case.model[-1], case.task), E_rows, E_train,
                                 groups, R)
    truth = layout(phi, case.task)
    out: dict[str, Any] = {
        "name": name, "description": case.description, "n_train": len(case.X_train),
        "raw_columns": R, "engineered_columns": int(E_train.shape[1]),
        "n_explained_rows": len(rows),
        "ground_truth": {"background_rows": len(E_train), "coalitions": 2**R,
                         "seconds": time.perf_counter() - started}}

    anchor = _Anchor(case.model[-1], case.task, E_train)
    runs = []
    for seed in range(ANCHOR_SEEDS):
        np.random.seed(seed)
        runs.append(fidelity(layout(to_raw(anchor(E_rows), groups, R), case.task), truth))
    out["anchor"] = {"fidelity": {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}}

    explainers = {"bar": KernelScoringExplainer().fit(case.model, case.X_train)}
    for k in CENTROID_BUDGETS:
        explainers[f"walks_{k}"] = CentroidWalksScoringExplainer(n_background=k).fit(
            case.model, case.X_train)
    for label, explainer in explainers.items():
        values = np.asarray(explainer.explain(rows, get_raw=True), dtype=float)
        out[label] = {"fidelity": fidelity(values, truth),
                      "model_rows_per_row": explainer.model_rows_per_row(),
                      "params": json.loads(json.dumps(explainer.get_params(), default=str))}

    # one engineered row given its outputs, every explainer timed in turn, three rounds
    spec = explainers["bar"].spec_
    one = spec.transform(spec.validate(rows.iloc[[0]]))
    given = spec.outputs(one)
    calls = {"anchor": (lambda: anchor(E_rows[:1]), 3)}
    calls.update({label: (lambda e=e: e.shap_values(one, given), repeats)
                  for label, e in explainers.items()})
    rounds = [{label: median_ms(call, n) for label, (call, n) in calls.items()}
              for _ in range(ROUNDS)]
    for label in calls:
        out[label]["row_ms"] = statistics.median(r[label] for r in rounds)
    anchor_fidelity = out["anchor"]["fidelity"]
    for label in explainers:
        entry = out[label]
        entry["speedup"] = out["anchor"]["row_ms"] / entry["row_ms"]
        entry["faithful"] = bool(
            entry["fidelity"]["relative_l2_error"] <= anchor_fidelity["relative_l2_error"]
            and entry["fidelity"]["top5_precision"] >= anchor_fidelity["top5_precision"])
    return out


def print_case(r: dict) -> None:
    print(f"\n== {r['name']}: {r['description']}; {r['raw_columns']} raw / "
          f"{r['engineered_columns']} engineered columns; ground truth exact on "
          f"{r['ground_truth']['background_rows']} training rows; {r['n_explained_rows']} "
          "rows explained")
    print(f"   {'explainer':28s} {'relL2':>6s} {'top5':>5s} {'model rows':>10s} "
          f"{'ms/row':>8s} {'x anchor':>8s}  faithful")
    labels = {"anchor": "anchor (shap, kmeans-10)", "bar": "distill's bar (kernel)"}
    for label in ("anchor", "bar", *(f"walks_{k}" for k in CENTROID_BUDGETS)):
        e = r[label]
        f = e["fidelity"]
        name = labels.get(label, f"centroid walks, {label[6:]}")
        rows = e.get("model_rows_per_row", "-")
        print(f"   {name:28s} {f['relative_l2_error']:6.3f} {f['top5_precision']:5.2f} "
              f"{rows!s:>10s} {e['row_ms']:8.2f} {e.get('speedup', 1.0):8.1f}  "
              f"{'-' if label == 'anchor' else 'yes' if e['faithful'] else 'no'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fallback", description=__doc__)
    parser.add_argument("--cases", default=None,
                        help=f"comma-separated subset of {','.join(SMALL_BLACK_BOX)}")
    parser.add_argument("--n-explain", type=int, default=40, help="held-out rows explained")
    parser.add_argument("--repeats", type=int, default=15,
                        help="timed calls per round of a fast explainer")
    args = parser.parse_args(argv)
    names = args.cases.split(",") if args.cases else list(SMALL_BLACK_BOX)
    unknown = [n for n in names if n not in SMALL_BLACK_BOX]
    if unknown:
        parser.error(f"unknown cases {unknown}; choose from {list(SMALL_BLACK_BOX)}")
    info: dict[str, Any] = {
        "machine": {**machine(), "load_average": list(os.getloadavg())},
        "started": datetime.now(UTC).isoformat(timespec="seconds"), "argv": sys.argv[1:],
        "n_explain": args.n_explain, "anchor_seeds": ANCHOR_SEEDS, "rounds": ROUNDS,
        "budgets": list(CENTROID_BUDGETS), "threads_while_timing": 1}
    m = info["machine"]
    print(f"machine: {m['cores']} cpus ({m['cpu']}), load average "
          + " ".join(f"{x:.2f}" for x in m["load_average"])
          + f"; numpy {m['numpy']}, scikit-learn {m['scikit-learn']}, shap {m['shap']}")
    print(f"inputs: cases {names}; {args.n_explain} held-out rows; anchor fidelity mean of "
          f"{ANCHOR_SEEDS} seeds; centroid budgets {list(CENTROID_BUDGETS)}; one thread")
    started = time.perf_counter()
    results = []
    for name in names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # shap's and sklearn's chatter on every call
            r = run_case(name, args.n_explain, args.repeats)
        print_case(r)
        results.append(r)
    info["seconds"] = time.perf_counter() - started
    info["cases"] = results
    path = write_result("fallback", info)
    print(f"\nwrote {path} ({info['seconds']:.0f} s; load average at the end "
          + " ".join(f"{x:.2f}" for x in info["load_average_end"]) + ")")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
