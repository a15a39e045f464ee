"""Kernel SHAP scoring explainer: model-agnostic, vectorised over the batch."""

from __future__ import annotations

from typing import Any

import numpy as np

from scoring.scoring_explainers.base import ScoringExplainer
from scoring.shapley.background import sample_background, summarise_background
from scoring.shapley.kernel import (
    check_nsamples,
    coalition_design,
    coalition_values,
    default_nsamples,
    shapley_map,
    solve_shapley,
)
from scoring.shapley.masking import n_players


class KernelScoringExplainer(ScoringExplainer):
    """Kernel SHAP on a summarised background, with one coalition design fixed at fit.

    Unlike shap's ``KernelExplainer`` (one row at a time, a new random design per row),
    every row of a batch shares the coalitions drawn at fit time: one model call and one
    matrix product per batch, and the same row always gets the same values. With
    ``nsamples >= 2**M - 2`` all coalitions are enumerated and the values are the exact
    Shapley values on the background. Additivity holds to rounding by construction.

    Parameters
    ----------
    explainer, initialization_examples : as in the Azure SDK (see ``ScoringExplainer``).
    n_background : background rows. Default 10, as the Azure SDK.
    background : ``"kmeans"``: centroids weighted by cluster size (a random sample for
        mixed-type raw rows, which have no centroids); ``"sample"``: a uniform sample.
    nsamples : coalitions; ``"auto"`` is shap's ``2 * M + 2048``.
    model_output : ``"predict_proba"`` (classifiers, default), ``"predict"``,
        ``"decision_function"``.
    random_state : seed for the background summary and the coalition design.
    players : ``"auto"`` (default): with transformations, one player per raw column (its
        engineered columns switch together); ``"engineered"``: one per engineered column.
    """

    method = "kernel"
    plays_raw_columns = True
    transient = ("design_",)

    def __init__(self, explainer: Any = None, initialization_examples: Any = None, *,
                 n_background: int = 10, background: str = "kmeans",
                 nsamples: int | str = "auto",
                 model_output: str | None = None, random_state: int | None = 0,
                 players: str = "auto") -> None:
        self.n_background = n_background
        self.background = background
        self.nsamples = nsamples
        super().__init__(explainer, initialization_examples, model_output=model_output,
                         random_state=random_state, players=players)

    def _fit(self, X: Any) -> None:
        check_nsamples(self.nsamples)
        if self.background not in ("kmeans", "sample"):
            raise ValueError(f"background must be 'kmeans' or 'sample', got {self.background!r}")
        rng = np.random.default_rng(self.random_state)
        summarise = summarise_background if self.background == "kmeans" else sample_background
        self.background_, self.background_weights_ = summarise(X, self.n_background, rng)
        M = n_players(X, self.groups_)
        budget = default_nsamples(M) if self.nsamples == "auto" else int(self.nsamples)
        self.coalitions_, self.coalition_weights_ = coalition_design(M, budget, rng)
        outputs = self.spec_.function(self.background_)
        self.expected_values_ = self.background_weights_ @ outputs
        self._restore()

    def model_rows_per_row(self) -> int:
        """Every coalition on every background row."""
        return len(self.background_) * len(self.coalitions_)

    def _restore(self) -> None:
        """The coalition design's solve as a linear map (rebuilt when loaded)."""
        self.design_ = shapley_map(self.coalitions_, self.coalition_weights_)

    def _shap_values(self, X: Any, outputs: np.ndarray | None) -> np.ndarray:
        full = self.spec_.function(X) if outputs is None else outputs
        return solve_shapley(self.coalitions_, self.coalition_weights_,
                             self._coalition_values(X), np.asarray(self.expected_values_),
                             full, self.design_)

    def _coalition_values(self, X: Any) -> np.ndarray:
        """``v[i, k, o]``: the output on hybrids of row ``i`` and the background, players
        of coalition ``k`` from the row, averaged over the background (weighted)."""
        return coalition_values(self.spec_.function, X, self.background_,
                                self.background_weights_, self.coalitions_, self.groups_)

    def get_params(self) -> dict:
        params = super().get_params()
        params.update(n_background=self.n_background, background=self.background,
                      nsamples=self.nsamples)
        if hasattr(self, "coalitions_"):
            params.update(n_coalitions=len(self.coalitions_),
                          exact=bool(len(self.coalitions_) == 2 ** self.coalitions_.shape[1] - 2
                                     or self.coalitions_.shape[1] < 2),
                          background_rows=len(self.background_))
        return params
