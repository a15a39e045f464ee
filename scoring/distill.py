"""Build a scoring explainer offline and report its fidelity and latency."""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np
import pandas as pd

from scoring.exact import MAX_EXACT_FEATURES
from scoring.explanation import Explanation
from scoring.fidelity import fidelity_report
from scoring.kernel_scoring import KernelScoringExplainer
from scoring.linear_scoring import LinearScoringExplainer
from scoring.model_output import check_model
from scoring.scoring_explainer import ScoringExplainer
from scoring.tree_scoring import TreeScoringExplainer

METHODS = ("auto", "kernel", "tree", "linear")


def _progress(verbose: bool, message: str) -> None:
    if verbose:
        print(f"[distill] {message}", file=sys.stderr, flush=True)


def is_tree_model(model: Any) -> bool:
    """Tree ensembles and trees that shap's TreeExplainer supports."""
    name = type(model).__name__
    return hasattr(model, "tree_") or hasattr(model, "estimators_") and any(
        key in name for key in ("Forest", "Trees", "GradientBoosting")) or name.startswith(
        ("HistGradientBoosting", "LGBM", "XGB"))


def candidate(method: str, random_state: int | None = 0, **params: Any) -> ScoringExplainer:
    """An unfitted scoring explainer for a method name."""
    classes = {"kernel": KernelScoringExplainer, "tree": TreeScoringExplainer,
               "linear": LinearScoringExplainer}
    if method not in classes:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(classes)}")
    return classes[method](random_state=random_state, **params)


def distill(model: Any, X_train: Any, *, method: str = "auto", features: Any = None,
            classes: Any = None, transformations: Any = None, n_held_out: int = 10,
            reference_background: int = 100, reference_nsamples: int = 4096,
            random_state: int | None = 0, verbose: bool = True,
            **params: Any) -> ScoringExplainer:
    """Fit a scoring explainer for ``model`` on training rows ``X_train`` and attach its
    report (``.report``): method and parameters, fidelity on ``n_held_out`` held-out rows
    against a reference (exact Shapley values on ``reference_background`` training rows
    when ``M <= 16``, else Kernel SHAP with ``reference_nsamples`` coalitions on them), and
    latency per row and per batch of 100.

    ``method="auto"`` picks TreeSHAP for tree models and Kernel SHAP otherwise.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    check_model(model)
    train, held_out = _split(X_train, n_held_out, random_state)
    chosen = ("tree" if is_tree_model(model) else "kernel") if method == "auto" else method
    _progress(verbose, f"fitting {chosen} scoring explainer on {len(train)} rows")
    started = time.perf_counter()
    explainer = candidate(chosen, random_state, **params).fit(
        model, train, features=features, classes=classes, transformations=transformations)
    fit_seconds = time.perf_counter() - started
    report = {"method": chosen, "class": type(explainer).__name__,
              "params": explainer.get_params(), "fit_seconds": fit_seconds,
              "n_train_rows": len(train), "n_held_out_rows": len(held_out)}
    report["fidelity"] = measure_fidelity(explainer, train, held_out,
                                          reference_background, reference_nsamples,
                                          random_state, verbose)
    report["latency"] = measure_latency(explainer, held_out)
    _progress(verbose, f"done: {summarise(report)}")
    explainer.report = report
    return explainer


def _split(X: Any, n_held_out: int, random_state: int | None) -> tuple[Any, Any]:
    n = len(X)
    if n < 4:
        raise ValueError(f"X_train has {n} rows; distill needs at least 4")
    n_held_out = int(min(max(1, n_held_out), n // 4))
    order = np.random.default_rng(random_state).permutation(n)
    pick = (lambda idx: X.iloc[np.sort(idx)].reset_index(drop=True)) if isinstance(
        X, pd.DataFrame) else (lambda idx: np.asarray(X)[np.sort(idx)])
    return pick(order[n_held_out:]), pick(order[:n_held_out])


def reference_values(explainer: ScoringExplainer, train: Any, rows: Any,
                     n_background: int = 100, nsamples: int = 4096,
                     random_state: int | None = 0) -> tuple[np.ndarray, dict]:
    """Ground truth for ``rows``: interventional Shapley values on a uniform sample of
    ``n_background`` training rows, exact by enumeration when the explained feature count
    allows, otherwise Kernel SHAP with ``nsamples`` paired coalitions. Same output and
    layout as ``explainer``."""
    n_features = len(explainer.features_)
    exact = n_features <= MAX_EXACT_FEATURES
    reference = KernelScoringExplainer(
        n_background=n_background, nsamples=2**n_features if exact else nsamples,
        background="sample", model_output=explainer.model_function_.output,
        random_state=random_state)
    # a uniform sample, not kmeans: summarising the background must count as error
    reference.fit(explainer.model, train, transformations=_transformations(explainer),
                  features=explainer.input_schema_.columns
                  if explainer.raw_feature_map_ is None else None,
                  classes=explainer.classes_)
    values = reference.explain(rows)
    return values, {"kind": "exact" if exact else "kernel", "background_rows":
                    len(reference.background_), "n_coalitions": len(reference.coalitions_)}


def _transformations(explainer: ScoringExplainer) -> Any:
    feature_map = explainer.raw_feature_map_
    if feature_map is None:
        return None
    return feature_map._column_transformer or feature_map._steps


def measure_fidelity(explainer: ScoringExplainer, train: Any, held_out: Any,
                     n_background: int, nsamples: int, random_state: int | None,
                     verbose: bool = False) -> dict:
    """Fidelity metrics of ``explainer`` on ``held_out`` rows against the reference."""
    _progress(verbose, f"computing reference Shapley values for {len(held_out)} held-out rows")
    reference, info = reference_values(explainer, train, held_out, n_background, nsamples,
                                       random_state)
    rows = explainer.validate(held_out)
    values = explainer.explain_rows(rows)
    outputs = explainer.model_outputs(rows)
    return {**fidelity_report(values, reference, explainer.expected_values, outputs),
            "reference": info}


def measure_latency(explainer: ScoringExplainer, rows: Any, repeats: int = 7) -> dict:
    """Median seconds to explain one row, and a batch of 100 rows (rows repeated)."""
    one = rows.iloc[:1] if isinstance(rows, pd.DataFrame) else np.asarray(rows)[:1]
    batch = pd.concat([rows] * (100 // len(rows) + 1)).iloc[:100] if isinstance(
        rows, pd.DataFrame) else np.resize(np.asarray(rows), (100, np.asarray(rows).shape[1]))

    def median_seconds(data: Any, n: int) -> float:
        times = []
        for _ in range(n):
            started = time.perf_counter()
            explainer.explain(data)
            times.append(time.perf_counter() - started)
        return float(np.median(times))

    return {"row_ms": 1e3 * median_seconds(one, repeats),
            "batch100_ms": 1e3 * median_seconds(batch, max(1, repeats // 3))}


def global_explanation(explainer: ScoringExplainer, X: Any, max_rows: int = 50,
                       random_state: int | None = 0) -> Explanation:
    """Global importances (mean |value|) over a sample of rows, local values dropped."""
    if len(X) > max_rows:
        index = np.sort(np.random.default_rng(random_state).choice(len(X), max_rows,
                                                                    replace=False))
        X = X.iloc[index] if isinstance(X, pd.DataFrame) else np.asarray(X)[index]
    local = explainer.explain_local(X, get_raw=explainer.raw_feature_map_ is not None)
    return Explanation(local.features, global_importance_values=local.global_importance_values,
                       expected_values=local.expected_values, classes=local.classes,
                       method=local.method, model_output=local.model_output, raw=local.raw,
                       extra={"n_rows": local.num_examples})


def summarise(report: dict) -> str:
    """One line: method, fidelity and latency."""
    nan = float("nan")
    fid, lat = report.get("fidelity", {}), report.get("latency", {})
    return (f"{report.get('method')}: rel. L2 error {fid.get('relative_l2_error', nan):.3f}, "
            f"top-5 precision {fid.get('top5_precision', nan):.2f}, additivity gap "
            f"{fid.get('additivity_gap', nan):.1e}, {lat.get('row_ms', nan):.2f} ms/row, "
            f"{lat.get('batch100_ms', nan):.1f} ms/100 rows")
