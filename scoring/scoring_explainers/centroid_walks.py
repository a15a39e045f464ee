"""Permutation walks from a weighted kmeans summary: the fast fallback for black boxes."""

from __future__ import annotations

from typing import Any

import numpy as np

from scoring.scoring_explainers.base import ScoringExplainer
from scoring.shapley.background import summarise_background
from scoring.shapley.masking import n_players
from scoring.shapley.permutation import antithetic_design, check_permutations, weighted_walk_values


class CentroidWalksScoringExplainer(ScoringExplainer):
    """Antithetic permutation walks from each of ``n_background`` kmeans centroids of the
    training rows, weighted by cluster size, with one design of orders fixed at fit.

    Kernel SHAP on the SDK's 10 centroids evaluates every coalition on each of them; its
    error is mostly the summary's. Walks cost far fewer model rows per background row (an
    antithetic pair from a centroid: ``2 (M - 1)`` rows, exact for games of main effects
    and pairwise interactions), so the same or a smaller budget buys a finer summary. Every
    row of a batch shares the walks (one model call per batch, the same values for the same
    row); each walk's credits add up to ``f(x) - f(c)``, so the values are additive
    exactly on the stated background. The centroids' outputs are computed at fit and the
    row's are the ones the service has; a step switching a raw column whose values the row
    and the centroid share is not evaluated (its credit is zero).

    Cost: at most ``n_background * n_permutations * (M - 1)`` model rows per row (``M``
    players), linear in ``M``: above 12 raw columns it is the same design, with no
    enumeration of coalitions.

    Parameters
    ----------
    explainer, initialization_examples : as in the Azure SDK (see ``ScoringExplainer``).
    n_background : kmeans centroids (``shap.kmeans``, as the SDK; a uniform sample for
        mixed-type raw rows). Default 32.
    n_permutations : walks per centroid, even (antithetic pairs). Default 2.
    model_output, random_state, players : see ``ScoringExplainer``; ``players="auto"``
        plays each raw column's engineered columns as one player.
    """

    method = "centroid_walks"
    plays_raw_columns = True

    def __init__(self, explainer: Any = None, initialization_examples: Any = None, *,
                 n_background: int = 32, n_permutations: int = 2,
                 model_output: str | None = None, random_state: int | None = 0,
                 players: str = "auto") -> None:
        self.n_background = n_background
        self.n_permutations = n_permutations
        super().__init__(explainer, initialization_examples, model_output=model_output,
                         random_state=random_state, players=players)

    def _fit(self, X: Any) -> None:
        check_permutations(self.n_permutations)
        rng = np.random.default_rng(self.random_state)
        self.background_, self.background_weights_ = summarise_background(
            X, self.n_background, rng)
        self.orders_, self.background_index_ = antithetic_design(
            len(self.background_weights_), self.n_permutations // 2,
            n_players(X, self.groups_), rng)
        self.background_outputs_ = self.spec_.function(self.background_)
        self.expected_values_ = self.background_weights_ @ self.background_outputs_

    def model_rows_per_row(self) -> int:
        """Every inner point of every walk (steps that move nothing are skipped)."""
        return int(len(self.orders_) * max(0, self.orders_.shape[1] - 1))

    def _shap_values(self, X: Any, outputs: np.ndarray | None) -> np.ndarray:
        walk_weights = self.background_weights_[self.background_index_] / self.n_permutations
        return weighted_walk_values(self.spec_.function, X, self.background_,
                                    self.background_outputs_, walk_weights, self.orders_,
                                    self.background_index_, fx=outputs, groups=self.groups_)

    def get_params(self) -> dict:
        params = super().get_params()
        params.update(n_background=self.n_background, n_permutations=self.n_permutations)
        if hasattr(self, "orders_"):
            params.update(background_rows=len(self.background_weights_),
                          model_rows_per_row=self.model_rows_per_row())
        return params
