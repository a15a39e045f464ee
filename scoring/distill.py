"""Build a scoring explainer offline and report its fidelity and latency."""

from __future__ import annotations

import inspect
import math
import sys
import time
from typing import Any

import numpy as np
import pandas as pd

from scoring.amortized_scoring import AmortizedScoringExplainer
from scoring.background import sample_background
from scoring.exact import MAX_EXACT_FEATURES, exact_shapley_values
from scoring.explanation import Explanation
from scoring.fidelity import fidelity_report
from scoring.kernel_scoring import KernelScoringExplainer
from scoring.linear_scoring import LinearScoringExplainer
from scoring.model_output import check_model, default_output
from scoring.permutation_scoring import PermutationScoringExplainer
from scoring.permutation_shap import stratified_permutation_values, take_rows
from scoring.scoring_explainer import ScoringExplainer
from scoring.tree_scoring import TreeScoringExplainer, is_tree_model

METHODS = ("auto", "linear", "tree", "amortized", "permutation", "kernel")
# the order distill(method="auto") tries candidates in: expected latency, fastest first
_AUTO_ORDER = ("linear", "tree", "amortized", "permutation", "kernel")
_METRICS = {"relative_l2_error": "max", "top5_precision": "min",
            "top5_sign_agreement": "min", "additivity_gap": "max"}


# the permutation step is a ladder: budgets (model rows per explained row) of these
# multiples of the SDK kernel's own (kmeans-10 rows x coalitions), smallest first. At equal
# budget it is several times more faithful than the SDK (bench wide100: relative L2 error
# 0.145 vs 0.229), and the faithfulness grows with the budget
_PERMUTATION_BUDGETS = (1, 2, 4)
# ... each rung accepted, against the default bar, only when faster than the SDK itself
# (shap's KernelExplainer, timed on held-out rows) and when its top-5 precision beats the
# SDK configuration's by this margin (3 of the 150 top-5 slots of 30 held-out rows): a
# rung replaces that configuration, which is the bar itself, so a tie within the noise of
# 30 rows is not enough (bench wide100: the smallest rung measured 0.90 here in one run,
# 0.89 against the anchor's 0.93 on 40 other rows)
_RUNG_TOP5_MARGIN = 0.02
# methods cheap enough to refit on every training row once chosen (fidelity and latency
# were measured before, with the held-out rows out)
_REFIT_METHODS = ("kernel", "tree", "linear", "permutation")


class DistillError(ValueError):
    """No candidate scoring explainer met the requested fidelity and latency."""

    def __init__(self, message: str, tried: list[dict]) -> None:
        super().__init__(message)
        self.tried = tried


def _progress(verbose: bool, message: str) -> None:
    if verbose:
        print(f"[distill] {message}", file=sys.stderr, flush=True)


def _classes() -> dict[str, type]:
    return {"kernel": KernelScoringExplainer, "tree": TreeScoringExplainer,
            "linear": LinearScoringExplainer, "amortized": AmortizedScoringExplainer,
            "permutation": PermutationScoringExplainer}


def candidate(method: str, random_state: int | None = 0, **params: Any) -> ScoringExplainer:
    """An unfitted scoring explainer for a method name."""
    classes = _classes()
    if method not in classes:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(classes)}")
    return classes[method](random_state=random_state, **params)


def _accepted(method: str, params: dict) -> dict:
    names = inspect.signature(_classes()[method].__init__).parameters
    return {k: v for k, v in params.items() if k in names}


def _applicable(method: str, model: Any, model_output: str | None) -> bool:
    if method == "tree":
        return is_tree_model(model) and model_output != "decision_function"
    if method == "linear":
        # Shapley values are closed-form only where the explained output is linear
        output = model_output or default_output(model)
        return hasattr(model, "coef_") and output in ("decision_function", "predict") and (
            output == "decision_function" or not hasattr(model, "classes_"))
    return True


def _thresholds(min_fidelity: Any) -> dict | None:
    """``min_fidelity`` as ``{metric: bound}``: a float is ``1 - relative L2 error``."""
    if min_fidelity is None:
        return None
    if isinstance(min_fidelity, (int, float)) and not isinstance(min_fidelity, bool):
        if not 0 <= min_fidelity <= 1:
            raise ValueError(f"min_fidelity as a number is 1 - relative L2 error, in [0, 1]; "
                             f"got {min_fidelity}")
        return {"relative_l2_error": 1.0 - float(min_fidelity)}
    if isinstance(min_fidelity, dict):
        unknown = sorted(set(min_fidelity) - set(_METRICS))
        if unknown:
            raise ValueError(f"min_fidelity has unknown metrics {unknown}; use "
                             f"{sorted(_METRICS)}")
        return {k: float(v) for k, v in min_fidelity.items()}
    raise TypeError(f"min_fidelity must be a number (1 - relative L2 error), a dict of "
                    f"metric bounds or None, got {type(min_fidelity).__name__}")


def _shortfalls(fidelity: dict, latency: dict, bounds: dict | None,
                max_latency_ms: float | None) -> list[str]:
    missed = []
    for metric, bound in (bounds or {}).items():
        value = fidelity[metric]
        if (value > bound + 1e-12) if _METRICS[metric] == "max" else (value < bound - 1e-12):
            sign = "<=" if _METRICS[metric] == "max" else ">="
            missed.append(f"{metric} {value:.3g} (needs {sign} {bound:.3g})")
    if max_latency_ms is not None and latency["row_ms"] > max_latency_ms:
        missed.append(f"{latency['row_ms']:.3g} ms/row (needs <= {max_latency_ms:g})")
    return missed


def distill(model: Any, X_train: Any, *, method: str = "auto", features: Any = None,
            classes: Any = None, transformations: Any = None, n_held_out: int = 30,
            reference_background: int = 1000, reference_nsamples: int = 64,
            reference_seconds: float = 20.0,
            max_latency_ms: float | None = None, min_fidelity: Any = None,
            random_state: int | None = 0, verbose: bool = True,
            **params: Any) -> ScoringExplainer:
    """Fit a scoring explainer for ``model`` on training rows ``X_train`` and attach its
    report (``.report``): method and parameters, fidelity on ``n_held_out`` held-out rows
    against a reference (see :func:`reference_values`; ``reference_background`` training
    rows as background, at least ``reference_nsamples`` model rows per background row and
    explained row, more as fit in ``reference_seconds``), and latency per row and per batch
    of 100.

    ``method="auto"`` tries, fastest first, linear (where the explained output is linear),
    tree (tree models), amortized, permutation, kernel, and keeps the first that meets
    ``min_fidelity`` and ``max_latency_ms`` (milliseconds to explain one row).
    ``min_fidelity``: a number (``1 -`` relative L2 error), a dict of bounds on
    ``relative_l2_error``/``additivity_gap`` (max) and ``top5_precision``/
    ``top5_sign_agreement`` (min), or ``None``: for ``"auto"``, at least as faithful as
    the Azure SDK's configuration (Kernel SHAP, kmeans-10 background, ``2M+2048``
    coalitions) on the same rows: relative L2 error no larger, top-5 precision no
    lower; linear and tree, exact methods, pass that bar as they are. Against that
    bar the permutation step is a ladder of budgets of 1, 2 and 4 times the SDK's model
    rows per explained row, each also faster per row than shap's ``KernelExplainer`` (the
    SDK's, timed here on held-out rows) and with a top-5 precision at least 0.02 above
    the bar (a rung replaces the bar's own configuration: a tie within the noise of the
    held-out rows is not enough); the SDK configuration itself is the
    last candidate, so the default never ships anything less faithful than it on the
    held-out rows. Raises :class:`DistillError` listing what each candidate achieved when
    none qualifies. ``params`` go to the candidates that take them (``n_background``,
    ``nsamples``...). A chosen kernel, tree, linear or permutation explainer is refitted on
    all of ``X_train`` (its report, ``refit_on_all_rows``, was measured before); the
    amortized one is not (its fit is the expensive part).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    check_model(model)
    bounds = _thresholds(min_fidelity)
    if max_latency_ms is not None and not max_latency_ms > 0:
        raise ValueError(f"max_latency_ms must be positive, got {max_latency_ms!r}")
    model_output = params.get("model_output")
    if method == "auto":
        methods = [m for m in _AUTO_ORDER if _applicable(m, model, model_output)]
        unused = set(params) - {k for m in methods for k in _accepted(m, params)}
        if unused:
            raise TypeError(f"distill got parameters no candidate takes: {sorted(unused)}")
    else:
        methods = [method]
    train, held_out = _split(X_train, n_held_out, random_state)
    fit_kwargs = {"features": features, "classes": classes, "transformations": transformations}
    state: dict = {"train": train, "held_out": held_out}

    def reference(explainer: ScoringExplainer) -> tuple[np.ndarray, dict]:
        if "reference" not in state:
            _progress(verbose, f"computing reference Shapley values for {len(held_out)} "
                      "held-out rows")
            state["reference"] = reference_values(
                explainer, train, held_out, reference_background, reference_nsamples,
                reference_seconds, random_state)
        return state["reference"]

    tried: list[dict] = []
    if bounds is None and method == "auto":
        _progress(verbose, "measuring the Azure SDK configuration (kernel, kmeans-10 "
                  "background) as the fidelity bar")
        baseline = _try("kernel", {k: v for k, v in params.items() if k == "model_output"},
                        model, fit_kwargs, state, reference, random_state, verbose)
        _progress(verbose, f"fidelity bar: {summarise(baseline)}")
        bounds = {k: baseline["fidelity"][k] for k in ("relative_l2_error", "top5_precision")}
        state["default_bar"] = True
        state["baseline"] = baseline
    for name, overrides in _candidates(methods, params, state):
        if name == "kernel" and overrides is None:
            result = state["baseline"]  # the same explainer: reuse it
            used = {k: v for k, v in params.items() if k == "model_output"}
        else:
            try:
                chosen = _accepted(name, params) if method == "auto" else params
                used = {**chosen, **(overrides or {})}
                result = _try(name, used, model, fit_kwargs, state, reference, random_state,
                              verbose)
            except (TypeError, ValueError) as exc:
                if method != "auto":
                    raise
                tried.append({"method": name, "error": f"{type(exc).__name__}: {exc}"})
                _progress(verbose, f"{name}: cannot be used: {exc}")
                continue
        # linear and tree values are exact Shapley values on their own background: against
        # the default bar they only differ from the reference by its background sample
        exact = name in ("linear", "tree") and state.get("default_bar", False)
        missed = _shortfalls(result["fidelity"], result["latency"],
                             None if exact else bounds, max_latency_ms)
        if name == "permutation" and overrides and "baseline" in state:
            # a rung of the ladder: it must also be faster than the SDK, and clearly as good
            needed = min(1.0, bounds["top5_precision"] + _RUNG_TOP5_MARGIN)
            if not missed and result["fidelity"]["top5_precision"] < needed - 1e-12:
                missed.append(f"top5_precision {result['fidelity']['top5_precision']:.3g} "
                              f"(a rung needs >= {needed:.3g}: the bar + "
                              f"{_RUNG_TOP5_MARGIN:g})")
            if "sdk_row_ms" not in state:
                state["sdk_row_ms"] = _sdk_row_ms(state["baseline"]["explainer"],
                                                  state["held_out"])
                _progress(verbose, f"shap KernelExplainer (the SDK's) takes "
                          f"{state['sdk_row_ms']:.3g} ms/row here")
            if result["latency"]["row_ms"] >= state["sdk_row_ms"]:
                missed.append(f"{result['latency']['row_ms']:.3g} ms/row (needs < the SDK's "
                              f"{state['sdk_row_ms']:.3g} ms/row)")
        tried.append({"method": name, "fidelity": result["fidelity"],
                      "latency": result["latency"], "missed": missed,
                      **({"params": overrides} if overrides else {})})
        label = name + (f" ({', '.join(f'{k}={v}' for k, v in overrides.items())})"
                        if overrides else "")
        _progress(verbose, f"{label}: " + _fidelity_line(result["fidelity"], result["latency"])
                  + (f" -> rejected: {'; '.join(missed)}" if missed else " -> accepted"))
        if not missed:
            explainer = result.pop("explainer")
            if name in _REFIT_METHODS:
                # the held-out rows only measured the candidate: a cheap fit gets them back,
                # so its background summary is the SDK's own (same kmeans on the same rows)
                _progress(verbose, f"refitting {name} on all {len(X_train)} rows")
                explainer = candidate(name, random_state, **used).fit(model, X_train,
                                                                      **fit_kwargs)
                result["refit_on_all_rows"] = True
            report = {**result, "tried": tried, "criteria": {
                "min_fidelity": bounds, "max_latency_ms": max_latency_ms,
                "fidelity_bar": "azure-sdk-kernel" if min_fidelity is None and method == "auto"
                else "requested"}}
            _progress(verbose, f"done: {summarise(report)}")
            explainer.report = report
            return explainer
    lines = [f"  {t['method']}" + "".join(f" ({k}={v})" for k, v in t.get("params", {}).items())
             + ": " + (t["error"] if "error" in t else
                                     f"{_fidelity_line(t['fidelity'], t['latency'])}; missed "
                                     + "; ".join(t["missed"])) for t in tried]
    raise DistillError("no scoring explainer met the requested fidelity/latency on "
                       f"{len(held_out)} held-out rows (min_fidelity={bounds}, max_latency_ms="
                       f"{max_latency_ms}); tried:\n" + "\n".join(lines), tried)


def _candidates(methods: list[str], params: dict,
                state: dict) -> list[tuple[str, dict | None]]:
    """``(method, parameter overrides)`` in the order distill tries them. Against the
    default bar, unless the caller set their parameters, the permutation step is a ladder
    of budgets (``_PERMUTATION_BUDGETS`` times the SDK kernel's model rows per explained
    row, smallest first), and the kernel step is the SDK configuration itself (``None``:
    the measured baseline, reused)."""
    out: list[tuple[str, dict | None]] = []
    own = {name: _accepted(name, params).keys() - {"model_output"} for name in methods}
    for name in methods:
        if name == "permutation" and "baseline" in state and not own[name]:
            baseline = state["baseline"]["explainer"]
            unit = len(baseline.background_) * len(baseline.coalitions_)
            M, n_rows = len(baseline.features_), len(state["train"])
            for factor in _PERMUTATION_BUDGETS:
                budget = factor * unit
                # one antithetic pair per background row while the training rows last
                walks = 2 * max(1, math.ceil(budget / (2 * M * n_rows)))
                out.append(("permutation", {
                    "n_background": min(n_rows, math.ceil(budget / (walks * M))),
                    "n_permutations": walks}))
        elif name == "kernel" and "baseline" in state and not own[name]:
            out.append(("kernel", None))
        else:
            out.append((name, {}))
    return out


def _sdk_row_ms(baseline: KernelScoringExplainer, held_out: Any, calls: int = 2) -> float:
    """Milliseconds per row of shap's ``KernelExplainer`` (the Azure SDK's explainer) on the
    baseline's kmeans-10 background, default budget and ``l1_reg="auto"``, one held-out row
    per call (best of ``calls``)."""
    import warnings

    import shap

    X = np.asarray(baseline._engineer(baseline.validate(held_out)), dtype=float)
    # the same rows unweighted: the weights do not change the work, only the values
    sdk = shap.KernelExplainer(baseline.model_function_, np.asarray(baseline.background_))
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(min(calls, len(X))):
            started = time.perf_counter()
            sdk.shap_values(X[i:i + 1], l1_reg="auto", silent=True)
            times.append(time.perf_counter() - started)
    return 1e3 * min(times)


def _try(name: str, params: dict, model: Any, fit_kwargs: dict, state: dict,
         reference: Any, random_state: int | None, verbose: bool) -> dict:
    """Fit one candidate and measure it: ``{method, class, params, fit_seconds, ...}``."""
    _progress(verbose, f"fitting {name} scoring explainer on {len(state['train'])} rows")
    started = time.perf_counter()
    unfitted = candidate(name, random_state, **params)
    if name == "amortized":
        unfitted.verbose = verbose
    explainer = unfitted.fit(model, state["train"], **fit_kwargs)
    fit_seconds = time.perf_counter() - started
    ref_values, info = reference(explainer)
    rows = explainer.validate(state["held_out"])
    outputs = explainer.model_outputs(rows)
    fidelity = {**fidelity_report(explainer.explain_rows(rows), ref_values,
                                  explainer.expected_values, outputs), "reference": info}
    return {"method": name, "class": type(explainer).__name__,
            "params": explainer.get_params(), "fit_seconds": fit_seconds,
            "n_train_rows": len(state["train"]), "n_held_out_rows": len(state["held_out"]),
            "fidelity": fidelity, "latency": measure_latency(explainer, state["held_out"]),
            "explainer": explainer}


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
                     n_background: int = 1000, nsamples: int = 64, seconds: float = 20.0,
                     random_state: int | None = 0) -> tuple[np.ndarray, dict]:
    """Ground truth for ``rows``: interventional Shapley values with up to ``n_background``
    training rows (a uniform sample) as background. Exact by enumeration when the model
    evaluates every coalition in about ``seconds`` (or ``2**M <= 4 * nsamples``);
    otherwise antithetic permutation sampling stratified over the background rows, with
    as many walks as fit in ``seconds`` but at least ``nsamples`` model rows (one
    antithetic pair) per background row and explained row. Same output and layout as
    ``explainer``."""
    rng = np.random.default_rng(random_state)
    background, _ = sample_background(explainer._engineer(train), n_background, rng)
    X = explainer._engineer(explainer.validate(rows))
    f = explainer.model_function_
    M = X.shape[1]
    # time one walk per probe background row (model calls and the numpy around them: for
    # cheap models the latter dominates), then afford model rows per background row and
    # explained row within the time given
    probe = take_rows(background, np.arange(min(len(background), 256)))
    for _ in range(2):  # the first call warms up (allocations, thread pools)
        started = time.perf_counter()
        stratified_permutation_values(f, take_rows(X, [0]), probe, 1,
                                      np.random.default_rng(0))
    per_model_row = (time.perf_counter() - started) / (len(probe) * 2 * M)
    affordable = seconds / per_model_row / (len(X) * len(background))
    if M <= MAX_EXACT_FEATURES and 2**M <= max(affordable, 4 * nsamples):
        phi = exact_shapley_values(f, X, background)
        info = {"kind": "exact", "n_coalitions": 2**M}
    else:
        pairs = max(1, int(max(affordable, nsamples) / (2 * M)))
        phi = stratified_permutation_values(f, X, background, pairs, rng)
        info = {"kind": "permutation", "permutations_per_background_row": 2 * pairs}
    info["background_rows"] = len(background)
    return explainer.model_input_.layout(phi, np.zeros(phi.shape[-1]), get_raw=False)[0], info


def measure_latency(explainer: ScoringExplainer, rows: Any, repeats: int = 7) -> dict:
    """Median milliseconds to explain one row (``row_ms``; ``row_given_outputs_ms`` when
    the caller passes the model outputs it computed) and a batch of 100 rows (repeated)."""
    one = rows.iloc[:1] if isinstance(rows, pd.DataFrame) else np.asarray(rows)[:1]
    batch = pd.concat([rows] * (100 // len(rows) + 1)).iloc[:100] if isinstance(
        rows, pd.DataFrame) else np.resize(np.asarray(rows), (100, np.asarray(rows).shape[1]))
    one_rows = explainer.validate(one)
    one_outputs = explainer.model_outputs(one_rows)

    def median_seconds(call: Any, n: int) -> float:
        started = time.perf_counter()
        call()  # warm up
        if time.perf_counter() - started > 0.05:
            n = min(n, 3)  # slow explainers: a few calls are plenty
        times = []
        for _ in range(n):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        return float(np.median(times))

    latency = {"row_ms": 1e3 * median_seconds(lambda: explainer.explain(one), repeats),
               "row_given_outputs_ms": 1e3 * median_seconds(
                   lambda: explainer.explain_rows(one_rows, outputs=one_outputs), repeats)}
    if latency["row_ms"] > 20:  # cost is linear in rows: time 5 rows, not 100
        latency["batch100_ms"] = 20 * 1e3 * median_seconds(
            lambda: explainer.explain(batch[:5]), 1)
        latency["batch100_extrapolated_from"] = 5
    else:
        latency["batch100_ms"] = 1e3 * median_seconds(lambda: explainer.explain(batch),
                                                      max(1, repeats // 3))
    return latency


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
    return f"{report.get('method')}: " + _fidelity_line(report.get("fidelity", {}),
                                                         report.get("latency", {}))


def _fidelity_line(fid: dict, lat: dict) -> str:
    nan = float("nan")
    return (f"rel. L2 error {fid.get('relative_l2_error', nan):.3f}, "
            f"top-5 precision {fid.get('top5_precision', nan):.2f}, additivity gap "
            f"{fid.get('additivity_gap', nan):.1e}, {lat.get('row_ms', nan):.3f} ms/row, "
            f"{lat.get('batch100_ms', nan):.1f} ms/100 rows")
