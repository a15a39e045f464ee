"""Build a scoring explainer offline: measure the candidates, then choose one."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

from scoring.evaluation.candidates import (
    Candidate,
    candidate_methods,
    candidates,
    sdk_configuration,
)
from scoring.evaluation.choice import METRIC_BOUNDS, SPEEDUP_TARGET, Criteria, choose
from scoring.evaluation.measure import HeldOut, failed_trial
from scoring.evaluation.reference import DEFAULT_BUDGET
from scoring.evaluation.report import DistillReport, Trial
from scoring.model.function import check_model, default_output
from scoring.model.rows import n_rows
from scoring.model.spec import final_estimator
from scoring.scoring_explainers.base import ScoringExplainer
from scoring.scoring_explainers.registry import SCORING_EXPLAINERS

METHODS = ("auto", *SCORING_EXPLAINERS)
# methods cheap enough to refit on every training row once chosen (fidelity and cost
# were measured before, with the held-out rows out); the amortized fit is the expensive part
_REFIT_METHODS = frozenset({"kernel", "tree", "linear", "permutation", "svm",
                            "centroid_walks"})
# exact methods: against the default bar they differ from the reference only by its
# background sample (a linear margin's values sum exactly onto raw columns)
_EXACT_METHODS = frozenset({"linear"})


class DistillError(ValueError):
    """No candidate scoring explainer met the requested fidelity and latency; ``tried``
    lists the :class:`~scoring.evaluation.report.Trial` of each."""

    def __init__(self, message: str, tried: list[Trial]) -> None:
        super().__init__(message)
        self.tried = tried


def distill(model: Any, X_train: Any, *, method: str = "auto", features: Any = None,
            classes: Any = None, transformations: Any = None, n_held_out: int = 30,
            reference_background: int = 1000, reference_budget: int = DEFAULT_BUDGET,
            max_latency_ms: float | None = None, min_fidelity: Any = None,
            random_state: int | None = 0, verbose: bool = True,
            **params: Any) -> ScoringExplainer:
    """Fit a scoring explainer for ``model`` on training rows ``X_train``, with its
    :class:`~scoring.evaluation.report.DistillReport` as ``report_``.

    Each candidate is fitted without ``n_held_out`` held-out rows and measured on them:
    its fidelity against reference values (``reference_background`` training rows as
    background, ``reference_budget`` model rows per held-out row; see
    :func:`~scoring.evaluation.reference.reference_values`), at the raw columns when the
    model has transformations (or is a pipeline ``ModelSpec`` splits), where users read
    the values; and its cost (:class:`~scoring.evaluation.report.Cost`: CPU time of one
    thread, and model evaluations per row). Then :func:`~scoring.evaluation.choice.choose`
    decides from those records alone, so the same model, rows and ``random_state`` ship
    the same explainer on an idle or a busy machine.

    ``method="auto"`` tries, cheapest first, linear (where the explained output is
    linear), tree (tree models), amortized, svm (RBF support vector machines),
    centroid_walks, permutation and kernel. ``min_fidelity``: a number (``1 -`` relative
    L2 error), a dict of bounds on ``relative_l2_error``/``additivity_gap`` (max) and
    ``top5_precision``/``top5_sign_agreement`` (min), or ``None``: for ``"auto"``, at
    least as faithful as the Azure SDK's configuration (Kernel SHAP, kmeans-10
    background, ``2M+2048`` coalitions), measured first on the same rows: relative L2
    error no larger, top-5 precision no lower (linear, exact, passes as it is). Against
    that bar the first faithful candidate at least ``SPEEDUP_TARGET`` (20) times faster
    per row (given the model outputs) than the SDK configuration ships; the centroid
    walks (the fallback for black boxes) are tried from 16, 32, 64 and 128 kmeans
    centroids, the permutation step is a ladder of budgets of 1, 2 and 4 times the SDK's
    model rows per row; the SDK configuration itself comes last, so nothing less faithful
    than it ever ships (see :func:`~scoring.evaluation.choice.choose` for the rule when no
    candidate reaches the speed-up). With ``min_fidelity`` or an explicit ``method``, the
    first candidate that meets the bounds and ``max_latency_ms`` (one raw row end to end)
    ships. Raises :class:`DistillError` listing what each candidate achieved when none
    qualifies. ``params`` go to the candidates that take them (``n_background``,
    ``nsamples``...). A chosen kernel, tree, linear, centroid_walks, permutation or svm
    explainer is refitted on all of ``X_train``. ``verbose``: what was tried and what
    shipped, on stderr.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    check_model(model)
    bounds = _thresholds(min_fidelity)
    if max_latency_ms is not None and not max_latency_ms > 0:
        raise ValueError(f"max_latency_ms must be positive, got {max_latency_ms!r}")
    if n_rows(X_train) < 4:
        raise ValueError(f"X_train has {n_rows(X_train)} rows; distill needs at least 4")
    if method == "auto":  # every candidate explains the same output: fidelities compare
        params = {**params, "model_output": params.get("model_output") or default_output(model)}
    methods = candidate_methods(method, final_estimator(model, X_train), params)
    say = _story(verbose)
    held = HeldOut(model, X_train, n_held_out=n_held_out, random_state=random_state,
                   fit_kwargs=dict(features=features, classes=classes,
                                   transformations=transformations),
                   reference=dict(n_background=reference_background, budget=reference_budget),
                   verbose=verbose, say=say)
    criteria = Criteria(bounds or {}, max_latency_ms)
    bar: tuple[Trial, ScoringExplainer] | None = None
    if bounds is None and method == "auto":
        bar, criteria = _measure_bar(held, params, max_latency_ms, say)
    todo = candidates(methods, params, auto=method == "auto",
                      bar=None if bar is None else bar[1], n_train=n_rows(held.train))
    trials: list[Trial] = []
    explainers: list[ScoringExplainer | None] = []
    for i, candidate in enumerate(todo):
        trial, explainer = _try(held, candidate, bar, strict=method != "auto")
        if criteria.bar_ms is not None and trial.cost is not None:
            trial.speedup = criteria.bar_ms / max(trial.cost.row_given_outputs_ms, 1e-12)
        trials.append(trial)
        explainers.append(explainer)
        decision = choose(trials, criteria, complete=i == len(todo) - 1)
        for t, (verdict, missed) in zip(trials, decision.verdicts, strict=True):
            t.verdict, t.missed = verdict, missed
        if decision.shipped != i:
            say(_verdict_line(trial))
        if decision.shipped is not None:
            shipped = trials[decision.shipped]
            say(f"{shipped.line()} -> shipped: {decision.reason}")
            return _finish(held, todo[decision.shipped], explainers[decision.shipped],
                           shipped, decision.reason, trials, criteria, say)
    raise DistillError(_refusal(trials, criteria, n_rows(held.held_out)), trials)


def _story(verbose: bool):
    def say(message: str) -> None:
        if verbose:
            print(f"[distill] {message}", file=sys.stderr, flush=True)
    return say


def _measure_bar(held: HeldOut, params: dict, max_latency_ms: float | None,
                 say: Any) -> tuple[tuple[Trial, ScoringExplainer], Criteria]:
    """The SDK configuration measured as the fidelity bar, shap's ``KernelExplainer``
    timed on its background, and the criteria they set."""
    say("measuring the Azure SDK configuration (kernel, kmeans-10 background) as the bar")
    trial, explainer = held.measure(sdk_configuration(params))
    sdk_ms = held.sdk_row_ms(explainer)
    say(f"the bar: {trial.fidelity.line()}, {trial.cost.line()}; shap's KernelExplainer "
        f"(the SDK's own) takes {sdk_ms:.3g} ms/row")
    bounds = {"relative_l2_error": trial.fidelity.relative_l2_error,
              "top5_precision": trial.fidelity.top5_precision}
    criteria = Criteria(bounds, max_latency_ms, bar_ms=trial.cost.row_given_outputs_ms,
                        sdk_ms=sdk_ms, exact_methods=_EXACT_METHODS)
    return (trial, explainer), criteria


def _try(held: HeldOut, candidate: Candidate, bar: tuple[Trial, ScoringExplainer] | None,
         strict: bool) -> tuple[Trial, ScoringExplainer | None]:
    """The trial of ``candidate`` (the bar's own measurement for the SDK configuration);
    a candidate that cannot run is a failed trial, unless ``strict``."""
    if candidate.role == "bar" and bar is not None:
        return replace(bar[0]), bar[1]
    try:
        return held.measure(candidate)
    except Exception as exc:  # noqa: BLE001 - any candidate that cannot run is skipped
        if strict:
            raise
        return failed_trial(candidate, exc), None


def _verdict_line(trial: Trial) -> str:
    if trial.verdict == "rejected":
        return f"{trial.line()} -> rejected: {'; '.join(trial.missed)}"
    if trial.verdict == "faithful":
        return f"{trial.line()} -> faithful, but not {SPEEDUP_TARGET}x faster than the bar"
    return f"{trial.line()} -> failed"


def _finish(held: HeldOut, candidate: Candidate, explainer: ScoringExplainer, trial: Trial,
            reason: str, trials: list[Trial], criteria: Criteria,
            say: Any) -> ScoringExplainer:
    refit = candidate.method in _REFIT_METHODS
    if refit:
        # the held-out rows only measured the candidate: a cheap fit gets them back, so
        # its background summary is the SDK's own (same kmeans on the same rows)
        say(f"refitting {candidate.label()} on all {n_rows(held.X)} rows")
        explainer = held.fit(candidate, held.X)
    explainer.report_ = DistillReport(
        method=candidate.method, explainer_class=type(explainer).__name__,
        params=explainer.get_params(), fidelity=trial.fidelity, cost=trial.cost,
        fit_seconds=trial.fit_seconds, n_train_rows=n_rows(held.train),
        n_held_out_rows=n_rows(held.held_out), reason=reason, tried=trials,
        criteria={"min_fidelity": criteria.bounds or None,
                  "max_latency_ms": criteria.max_latency_ms,
                  "fidelity_bar": "azure-sdk-kernel" if criteria.default_bar else "requested",
                  "speedup_target": SPEEDUP_TARGET if criteria.default_bar else None,
                  "bar_ms_given_outputs": criteria.bar_ms,
                  "sdk_kernel_explainer_ms": criteria.sdk_ms,
                  "timing": "CPU time of one thread, BLAS on it"},
        refit_on_all_rows=refit, held_out_rows=held.positions.tolist())
    return explainer


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
        unknown = sorted(set(min_fidelity) - set(METRIC_BOUNDS))
        if unknown:
            raise ValueError(f"min_fidelity has unknown metrics {unknown}; use "
                             f"{sorted(METRIC_BOUNDS)}")
        return {k: float(v) for k, v in min_fidelity.items()}
    raise TypeError(f"min_fidelity must be a number (1 - relative L2 error), a dict of "
                    f"metric bounds or None, got {type(min_fidelity).__name__}")


def _refusal(trials: list[Trial], criteria: Criteria, n_held_out: int) -> str:
    lines = [f"  {t.line()}" + (f"; missed {'; '.join(t.missed)}" if t.missed else "")
             for t in trials]
    return (f"no scoring explainer met the requested fidelity/latency on {n_held_out} "
            f"held-out rows (min_fidelity={criteria.bounds or None}, max_latency_ms="
            f"{criteria.max_latency_ms}); tried:\n" + "\n".join(lines))
