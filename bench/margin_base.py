"""The exact margin base of boosting classifiers, before and after a change, side by side.

``python -m bench.margin_base [--before REV] [--cases a,b] [--rows N]`` fits the boosting
classifiers of :data:`tests.support.realistic.CASES`, and for each builds the margin base
the amortized explainer ships (the path engine's exact values of the margin at the raw
columns on 1,000 training rows, carried through the softmax or logistic link) twice in one
process: with ``scoring/shapley/tree_paths.py`` and ``link.py`` as they were at ``REV``
(default: ``main``) and as they are in this checkout. One row at a time, the two in turn,
each call after a 64 MB sweep that evicts the caches as a served request's other work
does; CPU time on one thread, medians. Prints the table; writes JSON to
``bench/results/margin_base-<UTC timestamp>.json``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import types
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from bench.pipelines import engineer, group_map
from bench.run import machine, write_result
from scoring.model.function import ModelFunction
from scoring.model.trees import output_dtype
from scoring.shapley import link as link_now
from scoring.shapley import tree_paths as paths_now
from scoring.shapley.background import sample_background
from tests.support.realistic import CASES

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CASES = "credit_gbc,credit_xgboost,triage_hgb_small,triage_lightgbm,triage_hgb"
# what the two sides share: a change here would make the comparison a different one
_SHARED = ["scoring/model", "scoring/shapley/exact.py", "scoring/shapley/kernel.py",
           "scoring/shapley/background.py"]
_SWEEP = np.zeros(8 * 2**20)  # 64 MB, larger than this machine's last-level cache share


def modules_at(revision: str) -> tuple[types.ModuleType, types.ModuleType]:
    """``(tree_paths, link)`` as they were at ``revision``, loaded beside today's."""
    changed = subprocess.run(["git", "diff", "--name-only", revision, "--", *_SHARED],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
    if changed.strip():
        raise SystemExit(f"{revision} differs from this checkout beyond the margin base: "
                         f"{changed.split()}")
    loaded = []
    for name in ("tree_paths", "link"):
        path = f"scoring/shapley/{name}.py"
        source = subprocess.run(["git", "show", f"{revision}:{path}"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout
        module = types.ModuleType(f"before_{name}")
        sys.modules[module.__name__] = module  # dataclasses look their module up
        exec(compile(source, f"{revision}:{path}", "exec"), module.__dict__)  # noqa: S102
        loaded.append(module)
    return loaded[0], loaded[1]


def _timed(call: Any) -> tuple[float, Any]:
    _SWEEP.sum()
    started = time.thread_time()
    result = call()
    return time.thread_time() - started, result


def run_case(name: str, before: tuple[types.ModuleType, types.ModuleType],
             n_rows: int, repeats: int) -> dict:
    case = CASES[name]()
    model = case.model[-1]
    E_train, rows = engineer(case.model, case.X_train), engineer(case.model, case.X_test)
    rows = rows[:n_rows]
    groups = group_map(case.model, case.X_train, np.random.default_rng(0))
    background, _ = sample_background(E_train, 1000, np.random.default_rng(0))
    margin = ModelFunction(model, "decision_function")
    atol = max(1e-9, 8 * float(np.finfo(output_dtype(model)).eps))
    link = link_now.probability_link(margin(E_train[:200]),
                                     ModelFunction(model, "predict_proba")(E_train[:200]),
                                     atol)
    expected = margin(background).mean(axis=0)
    sides = {"before": (before[0].PathEngine.build, {}, before[1].link_values),
             "after": (paths_now.PathEngine.build, {"table_dtype": np.float32},
                       link_now.link_values)}
    engines, build_s = {}, {}
    for side, (build, options, _) in sides.items():
        started = time.perf_counter()
        engines[side] = build(model, "decision_function", groups, background, **options)
        build_s[side] = time.perf_counter() - started
    times: dict[str, list[float]] = {side: [] for side in sides}
    values: dict[str, list[np.ndarray]] = {side: [] for side in sides}
    for _ in range(repeats):
        for row in rows:
            for side, (_, _, link_values) in sides.items():
                engine = engines[side]
                seconds, (phi, base) = _timed(lambda row=row, engine=engine, lv=link_values: (
                    (m := engine.values(row[None])), lv(m, expected, link)))
                times[side].append(seconds)
                values[side].append(np.concatenate([phi.ravel(), base.ravel()]))
    gap = max(float(np.abs(a - b).max())
              for a, b in zip(values["before"], values["after"], strict=True))
    ms = {side: 1e3 * float(np.median(times[side])) for side in sides}
    paths = engines["after"].paths
    return {"name": name, "description": case.description, "link": link,
            "trees": paths.n_trees, "leaves": len(paths.leaf_mask),
            "players": int(groups.max()) + 1, "rows": len(rows), "repeats": repeats,
            "before_ms": ms["before"], "after_ms": ms["after"],
            "speedup": ms["before"] / ms["after"], "largest_difference": gap,
            "build_seconds": build_s, "load_average": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.margin_base", description=__doc__)
    parser.add_argument("--before", default="main", help="git revision of the anchor side")
    parser.add_argument("--cases", default=DEFAULT_CASES)
    parser.add_argument("--rows", type=int, default=40, help="held-out rows, one at a time")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    revision = subprocess.run(["git", "rev-parse", "--short", args.before], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
    before = modules_at(args.before)
    result = {"started": datetime.now(UTC).isoformat(timespec="seconds"),
              "argv": sys.argv[1:], "before": f"{args.before} ({revision})",
              "machine": {**machine(), "load_average": list(os.getloadavg())}, "cases": []}
    print(f"margin base, before = {result['before']}, after = this checkout; load average "
          f"{result['machine']['load_average']}", file=sys.stderr)
    with threadpool_limits(1):
        for name in args.cases.split(","):
            case = run_case(name, before, args.rows, args.repeats)
            result["cases"].append(case)
            print(f"{name:18s} {case['leaves']:6d} leaves  before {case['before_ms']:.3f} ms"
                  f"  after {case['after_ms']:.3f} ms  {case['speedup']:.1f}x  largest "
                  f"difference {case['largest_difference']:.1e}", flush=True)
    path = write_result("margin_base", result)
    print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
