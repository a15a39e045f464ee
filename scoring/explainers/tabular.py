"""TabularExplainer: explains a model with the scoring explainer that supports it, as
distill chooses, at the Azure SDK's signature."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from scoring.core.explanation import Explanation
from scoring.explainers.base import ModelExplainer, global_from_local
from scoring.explainers.progress import check_show_progress, over_rows
from scoring.model.rows import n_rows
from scoring.model.spec import final_estimator
from scoring.scoring_explainers.base import ScoringExplainer
from scoring.scoring_explainers.kernel import KernelScoringExplainer
from scoring.scoring_explainers.linear import LinearScoringExplainer
from scoring.scoring_explainers.svm import SVMScoringExplainer
from scoring.scoring_explainers.tree import TreeScoringExplainer
from scoring.shapley.kernel import check_nsamples, default_nsamples
from scoring.shapley.masking import n_players

logger = logging.getLogger(__name__)

# the algorithms, in the order "auto" asks them whether they support the model: exact
# ones first, then the RBF SVM's kernel factors, then model-agnostic Kernel SHAP
ALGORITHMS: dict[str, type[ScoringExplainer]] = {
    "tree": TreeScoringExplainer, "linear": LinearScoringExplainer,
    "svm": SVMScoringExplainer, "kernel": KernelScoringExplainer}
KINDS = ("auto", *ALGORITHMS)
# the Azure SDK's Kernel background: shap.kmeans of 10 training rows
_SDK_BACKGROUND = 10
# coalitions of the svm kind: half shap's default, on a background twice the SDK's (its
# error is then still below the SDK configuration's; bench/offline.py measures both)
_SVM_NSAMPLES = 1024


class TabularExplainer(ModelExplainer):
    """Explain a model with the first algorithm that supports it.

    Each scoring explainer class says whether it can explain the model
    (``unsupported(model, output)``), asked in this order:

    - ``"tree"``: exact interventional TreeSHAP of tree models
      (:class:`~scoring.TreeScoringExplainer`: the path engine on up to 1000 training rows,
      or shap's ``TreeExplainer`` on 100); probabilities for classifiers.
    - ``"linear"``: the exact closed form of linear models (``coef_``) on the mean training
      row (:class:`~scoring.LinearScoringExplainer`); ``predict`` for regressors,
      ``decision_function`` (log-odds) for classifiers, as shap's ``LinearExplainer``.
    - ``"svm"``: RBF ``SVC``/``NuSVC`` probabilities and ``SVR``/``NuSVR`` predictions
      (:class:`~scoring.SVMScoringExplainer`): Kernel SHAP with every coalition evaluated
      from kernel factors instead of model calls, on 20 kmeans centroids, 1024 coalitions.
    - ``"kernel"``: any other model (:class:`~scoring.KernelScoringExplainer`): the Azure
      SDK's Kernel SHAP (kmeans centroids, ``2 * M + 2048`` coalitions) with one coalition
      design shared by the whole batch. When every coalition fits in that budget (up to 11
      players) it enumerates them, exact on its background, and spends the budget left on
      centroids: as many model rows per explained row as the SDK's 10 centroids.

    An algorithm that refuses the model when fitted (shap cannot read some trees) passes to
    the next. The choice is in ``explainer_kind`` and why in ``selection_reason_`` (also
    logged); every explanation records it as ``method``.

    With ``transformations`` (or a ``Pipeline`` split at its ``ColumnTransformer``),
    ``model`` is the final estimator and the rows are raw rows; the values are per raw
    column. Tree, svm and kernel switch each raw column's engineered columns together
    (``players="auto"``): the raw columns' own Shapley values, as exact enumeration over
    the raw columns gives them; ``players="engineered"`` plays each engineered column
    instead, which gives per-engineered-column values too (``get_raw=False``).

    Parameters
    ----------
    model, initialization_examples, features, classes, transformations, model_output :
        see :class:`~scoring.explainers.base.ModelExplainer`.
    explainer_kind : ``"auto"``, or force ``"tree"``, ``"linear"``, ``"svm"``, ``"kernel"``.
    n_background : background rows of svm and kernel (``None``: 20, and 10 or more as
        above).
    nsamples : coalitions of svm and kernel (``"auto"``: 1024 and shap's ``2 * M + 2048``).
    players : ``"auto"`` or ``"engineered"`` (see above).
    show_progress : a progress bar on stderr: ``None`` for calls over a few seconds unless
        ``TQDM_DISABLE`` is set, ``True`` always, ``False`` never.
    random_state : seed for backgrounds and coalition designs.

    Attributes
    ----------
    explainer_kind : the algorithm used, one of ``"tree"``, ``"linear"``, ``"svm"``,
        ``"kernel"``.
    selection_reason_ : the model's class, the algorithm and why.
    scoring_explainer_ : the fitted scoring explainer doing the work.
    """

    def __init__(self, model: Any, initialization_examples: Any, features: Any = None,
                 classes: Any = None, transformations: Any = None,
                 model_output: str | None = None, *, explainer_kind: str = "auto",
                 n_background: int | None = None, nsamples: int | str = "auto",
                 players: str = "auto", show_progress: bool | None = None,
                 random_state: int | None = 0) -> None:
        if explainer_kind not in KINDS:
            raise ValueError(f"explainer_kind must be one of {KINDS}, got {explainer_kind!r}")
        if n_background is not None and (isinstance(n_background, bool) or not isinstance(
                n_background, (int, np.integer)) or n_background < 1):
            raise ValueError(f"n_background must be a positive integer, got {n_background!r}")
        check_nsamples(nsamples)
        if players not in ("auto", "engineered"):
            raise ValueError(f"players must be 'auto' or 'engineered', got {players!r}")
        self.explainer_kind = explainer_kind
        self.n_background = n_background
        self.nsamples = nsamples
        self.players = players
        self.show_progress = check_show_progress(show_progress)
        self.random_state = random_state
        estimator = final_estimator(model, initialization_examples)
        kinds = list(ALGORITHMS) if explainer_kind == "auto" else [explainer_kind]
        if model_output is None:
            # the output of the first algorithm that supports the estimator: the linear
            # one explains a classifier's log-odds, the others its probabilities
            model_output = next(
                (cls.default_output(estimator) for cls in map(ALGORITHMS.get, kinds)
                 if cls.unsupported(estimator, cls.default_output(estimator)) is None),
                None)
        super().__init__(model, initialization_examples, features, classes, transformations,
                         model_output)
        self.scoring_explainer_, self.explainer_kind, self.selection_reason_ = self._fit(kinds)
        logger.info("TabularExplainer: %s", self.selection_reason_)

    def _fit(self, kinds: list[str]) -> tuple[ScoringExplainer, str, str]:
        """The first of ``kinds`` that supports the model and fits it, with why (and which
        supported it but refused it when fitted)."""
        model, output = self.spec_.model, self.spec_.function.output
        refusals, refused_at_fit = [], []
        for kind in kinds:
            reason = ALGORITHMS[kind].unsupported(model, output)
            if reason is None:
                try:
                    explainer = self._algorithm(kind).fit_spec(self.spec_,
                                                               self.engineered_rows_)
                except TypeError as exc:  # refused when fitted, e.g. trees shap cannot read
                    reason = str(exc)
                    refused_at_fit.append(f"not {kind}: {reason}")
                else:
                    why = "; ".join([_describe(explainer), *refused_at_fit])
                    return explainer, kind, f"{type(model).__name__} {output}: {kind} ({why})"
            refusals.append(f"not {kind}: {reason}")
        raise TypeError(f"TabularExplainer cannot explain {type(model).__name__}: "
                        + "; ".join(refusals))

    def _algorithm(self, kind: str) -> ScoringExplainer:
        """The unfitted scoring explainer of ``kind`` with this explainer's settings."""
        shared = {"random_state": self.random_state}
        if kind == "linear":
            return LinearScoringExplainer(**shared)
        shared["players"] = self.players
        if kind == "tree":
            return TreeScoringExplainer(**shared)
        if kind == "svm":
            return SVMScoringExplainer(
                n_background=self.n_background or 20, **shared,
                nsamples=_SVM_NSAMPLES if self.nsamples == "auto" else self.nsamples)
        return KernelScoringExplainer(n_background=self.n_background or self._kernel_background(),
                                      nsamples=self.nsamples, **shared)

    def _kernel_background(self) -> int:
        """Kernel's background rows at the SDK's cost in model rows per explained row (10
        centroids x shap's default coalitions): when every coalition of the players takes
        less (8 raw columns: 254 of them), the rest buys centroids, the summary of the
        training rows being then what limits fidelity."""
        groups = self.spec_.raw_map.groups \
            if self.spec_.layout.has_raw and self.players == "auto" else None
        M = n_players(self.engineered_rows_, groups)
        budget = default_nsamples(M) if self.nsamples == "auto" else int(self.nsamples)
        coalitions = min(2**M - 2, budget) if M > 1 else 1
        return max(_SDK_BACKGROUND, _SDK_BACKGROUND * budget // coalitions)

    # -- what the values are relative to -------------------------------------------------
    @property
    def expected_values(self) -> float | np.ndarray:
        """The explained output averaged over the background: float or ``(n_classes,)``."""
        return self.scoring_explainer_.expected_values

    @property
    def background_(self) -> Any:
        """The rows the values are relative to, as the model takes them (the mean training
        row for linear models)."""
        explainer = self.scoring_explainer_
        if isinstance(explainer, LinearScoringExplainer):
            return explainer.mean_[None, :]
        return explainer.background_

    @property
    def background_weights_(self) -> np.ndarray:
        """The weights of :attr:`background_`'s rows, summing to one."""
        weights = getattr(self.scoring_explainer_, "background_weights_", None)
        n = n_rows(self.background_)
        return np.full(n, 1.0 / n) if weights is None else weights

    # -- explanations ------------------------------------------------------------------
    def _values(self, X: Any) -> np.ndarray:
        """Values ``(n_rows, n_players, n_outputs)`` of rows ``X`` as the model takes them."""
        return over_rows(self.scoring_explainer_.shap_values, X,
                         f"TabularExplainer ({self.explainer_kind})", self.show_progress)

    def explain_local(self, evaluation_examples: Any, get_raw: bool = True) -> Explanation:
        """Local importance values of ``evaluation_examples``.

        ``(n_rows, n_features)`` for regression, ``(n_classes, n_rows, n_features)`` for
        classification; per raw column when ``get_raw`` and transformations were given,
        per engineered column otherwise (see ``players``).
        """
        return self._explanation(self._values, self.scoring_explainer_.expected_values_,
                                 evaluation_examples, get_raw, self.explainer_kind,
                                 extra={"explainer": self.selection_reason_},
                                 players=self.scoring_explainer_.players_)

    def explain_global(self, evaluation_examples: Any, get_raw: bool = True,
                       include_local: bool = True) -> Explanation:
        """Global importances (mean absolute local value) over ``evaluation_examples``;
        the local values are kept unless ``include_local=False``."""
        local = self.explain_local(evaluation_examples, get_raw=get_raw)
        return global_from_local(local, include_local)


def _describe(explainer: ScoringExplainer) -> str:
    """What the fitted algorithm computes, for ``selection_reason_``."""
    params = explainer.get_params()
    if explainer.method == "tree":
        return "exact path engine" if params.get("engine") == "paths" \
            else "shap's TreeExplainer"
    if explainer.method == "linear":
        return "exact closed form"
    exact = "every coalition, exact on it" if params.get("exact") \
        else f"{params.get('n_coalitions')} coalitions"
    return f"{params.get('background_rows')} background rows, {exact}"
