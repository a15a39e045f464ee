"""Scoring explainers side by side with the Azure SDK's anchor: latency and fidelity.

``python -m bench.run`` (``--quick`` for a short run, ``--cases svc,forest`` to choose).
Prints the machine, inputs, medians and a table of ratios; writes JSON to
``bench/results/<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from scoring.evaluation.distill import distill
from scoring.evaluation.fidelity import (
    fidelity_report,
    relative_l2_error,
    top_k_precision,
    top_k_sign_agreement,
)
from scoring.evaluation.timing import median_ms
from scoring.model.function import ModelFunction
from scoring.scoring_explainers.amortized import AmortizedScoringExplainer
from scoring.scoring_explainers.kernel import KernelScoringExplainer
from scoring.scoring_explainers.linear import LinearScoringExplainer
from scoring.scoring_explainers.permutation import PermutationScoringExplainer
from scoring.scoring_explainers.tree import TreeScoringExplainer
from scoring.shapley.exact import exact_shapley_values
from scoring.shapley.masking import n_players
from scoring.shapley.permutation import stratified_permutation_values

RESULTS = Path(__file__).parent / "results"
SDK_PYTHON = Path(__file__).resolve().parent.parent / ".venv-sdk" / "bin" / "python"


@dataclass
class Case:
    name: str
    description: str
    model: Any  # what the explainers explain (the final estimator with transformations)
    X_train: Any  # rows as the explainers take them (raw with transformations)
    X_test: Any
    model_output: str | None = None
    transformations: Any = None
    predict: Callable | None = None  # the bare model call on X rows (the floor)
    extra: dict = field(default_factory=dict)


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# -- cases ---------------------------------------------------------------------------------
def case_svc() -> Case:
    from sklearn import datasets, svm
    from sklearn.model_selection import train_test_split

    X, y = datasets.load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model = svm.SVC(gamma=0.001, C=100., probability=True, random_state=0).fit(X_train,
                                                                                    y_train)
    return Case("svc", "seed SVC(gamma=0.001, C=100, probability=True), breast cancer, "
                "30 features, predict_proba", model, X_train, X_test,
                extra={"y_train": y_train})


def case_logreg() -> Case:
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(n_samples=1500, n_features=20, n_informative=8, random_state=1)
    model = LogisticRegression(max_iter=1000).fit(X[:1200], y[:1200])
    return Case("logreg", "LogisticRegression, generated, 20 features, decision_function "
                "(log-odds)", model, X[:1200], X[1200:], model_output="decision_function")


def case_forest() -> Case:
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    X, y = make_classification(n_samples=1500, n_features=12, n_informative=6, random_state=2)
    model = RandomForestClassifier(n_estimators=100, max_depth=8, random_state=0).fit(
        X[:1200], y[:1200])
    return Case("forest", "RandomForestClassifier(100 trees, depth 8), generated, 12 features, "
                "predict_proba", model, X[:1200], X[1200:])


def case_onehot() -> Case:
    from sklearn.compose import ColumnTransformer
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(3)
    n = 1500
    frame = pd.DataFrame({f"num{i}": rng.normal(size=n) for i in range(4)})
    for i in range(3):
        frame[f"cat{i}"] = rng.choice(["a", "b", "c", "d"], size=n)
    logit = (frame.num0 - 0.5 * frame.num1 * frame.num2 + (frame.cat0 == "a") * 1.5
             - (frame.cat1 == "b") * 1.0 + 0.5 * frame.num3 * (frame.cat2 == "c"))
    y = (logit + rng.normal(scale=0.5, size=n) > 0).astype(int)
    ct = ColumnTransformer([("num", StandardScaler(), [f"num{i}" for i in range(4)]),
                            ("cat", OneHotEncoder(sparse_output=False),
                             [f"cat{i}" for i in range(3)])]).fit(frame[:1200])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MLPClassifier(hidden_layer_sizes=(32,), max_iter=500, random_state=0).fit(
            ct.transform(frame[:1200]), y[:1200])
    return Case("onehot", "raw-feature pipeline: ColumnTransformer(scaler + one-hot of 3 "
                "categoricals) -> MLPClassifier, 7 raw / 16 engineered features, predict_proba",
                model, frame[:1200].reset_index(drop=True), frame[1200:].reset_index(drop=True),
                transformations=ct,
                predict=lambda rows: model.predict_proba(ct.transform(rows)))


def case_regression() -> Case:
    from sklearn.datasets import load_diabetes
    from sklearn.svm import SVR

    X, y = load_diabetes(return_X_y=True)
    model = SVR(C=100.0).fit(X[:350], y[:350])
    return Case("regression", "SVR(C=100), diabetes, 10 features, predict", model, X[:350],
                X[350:])


def case_digits() -> Case:
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X = X.reshape(-1, 4, 2, 4, 2).mean(axis=(2, 4)).reshape(-1, 16)  # 8x8 -> 4x4 pooled
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MLPClassifier(hidden_layer_sizes=(64,), max_iter=500, random_state=0).fit(
            X[:1400], y[:1400])
    return Case("digits10", "MLPClassifier(64), digits pooled to 4x4, 16 features, 10 classes, "
                "predict_proba", model, X[:1400], X[1400:])


def case_wide() -> Case:
    from sklearn.datasets import make_classification
    from sklearn.neural_network import MLPClassifier

    X, y = make_classification(n_samples=1500, n_features=100, n_informative=12,
                               random_state=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MLPClassifier(hidden_layer_sizes=(64,), max_iter=300, random_state=0).fit(
            X[:1200], y[:1200])
    return Case("wide100", "MLPClassifier(64), generated, 100 features, predict_proba", model,
                X[:1200], X[1200:])


CASES = {"svc": case_svc, "logreg": case_logreg, "forest": case_forest, "onehot": case_onehot,
         "regression": case_regression, "digits10": case_digits, "wide100": case_wide}


# -- measuring -----------------------------------------------------------------------------
def _take(X: Any, n: int) -> Any:
    """``n`` rows of ``X`` (cycled when ``X`` has fewer)."""
    index = np.arange(n) % len(X)
    return X.iloc[index].reset_index(drop=True) if isinstance(X, pd.DataFrame) else X[index]


def _layout(phi: np.ndarray, layout: Any, players: str = "engineered") -> np.ndarray:
    """``(n, players, O)`` -> the library's layout at the raw columns when the case has
    transformations (a binary margin keeps both classes)."""
    return layout.values(phi, get_raw=layout.has_raw, players=players)


def ground_truth(case: Case, f: ModelFunction, engineer: Callable, rows: Any, args: Any,
                 rng: np.random.Generator, groups: np.ndarray | None) -> tuple[np.ndarray, dict]:
    """Interventional Shapley values ``(n, M, O)`` on a uniform sample of training rows:
    exact where cheap, else stratified antithetic permutation sampling, as two independent
    halves whose disagreement estimates the ground truth's own error (``info["noise"]``).

    The sampling budget is ``args.gt_budget`` model rows per explained row, raised (up to
    20x) to what the model evaluates in ``args.gt_seconds``: cheap models get a tighter
    ground truth. With ``groups`` (a case with transformations) the players are the raw
    columns: each one's engineered columns switch together."""
    train = np.asarray(engineer(case.X_train), dtype=float)
    X = np.asarray(engineer(rows), dtype=float)
    n_bg = min(len(train), args.gt_background)
    background = train[np.sort(rng.choice(len(train), n_bg, replace=False))]
    M = n_players(X, groups)
    if 2**M * n_bg <= args.gt_budget * 4:
        return exact_shapley_values(f, X, background, groups=groups), {
            "kind": "exact", "background_rows": n_bg}
    probe = np.resize(background, (20_000, X.shape[1]))
    started = time.perf_counter()
    f(probe)
    rows_per_second = len(probe) / (time.perf_counter() - started)
    budget = min(20 * args.gt_budget,
                 max(args.gt_budget, rows_per_second * args.gt_seconds / len(X)))
    pairs = max(1, int(round(budget / (4 * M * n_bg))))  # per half
    halves = [stratified_permutation_values(f, X, background, pairs, rng, groups)
              for _ in range(2)]
    return (halves[0] + halves[1]) / 2, {
        "kind": "permutation (antithetic, stratified over background)", "background_rows": n_bg,
        "permutations_per_background_row": 4 * pairs, "halves": halves}


class _Anchor:
    """shap's KernelExplainer over shap.kmeans(X_train, 10), default nsamples, as the Azure
    SDK deploys it, explaining one row per call, l1_reg as given."""

    def __init__(self, f: ModelFunction, train: np.ndarray, l1_reg: Any) -> None:
        import shap

        self.f = f
        self.explainer = shap.KernelExplainer(f, shap.kmeans(train, 10))
        self.l1_reg = l1_reg

    def __call__(self, X: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = [np.asarray(self.explainer.shap_values(X[i:i + 1], l1_reg=self.l1_reg,
                                                            silent=True), dtype=float)
                      for i in range(len(X))]
        phi = np.concatenate([v.reshape(1, X.shape[1], -1) for v in values])  # (n, M, O)
        return phi


def run_case(case: Case, args: Any) -> dict:
    rng = np.random.default_rng(0)
    _log(f"case {case.name}: {case.description}")
    common = {"model_output": case.model_output, "random_state": 0}
    fit_kw = {"transformations": case.transformations}
    explainers: dict[str, Any] = {}
    fit_seconds: dict[str, float] = {}

    def fit(name: str, explainer: Any) -> None:
        started = time.perf_counter()
        try:
            explainers[name] = explainer.fit(case.model, case.X_train, **fit_kw)
        except (TypeError, ValueError) as exc:
            _log(f"  {name}: not applicable ({exc})")
            return
        fit_seconds[name] = time.perf_counter() - started
        _log(f"  fitted {name} in {fit_seconds[name]:.1f} s")

    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shipped = distill(case.model, case.X_train, transformations=case.transformations,
                          model_output=case.model_output, verbose=args.verbose)
    fit_seconds["distill"] = time.perf_counter() - started
    explainers["distill"] = shipped
    _log(f"  distill(method='auto') chose {shipped.report_.method} in "
         f"{fit_seconds['distill']:.1f} s")
    fit("kernel", KernelScoringExplainer(**common))
    if shipped.method == "amortized":
        # the same explainer (fitted inside distill, on all but its 10 held-out rows)
        explainers["amortized"] = explainers.pop("distill")
        fit_seconds["amortized"] = shipped.report_.fit_seconds
    else:
        fit("amortized", AmortizedScoringExplainer(**common, verbose=args.verbose))
    if shipped.method != "permutation":
        # at the anchor's own budget: as many model rows per explained row
        sdk = explainers["kernel"]
        walks = len(sdk.background_) * len(sdk.coalitions_) // len(sdk.spec_.engineered_features)
        fit("permutation", PermutationScoringExplainer(
            **common, n_background=int(min(len(case.X_train), max(1, walks // 2)))))
    if case.name == "forest":
        fit("tree", TreeScoringExplainer(**common))
    if case.model_output == "decision_function" or case.name == "regression" and hasattr(
            case.model, "coef_"):
        fit("linear", LinearScoringExplainer(**common))

    base = explainers["kernel"]
    f = base.spec_.function
    class_axis = base.spec_.layout

    def engineer(raw: Any) -> Any:
        return base.spec_.transform(base.spec_.validate(raw))
    rows = _take(case.X_test, args.n_explain)
    started = time.perf_counter()
    groups = base.spec_.raw_map.groups if class_axis.has_raw else None
    truth, truth_info = ground_truth(case, f, engineer, rows, args, rng, groups)
    truth_info["seconds"] = time.perf_counter() - started
    _log(f"  ground truth for {len(rows)} held-out rows in {truth_info['seconds']:.1f} s "
         f"({truth_info['kind']})")
    truth = _layout(truth, class_axis, "raw")
    if "halves" in truth_info:
        # the mean of two independent halves is off by about half their distance
        a, b = (_layout(h, class_axis, "raw") for h in truth_info.pop("halves"))
        truth_info["noise"] = {"relative_l2_error": relative_l2_error(a, b) / 2,
                               "top5_precision_between_halves": top_k_precision(a, b)}
        _log(f"  ground truth noise: {truth_info['noise']}")
    outputs = f(engineer(rows))
    train_eng = np.asarray(engineer(case.X_train), dtype=float)
    rows_eng = np.asarray(engineer(rows), dtype=float)

    with threadpool_limits(limits=args.threads):
        results = _measure(case, args, explainers, fit_seconds, shipped, rows, rows_eng,
                           train_eng, truth, outputs, f, class_axis)
    if case.name == "svc" and args.sdk_python:
        results.update(_azure_sdk(case, args, rows_eng, truth, outputs, results))
    for entry in results.values():
        entry.pop("_values", None)
    _log(f"  measured {len(results)} rows of results")
    return {"name": case.name, "description": case.description,
            "n_train": len(case.X_train), "n_features": int(rows_eng.shape[1]),
            "n_outputs": int(outputs.shape[1]), "n_explained_rows": len(rows),
            "ground_truth": truth_info, "results": results,
            "distill_report": _jsonable({k: v for k, v in shipped.report_.to_dict().items()
                                         if k != "tried"}),
            "distill_tried": _jsonable([t.to_dict() for t in shipped.report_.tried])}


def _measure(case: Case, args: Any, explainers: dict, fit_seconds: dict, shipped: Any,
             rows: Any, rows_eng: np.ndarray, train_eng: np.ndarray, truth: np.ndarray,
             outputs: np.ndarray, f: ModelFunction, class_axis: Any) -> dict:
    """Latency of the floor, the anchor and each explainer; fidelity against ``truth``."""
    predict = case.predict or (lambda r: f(r))
    results: dict[str, dict] = {}
    # the floor: the bare explained model call on the rows as served
    results["model predict"] = {"row_ms": median_ms(lambda: predict(_take(rows, 1)), 50),
                                "batch100_ms": median_ms(lambda: predict(_take(rows, 100)), 9),
                                "batch1000_ms": median_ms(lambda: predict(_take(rows, 1000)),
                                                           5)}
    # the anchor: shap KernelExplainer, kmeans-10, l1_reg "auto" (what the SDK runs)
    anchor = _Anchor(f, train_eng, "auto")
    # shap samples its coalitions from numpy's global generator: a few seeds show how much
    # the anchor's own fidelity moves; the table reports the mean
    runs, first = [], None
    for seed in range(args.anchor_seeds):
        np.random.seed(seed)
        values = _layout(anchor(rows_eng), class_axis)
        first = values if first is None else first
        runs.append(fidelity_report(values, truth, _anchor_ev(anchor, class_axis), outputs))
    one_ms = median_ms(lambda: anchor(rows_eng[:1]), 2)
    n_small = min(args.anchor_batch, len(rows_eng))
    small_ms = median_ms(lambda: anchor(rows_eng[:n_small]), 1)
    per_row = small_ms / n_small
    results["anchor (shap kernel)"] = {
        "row_ms": one_ms, "batch100_ms": per_row * 100, "batch1000_ms": per_row * 1000,
        "extrapolated": f"batches from a measured batch of {n_small} rows (one row per call: "
                        "linear in rows)",
        "fidelity": {k: float(np.mean([r[k] for r in runs])) for k in runs[0]},
        "fidelity_by_seed": runs, "_values": first,
        "params": {"l1_reg": "auto", "background": "shap.kmeans(X_train, 10)",
                   "nsamples": "auto (2M+2048)"}}
    for name, explainer in explainers.items():
        values = explainer.explain(rows)
        entry = {"fidelity": fidelity_report(values, truth, explainer.expected_values, outputs),
                 "_values": values,
                 "fit_seconds": fit_seconds.get(name),
                 "method": explainer.method, "params": _jsonable(explainer.get_params())}
        one = _take(rows, 1)
        entry["row_ms"] = median_ms(lambda e=explainer, o=one: e.explain(o), args.repeats)
        spec = explainer.spec_
        one_x = spec.transform(spec.validate(one))
        one_out = spec.outputs(one_x)
        entry["row_given_outputs_ms"] = median_ms(
            lambda e=explainer, v=one_x, o=one_out: e.shap_values(v, o), args.repeats)
        if explainer.method in ("kernel", "permutation"):
            small = _take(rows, 5)
            per_row = median_ms(lambda e=explainer, s=small: e.explain(s), 1) / 5
            entry.update(batch100_ms=per_row * 100, batch1000_ms=per_row * 1000,
                         extrapolated="batches from a measured batch of 5 rows")
        else:
            for size in (100, 1000):
                batch = _take(rows, size)
                entry[f"batch{size}_ms"] = median_ms(lambda e=explainer, b=batch: e.explain(b),
                                                      max(3, args.repeats // 10))
        if name == "distill":
            name = f"distill default ({explainer.method})"
        elif explainer is shipped:
            name = f"{name} (= distill default)"
        results[name] = entry
    return results


def _azure_sdk(case: Case, args: Any, rows: np.ndarray, truth: np.ndarray,
               outputs: np.ndarray, results: dict) -> dict:
    """The Azure SDK's own ``KernelScoringExplainer`` (azureml-interpret, in its own
    environment: ``bench/sdk_reference.py``) on the first ``args.sdk_rows`` rows, with the
    fidelity of every explainer on those same rows for a like-for-like comparison."""
    k = min(args.sdk_rows, len(rows))
    _log(f"  the Azure SDK's KernelScoringExplainer on {k} rows ({args.sdk_python})")
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp, "in.npz"), Path(tmp, "out.npz")
        np.savez(source, X_train=case.X_train, y_train=case.extra["y_train"], rows=rows[:k])
        done = subprocess.run([args.sdk_python, str(Path(__file__).with_name(
            "sdk_reference.py")), str(source), str(target)], check=False)
        if done.returncode != 0:
            _log(f"  the Azure SDK run failed (exit {done.returncode}); left out")
            return {}
        sdk = dict(np.load(target))
    model_gap = float(np.abs(sdk["outputs"] - outputs[:k]).max())
    per_row = float(np.median(sdk["row_ms"]))
    same_rows = {name: _fidelity(r["_values"][:, :k], truth[:, :k])
                 for name, r in results.items() if "_values" in r}
    return {"azure SDK KernelScoringExplainer": {
        "row_ms": per_row, "batch100_ms": 100 * per_row, "batch1000_ms": 1000 * per_row,
        "extrapolated": "batches from one row per call (the SDK explains row by row)",
        "fit_seconds": float(sdk["fit_seconds"]),
        "versions": [str(v) for v in sdk["versions"]],
        "model_output_gap": model_gap,
        "fidelity_rows": k,
        # the SDK returns no expected value with its local values: no additivity gap
        "fidelity": _fidelity(sdk["values"], truth[:, :k]),
        "others_on_the_same_rows": same_rows,
        "params": {"background": "every training row (TabularExplainer's "
                   "initialization examples, as the seed deploys it)"}}}


def _fidelity(values: np.ndarray, truth: np.ndarray) -> dict:
    return {"relative_l2_error": relative_l2_error(values, truth),
            "top5_precision": top_k_precision(values, truth),
            "top5_sign_agreement": top_k_sign_agreement(values, truth)}


def _anchor_ev(anchor: _Anchor, class_axis: Any) -> Any:
    ev = np.asarray(anchor.explainer.expected_value, dtype=float).reshape(-1)
    return class_axis.expected(ev)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda o: o.tolist() if hasattr(
        o, "tolist") else str(o)))


# -- reporting -----------------------------------------------------------------------------
def write_result(kind: str, result: dict) -> Path:
    """``result`` as ``bench/results/<kind>-<UTC>.json`` (what bench.report reads), with
    the load average at the end (``load_average_end``) unless the run recorded it."""
    result.setdefault("load_average_end", list(os.getloadavg()))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{kind}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(result, indent=1, default=str))
    return path


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import shap
    import sklearn

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "scikit-learn": sklearn.__version__,
            "shap": shap.__version__, "platform": platform.platform()}


def print_table(case: dict) -> None:
    results = case["results"]
    floor = results["model predict"]
    anchor = results["anchor (shap kernel)"]
    print(f"\n== {case['name']}: {case['description']}")
    print(f"   {case['n_train']} training rows, {case['n_features']} features, "
          f"{case['n_outputs']} outputs; fidelity on {case['n_explained_rows']} held-out rows "
          f"vs ground truth: {case['ground_truth']}")
    head = (f"{'explainer':34s} {'ms/row':>9s} {'ms/row*':>9s} {'ms/100':>9s} {'ms/1000':>10s}"
            f" {'x anchor(1)':>11s} {'x anchor(1k)':>12s} {'ovh/pred':>8s} {'relL2':>6s}"
            f" {'top5':>5s} {'sign5':>5s} {'add.gap':>8s}")
    print(head)
    for name, r in results.items():
        fid = r.get("fidelity", {})
        given = r.get("row_given_outputs_ms", r["row_ms"])
        print(f"{name:34s} {r['row_ms']:9.3f} {given:9.3f} {r['batch100_ms']:9.2f} "
              f"{r['batch1000_ms']:10.1f} {anchor['row_ms'] / r['row_ms']:11.0f} "
              f"{anchor['batch1000_ms'] / r['batch1000_ms']:12.0f} "
              f"{given / floor['row_ms']:8.2f} "
              + (f"{fid['relative_l2_error']:6.3f} {fid['top5_precision']:5.2f} "
                 f"{fid['top5_sign_agreement']:5.2f} "
                 + (f"{fid['additivity_gap']:8.1e}" if "additivity_gap" in fid else f"{'':8s}")
                 if fid else f"{'':6s} {'':5s} {'':5s} {'':8s}"))
    print("   ms/row* = shap_values(X, outputs) (the service passes the predictions it "
          "made); ovh/pred = ms/row* / bare predict ms/row; anchor, kernel and permutation "
          "batches are extrapolated from measured small batches (linear in rows)")
    sdk = results.get("azure SDK KernelScoringExplainer")
    if sdk:
        print(f"   azure SDK ({', '.join(sdk['versions'])}; the model refitted there differs "
              f"by {sdk['model_output_gap']:.1e} in probability): fidelity on its "
              f"{sdk['fidelity_rows']} rows; the others on the same rows:")
        for name, fid in sdk["others_on_the_same_rows"].items():
            print(f"     {name:32s} relL2 {fid['relative_l2_error']:.3f} top5 "
                  f"{fid['top5_precision']:.2f} sign5 {fid['top5_sign_agreement']:.2f}")
    by_seed = anchor.get("fidelity_by_seed", [])
    if len(by_seed) > 1:
        print(f"   anchor fidelity is the mean over {len(by_seed)} seeds: relL2 "
              + ", ".join(f"{r['relative_l2_error']:.3f}" for r in by_seed) + "; top5 "
              + ", ".join(f"{r['top5_precision']:.2f}" for r in by_seed))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="the svc case only, fewer rows and a smaller ground-truth "
                        "budget (about 3 minutes)")
    parser.add_argument("--cases", default=None,
                        help=f"comma-separated subset of {','.join(CASES)}")
    parser.add_argument("--n-explain", type=int, default=None,
                        help="held-out rows for fidelity (default 40, quick 8)")
    parser.add_argument("--verbose", action="store_true", help="progress of distill/amortized")
    parser.add_argument("--sdk-python", default=str(SDK_PYTHON) if SDK_PYTHON.exists() else None,
                        help="python of an environment with azureml-interpret (make sdk-venv) "
                        "to run the Azure SDK's own KernelScoringExplainer on the svc case "
                        f"(default {SDK_PYTHON} if it exists)")
    parser.add_argument("--sdk-rows", type=int, default=None,
                        help="rows the Azure SDK explains (about 15 s each; default 10, "
                        "quick 3)")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS threads while timing (default 1, as one service worker "
                        "per core; the machine is shared)")
    args = parser.parse_args(argv)
    quick = args.quick
    names = args.cases.split(",") if args.cases else (["svc"] if quick
                                                       else list(CASES))
    unknown = [n for n in names if n not in CASES]
    if unknown:
        parser.error(f"unknown cases {unknown}; choose from {list(CASES)}")
    args.n_explain = args.n_explain or (8 if quick else 40)
    args.sdk_rows = args.sdk_rows or (3 if quick else 10)
    args.gt_background = 200 if quick else 2000  # every training row of every case
    args.gt_budget = 30_000 if quick else 100_000  # model rows per explained row (at least)
    args.gt_seconds = 15 if quick else 60  # ... raised to what the model runs in this time
    args.anchor_batch = 3 if quick else 5
    args.anchor_seeds = 1 if quick else 3
    args.repeats = 30 if quick else 100
    info = {"machine": machine(), "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "argv": sys.argv[1:], "quick": quick, "n_explain": args.n_explain,
            "ground_truth_background": args.gt_background,
            "ground_truth_budget_model_rows_per_row": args.gt_budget,
            "ground_truth_seconds_target": args.gt_seconds,
            "blas_threads_while_timing": args.threads}
    print(f"machine: {info['machine']}")
    print(f"inputs: cases {names}; {args.n_explain} held-out rows per case for fidelity; ground "
          f"truth on up to {args.gt_background} uniform training rows; medians of repeated "
          f"calls; {args.threads} BLAS thread(s) while timing")
    started = time.perf_counter()
    cases = []
    for name in names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            case = run_case(CASES[name](), args)
        print_table(case)
        cases.append(case)
    info["seconds"] = time.perf_counter() - started
    info["cases"] = cases
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(info, indent=1, default=str))
    print(f"\nwrote {path} ({info['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
