"""The scoring explainers distill tries, in the order it tries them."""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any

from scoring.scoring_explainers.registry import scoring_explainer_class, supporting_methods

# the permutation step is a ladder of budgets (model rows per explained row), these
# multiples of the SDK kernel's own (kmeans-10 rows x coalitions), smallest first: at equal
# budget walks on many real background rows are more faithful than Kernel SHAP on a
# summary, and they grow more faithful with the budget
PERMUTATION_BUDGETS = (1, 2, 4)
# the fallback's budgets: kmeans centroids, each the start of one antithetic pair of walks
# (2 (M - 1) model rows), fewest first. A finer summary than the SDK's 10 centroids at a
# fraction of its model rows; at equal model rows more centroids beat more walks from each
CENTROID_BUDGETS = (16, 32, 64, 128)


@dataclass(frozen=True)
class Candidate:
    """One scoring explainer to try: its method and parameters, and its ``role``:
    ``"rung"`` (a budget of the permutation ladder), ``"fallback"`` (a budget of the
    centroid walks), ``"bar"`` (the SDK configuration, measured first as the fidelity bar)
    or ``""``."""

    method: str
    params: dict = field(default_factory=dict)
    role: str = ""

    def label(self) -> str:
        """The method, with the parameters that tell a rung or the bar apart."""
        if not self.role:
            return self.method
        shown = {k: v for k, v in self.params.items() if k != "model_output"}
        return self.method + "".join(f" ({k}={v})" for k, v in shown.items())


def sdk_configuration(params: dict) -> Candidate:
    """The Azure SDK's ``KernelScoringExplainer`` configuration (kmeans-10 background,
    shap's default coalitions): the default fidelity bar."""
    return Candidate("kernel", {k: v for k, v in params.items() if k == "model_output"},
                     role="bar")


def candidate_methods(method: str, estimator: Any, params: dict) -> list[str]:
    """``[method]``, or for ``"auto"`` every method whose explainer supports ``estimator``
    (cheapest first); ``TypeError`` for parameters no candidate takes."""
    if method != "auto":
        return [method]
    methods = supporting_methods(estimator, params.get("model_output"))
    unused = set(params) - {k for m in methods for k in accepted_params(m, params)}
    if unused:
        raise TypeError(f"distill got parameters no candidate takes: {sorted(unused)}")
    return methods


def candidates(methods: list[str], params: dict, *, auto: bool, bar: Any = None,
               n_train: int = 0) -> list[Candidate]:
    """The candidates in the order distill tries them. Against the default bar (``bar``:
    the fitted SDK configuration), unless the caller set their parameters, the permutation
    step is a ladder of budgets (``n_train`` training rows to sample from), the centroid
    walks are tried at each of ``CENTROID_BUDGETS`` and the kernel step is the SDK
    configuration itself."""
    out = []
    for name in methods:
        chosen = accepted_params(name, params) if auto else dict(params)
        own = set(chosen) - {"model_output"}
        if bar is not None and not own and name == "permutation":
            out.extend(_ladder(bar, chosen, n_train))
        elif bar is not None and not own and name == "centroid_walks":
            out.extend(Candidate(name, {**chosen, "n_background": k}, role="fallback")
                       for k in CENTROID_BUDGETS)
        elif bar is not None and not own and name == "kernel":
            out.append(sdk_configuration(chosen))
        else:
            out.append(Candidate(name, chosen))
    return out


def accepted_params(method: str, params: dict) -> dict:
    """The entries of ``params`` the explainer ``method`` takes."""
    names = inspect.signature(scoring_explainer_class(method).__init__).parameters
    return {k: v for k, v in params.items() if k in names}


def _ladder(bar: Any, params: dict, n_train: int) -> list[Candidate]:
    """Permutation rungs of ``PERMUTATION_BUDGETS`` times the SDK kernel's model rows per
    explained row: one antithetic pair per background row while the training rows last."""
    unit = bar.model_rows_per_row()
    # players, as the bar's coalitions count them: raw columns for a split pipeline
    M = bar.coalitions_.shape[1]
    rungs = []
    for factor in PERMUTATION_BUDGETS:
        budget = factor * unit
        walks = 2 * max(1, math.ceil(budget / (2 * M * n_train)))
        rungs.append(Candidate("permutation", {
            **params, "n_background": min(n_train, math.ceil(budget / (walks * M))),
            "n_permutations": walks}, role="rung"))
    return rungs
