"""What adaptive batching could gain: the request path's CPU time per row, one row per call
against many rows per call, for the explainers whose per-row cost is large.

    python -m bench.batching               # make bench-batching

A service whose workers already use every core gains from batching one-row requests only
as much as a call on a batch costs less per row than a call on one row: batching adds no
core, it can only amortize per-call work. For the kernel and permutation scoring explainers
(their defaults, as distill ships them) and for the model alone (no explanation), on the
demo's SVC (30 numbers) and on an MLP behind the realistic preprocessing of credit rows
(strings and numbers with missing values), this times ``ExplanationBundle.score`` of one
row and of ``--batch`` rows (CPU time of this thread, one BLAS/OpenMP thread, medians),
side by side in one run, and writes ``bench/results/batching-<UTC>.json``.
"""

from __future__ import annotations

import argparse
import os
import warnings
from datetime import UTC, datetime

import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC

from bench.run import machine, write_result
from scoring import (
    ExplanationBundle,
    KernelScoringExplainer,
    PermutationScoringExplainer,
)
from scoring.datasets import make_credit, preprocessor
from scoring.evaluation.timing import median_ms

EXPLAINERS = {"kernel": KernelScoringExplainer, "permutation": PermutationScoringExplainer}


def models() -> dict[str, tuple[object, pd.DataFrame]]:
    """The two models, fitted, with their training rows."""
    cancer = load_breast_cancer(as_frame=True)
    svc = SVC(probability=True, random_state=0).fit(cancer.data.to_numpy(), cancer.target)
    credit_X, credit_y = make_credit(n_rows=2000)
    mlp = Pipeline([("prep", preprocessor()),
                    ("model", MLPClassifier((32,), max_iter=300, random_state=0))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLP convergence on a short fit
        mlp.fit(credit_X, credit_y)
    return {"breast_cancer_svc": (svc, cancer.data), "credit_mlp": (mlp, credit_X)}


def _gain(bundle: ExplanationBundle, rows: list, batch: int, repeats: int,
          explain: bool) -> dict:
    single = median_ms(lambda: bundle.score(rows[:1], explain=explain), repeats)
    batched = median_ms(lambda: bundle.score(rows[:batch], explain=explain),
                        max(3, repeats // 5)) / batch
    return {"one_row_ms": single, "batched_ms_per_row": batched,
            "batching_gain": single / batched}


def measure(model: object, X: pd.DataFrame, kind: str, batch: int, repeats: int) -> dict:
    """Milliseconds per row of the request path, one row per call and ``batch`` per call,
    per explainer and without the explanation (the model alone)."""
    frame = kind == "credit_mlp"  # the SVC was fitted on an array: rows as lists
    fit_rows = X if frame else X.to_numpy()
    rows = X.iloc[:batch].to_dict("records") if frame else X.iloc[:batch].to_numpy().tolist()
    out = {}
    for name, cls in EXPLAINERS.items():
        bundle = ExplanationBundle(model, cls().fit(model, fit_rows))
        out[name] = _gain(bundle, rows, batch, repeats, explain=True)
    out["no explanation"] = _gain(bundle, rows, batch, repeats, explain=False)
    for name, r in out.items():
        print(f"  {kind:18s} {name:15s} one row {r['one_row_ms']:9.2f} ms; {batch} rows "
              f"{r['batched_ms_per_row']:9.2f} ms/row: at most {r['batching_gain']:5.2f}x "
              "from batching", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.batching",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32,
                        help="rows per batched call (default 32: the connections of the "
                        "load target)")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    info = {"started": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {**machine(), "load_average": list(os.getloadavg())},
            "batch": args.batch, "repeats": args.repeats}
    print(f"machine: {info['machine']['cores']} CPUs, load average "
          + " ".join(f"{x:.2f}" for x in info["machine"]["load_average"]))
    info["models"] = {kind: measure(model, X, kind, args.batch, args.repeats)
                      for kind, (model, X) in models().items()}
    path = write_result("batching", info)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
