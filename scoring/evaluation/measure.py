"""Fitting a candidate on the training rows and measuring it on held-out rows."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from scoring.evaluation.candidates import Candidate
from scoring.evaluation.fidelity import fidelity_report
from scoring.evaluation.latency import measure_cost
from scoring.evaluation.reference import reference_values
from scoring.evaluation.report import Fidelity, Trial
from scoring.evaluation.timing import median_ms
from scoring.model.rows import n_rows, split_rows, take_rows
from scoring.scoring_explainers.base import ScoringExplainer
from scoring.scoring_explainers.registry import scoring_explainer_class


class HeldOut:
    """The training rows ``X`` of ``model`` split into fitting rows (``train``) and
    ``n_held_out`` held-out rows (``held_out``, at ``positions`` in ``X``), and the
    reference values on the held-out rows: where every candidate is fitted and measured.

    ``fit_kwargs`` go to every explainer's ``fit``; ``reference`` to
    :func:`~scoring.evaluation.reference.reference_values`; ``say`` prints progress.
    """

    def __init__(self, model: Any, X: Any, *, fit_kwargs: dict, n_held_out: int,
                 reference: dict, random_state: int | None, verbose: bool,
                 say: Callable[[str], None]) -> None:
        self.model = model
        self.X = X
        self.fit_kwargs = fit_kwargs
        self.reference_kwargs = reference
        self.random_state = random_state
        self.verbose = verbose
        self.say = say
        n = min(max(1, n_held_out), n_rows(X) // 4)
        self.train, self.held_out, self.positions = split_rows(
            X, n, np.random.default_rng(random_state))
        self._references: dict[str, tuple[np.ndarray, dict]] = {}

    def fit(self, candidate: Candidate, rows: Any) -> ScoringExplainer:
        """``candidate``'s explainer fitted on ``rows`` of the training data."""
        explainer = scoring_explainer_class(candidate.method)(
            random_state=self.random_state, **candidate.params)
        if hasattr(explainer, "verbose"):
            explainer.verbose = self.verbose
        return explainer.fit(self.model, rows, **self.fit_kwargs)

    def measure(self, candidate: Candidate) -> tuple[Trial, ScoringExplainer]:
        """Fit ``candidate`` on the fitting rows; its fidelity and cost on the held-out
        rows (fidelity at the raw columns, where users read the values)."""
        self.say(f"fitting {candidate.label()} on {n_rows(self.train)} rows")
        started = time.perf_counter()
        explainer = self.fit(candidate, self.train)
        fit_seconds = time.perf_counter() - started
        spec = explainer.spec_
        truth, info = self._reference(explainer)
        scored = explainer.score(self.held_out, get_raw=spec.layout.has_raw, predict=False,
                                 outputs=True)
        fidelity = Fidelity(**fidelity_report(scored.explanation.local_importance_values,
                                              truth, explainer.expected_values,
                                              scored.outputs), reference=info)
        trial = Trial(candidate.method, candidate.label(), role=candidate.role,
                      params=dict(candidate.params) if candidate.role else {},
                      fidelity=fidelity, cost=measure_cost(explainer, self.held_out),
                      fit_seconds=fit_seconds)
        return trial, explainer

    def _reference(self, explainer: ScoringExplainer) -> tuple[np.ndarray, dict]:
        """The reference values of the held-out rows, once per explained output."""
        spec = explainer.spec_
        output = spec.function.output
        if output not in self._references:
            self.say(f"computing reference Shapley values for {n_rows(self.held_out)} "
                     "held-out rows")
            engineered = [spec.transform(spec.validate(rows)) for rows in (self.train,
                                                                            self.held_out)]
            self._references[output] = reference_values(
                spec, *engineered, random_state=self.random_state, verbose=self.verbose,
                **self.reference_kwargs)
        return self._references[output]

    def sdk_row_ms(self, bar: ScoringExplainer, calls: int = 2) -> float:
        """CPU milliseconds per row of shap's ``KernelExplainer`` (the Azure SDK's
        explainer) on the bar's kmeans-10 background, default budget and
        ``l1_reg="auto"``, one held-out row per call (median of ``calls``)."""
        import shap

        spec = bar.spec_
        X = np.asarray(spec.transform(spec.validate(take_rows(self.held_out, [0]))),
                       dtype=float)
        # the same rows unweighted: the weights do not change the work, only the values
        sdk = shap.KernelExplainer(spec.function, np.asarray(bar.background_))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return median_ms(lambda: sdk.shap_values(X, l1_reg="auto", silent=True), calls)


def failed_trial(candidate: Candidate, exc: BaseException) -> Trial:
    """The trial of a candidate that could not be fitted or measured."""
    first = str(exc).splitlines()[0] if str(exc) else ""
    return Trial(candidate.method, candidate.label(), role=candidate.role,
                 error=f"{type(exc).__name__}: {first}", verdict="failed")

