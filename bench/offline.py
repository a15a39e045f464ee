"""The seed's recipe ``TabularExplainer(model, x_train).explain_global(x_test)``: the
algorithm it ran before (shap's KernelExplainer in the Azure SDK's configuration) against
the one it picks now, side by side in one run.

``python -m bench.offline [--quick] [--cases a,b]`` runs each case with both, timing the
whole recipe (construction and ``explain_global``), and measures both sides' values at the
raw columns against one reference per case: exact enumeration of every raw-column
coalition where that is affordable, else antithetic permutation sampling on every training
row, computed twice with different seeds so that its own noise is known. Prints the
machine, its load and a table; writes JSON to ``bench/results/offline-<UTC>.json``.
Wrap it in ``flock /work/wt/bench.lock`` on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import shap  # imported before any timing: both sides use it

from bench.run import machine, write_result
from scoring import TabularExplainer
from scoring.evaluation.fidelity import relative_l2_error, top_k_precision, top_k_sign_agreement
from scoring.evaluation.reference import reference_values
from scoring.explainers.base import ModelExplainer
from tests.support.realistic import CASES


def _log(message: str) -> None:
    print(f"[offline] {message}", file=sys.stderr, flush=True)


def seed_svc(calibrated: bool = False) -> dict:
    """The seed's breast-cancer SVC, its split and its 114 test rows, as the how-to has it
    (``calibrated``: as the README has it, calibrated as scikit-learn 1.9 asks)."""
    from sklearn import svm
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    data = load_breast_cancer()
    x_train, x_test, y_train, _ = train_test_split(data.data, data.target, test_size=0.2,
                                                   random_state=0)
    if calibrated:
        model = CalibratedClassifierCV(svm.SVC(gamma=0.001, C=100.), ensemble=False)
        description = "the README's CalibratedClassifierCV(SVC(gamma=0.001, C=100))"
    else:
        model = svm.SVC(gamma=0.001, C=100., probability=True)
        description = "the seed's SVC(gamma=0.001, C=100, probability=True)"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The `probability` parameter", FutureWarning)
        model.fit(x_train, y_train)
    return {"description": f"{description} on breast cancer, 30 numeric columns",
            "model": model, "X_train": x_train, "X_test": x_test}


def realistic(name: str) -> Callable[[], dict]:
    def build() -> dict:
        case = CASES[name]()
        return {"description": f"{case.description} (a ColumnTransformer pipeline on "
                               "strings with missing values and numbers)",
                "model": case.model, "X_train": case.X_train, "X_test": case.X_test}
    return build


BUILDERS = {"seed_svc": seed_svc, "seed_calibrated_svc": lambda: seed_svc(calibrated=True),
            "churn_mlp": realistic("churn_mlp"),
            "wine_svc": realistic("wine_svc")}


# -- today's algorithm -----------------------------------------------------------------------
def today(model: Any, X_train: Any, rows: Any) -> np.ndarray:
    """What ``TabularExplainer(model, X_train).explain_global(rows)`` ran for these models
    before: the same checks of the rows (:class:`ModelExplainer`), then shap's
    ``KernelExplainer`` on ``shap.kmeans`` of 10 training rows as the model takes them,
    default ``nsamples``, ``l1_reg=False``, every row in one call, engineered values summed
    onto the raw columns."""
    explainer = ModelExplainer(model, X_train)
    spec = explainer.spec_
    E_train = np.asarray(explainer.engineered_rows_, dtype=float)
    E_rows = np.asarray(spec.transform(spec.validate(rows)), dtype=float)
    np.random.seed(0)  # shap samples coalitions from numpy's global generator
    kernel = shap.KernelExplainer(spec.function, shap.kmeans(E_train, 10))
    values = np.asarray(kernel.shap_values(E_rows, l1_reg=False, silent=True), dtype=float)
    return spec.layout.values(values.reshape(len(E_rows), E_train.shape[1], -1),
                              get_raw=spec.layout.has_raw or None)


def fidelity(values: np.ndarray, truth: np.ndarray) -> dict:
    return {"relative_l2_error": relative_l2_error(values, truth),
            "top5_precision": top_k_precision(values, truth),
            "top5_sign_agreement": top_k_sign_agreement(values, truth)}


# -- one case --------------------------------------------------------------------------------
def run_case(name: str, args: argparse.Namespace) -> dict:
    case = BUILDERS[name]()
    model, X_train, X_test = case["model"], case["X_train"], case["X_test"]
    if args.quick:
        X_test = X_test[:20]
    result: dict[str, Any] = {"name": name, "description": case["description"],
                              "n_train": len(X_train), "n_explained_rows": len(X_test)}
    _log(f"case {name}: {case['description']}; {len(X_train)} training rows, "
         f"{len(X_test)} explained")

    load = os.getloadavg()[0]
    started = time.perf_counter()
    new = TabularExplainer(model, X_train)
    explanation = new.explain_global(X_test)
    new_seconds = time.perf_counter() - started
    _log(f"  new: {new.selection_reason_}: {new_seconds:.2f} s")

    started = time.perf_counter()
    before = today(model, X_train, X_test)
    today_seconds = time.perf_counter() - started
    _log(f"  today's: {today_seconds:.2f} s (load average {load:.1f} before the pair)")

    rows = min(len(X_test), args.reference_rows)
    spec = new.spec_
    E_train = new.engineered_rows_
    E_rows = spec.transform(spec.validate(X_test[:rows]))
    started = time.perf_counter()
    truth, info = reference_values(spec, E_train, E_rows, n_background=len(E_train),
                                   budget=args.budget, random_state=1)
    info["seconds"] = time.perf_counter() - started
    info["rows"] = rows
    if info["kind"] != "exact":
        again, _ = reference_values(spec, E_train, E_rows, n_background=len(E_train),
                                    budget=args.budget, random_state=2)
        info["own_error"] = fidelity(again, truth)
    _log(f"  reference: {info}")
    result.update(
        load_average=load, reference=info,
        new={"method": explanation.method, "selection_reason": new.selection_reason_,
             "seconds": new_seconds,
             "fidelity": fidelity(explanation.local_importance_values[..., :rows, :], truth)},
        today={"method": "shap KernelExplainer, kmeans-10, nsamples auto, l1_reg=False",
               "seconds": today_seconds, "fidelity": fidelity(before[..., :rows, :], truth)},
        speedup=today_seconds / new_seconds)
    return result


def print_case(r: dict) -> None:
    print(f"\n{r['name']}: {r['description']}")
    print(f"  {r['n_train']} training rows; {r['n_explained_rows']} rows explained; "
          f"fidelity on {r['reference']['rows']} rows against {r['reference']['kind']} "
          f"({r['reference']['background_rows']} background rows)")
    for side in ("today", "new"):
        f = r[side]["fidelity"]
        how = r[side].get("selection_reason") or r[side]["method"]
        print(f"  {side:>5}: {r[side]['seconds']:8.2f} s  rel. L2 "
              f"{f['relative_l2_error']:.3f}  top-5 {f['top5_precision']:.2f}  ({how})")
    own = r["reference"].get("own_error")
    if own:
        print(f"  reference's own noise (two seeds): rel. L2 {own['relative_l2_error']:.3f}")
    print(f"  speed-up {r['speedup']:.1f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.offline",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 explained rows per case")
    parser.add_argument("--cases", default=",".join(BUILDERS),
                        help=f"comma-separated, of {', '.join(BUILDERS)}")
    parser.add_argument("--reference-rows", type=int, default=24,
                        help="explained rows the fidelity is measured on")
    parser.add_argument("--budget", type=int, default=65_536,
                        help="reference model rows per explained row")
    args = parser.parse_args(argv)
    names = [n for n in args.cases.split(",") if n]
    unknown = sorted(set(names) - set(BUILDERS))
    if unknown:
        parser.error(f"unknown case(s) {unknown}; choose among {', '.join(BUILDERS)}")
    info = {"machine": {**machine(), "load_average": list(os.getloadavg())},
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "argv": list(argv if argv is not None else sys.argv[1:]), "quick": args.quick,
            "reference_rows": args.reference_rows, "reference_budget": args.budget}
    m = info["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, load average "
          + " ".join(f"{x:.2f}" for x in m["load_average"])
          + f"; scikit-learn {m['scikit-learn']}, shap {m['shap']}")
    started = time.perf_counter()
    cases = []
    for name in names:
        cases.append(run_case(name, args))
        print_case(cases[-1])
    info.update(seconds=time.perf_counter() - started, cases=cases)
    path = write_result("offline", info)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
