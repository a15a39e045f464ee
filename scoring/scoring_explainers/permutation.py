"""Permutation scoring explainer: model-agnostic, on many background rows, vectorised."""

from __future__ import annotations

from typing import Any

import numpy as np

from scoring.scoring_explainers.base import ScoringExplainer
from scoring.shapley.background import sample_background
from scoring.shapley.masking import n_players
from scoring.shapley.permutation import antithetic_design, check_permutations, walk_values


class PermutationScoringExplainer(ScoringExplainer):
    """Antithetic permutation sampling over a uniform sample of training rows, with one
    design of orders fixed at fit.

    Each explained row gets ``n_permutations`` walks from every background row (half of
    them the reverse of the other half); every row of a batch shares the same walks, so
    a batch is a few large model calls and the same row always gets the same values. The
    values are additive exactly (each walk's credits add up to ``f(x) - f(b)``).

    At equal model evaluations, Kernel SHAP must average every coalition over a small
    summarised background; here each walk uses one background row, so the budget buys a
    large, unsummarised background. Cost: ``n_background * n_permutations * M`` model rows
    per explained row (``model_rows_per_row`` in :meth:`get_params`).

    Parameters
    ----------
    explainer, initialization_examples : as in the Azure SDK (see ``ScoringExplainer``).
    n_background : training rows sampled uniformly as the background. Default 100.
    n_permutations : walks per background row, even (antithetic pairs). Default 2.
    model_output : ``"predict_proba"`` (classifiers, default), ``"predict"``,
        ``"decision_function"``.
    random_state : seed for the background sample and the orders.
    players : ``"auto"`` (default): with transformations, each raw column's engineered
        columns switch together (one player per raw column, the values you read at the raw
        level); ``"engineered"``: one player per engineered column.
    """

    method = "permutation"
    plays_raw_columns = True

    def __init__(self, explainer: Any = None, initialization_examples: Any = None, *,
                 n_background: int = 100, n_permutations: int = 2,
                 model_output: str | None = None, random_state: int | None = 0,
                 players: str = "auto") -> None:
        self.n_background = n_background
        self.n_permutations = n_permutations
        super().__init__(explainer, initialization_examples, model_output=model_output,
                         random_state=random_state, players=players)

    def _fit(self, X: Any) -> None:
        if not isinstance(self.n_background, (int, np.integer)) or self.n_background < 1:
            raise ValueError(f"n_background must be a positive integer, got "
                             f"{self.n_background!r}")
        check_permutations(self.n_permutations)
        rng = np.random.default_rng(self.random_state)
        self.background_, _ = sample_background(X, self.n_background, rng)
        self.orders_, self.background_index_ = antithetic_design(
            len(self.background_), self.n_permutations // 2, n_players(X, self.groups_), rng)
        self.expected_values_ = self.spec_.function(self.background_).mean(axis=0)

    def model_rows_per_row(self) -> int:
        """One model row per step of every walk."""
        return int(self.orders_.size)

    def _shap_values(self, X: Any, outputs: np.ndarray | None) -> np.ndarray:
        return walk_values(self.spec_.function, X, self.background_, self.orders_,
                           self.background_index_, fx=outputs, groups=self.groups_)

    def get_params(self) -> dict:
        params = super().get_params()
        params.update(n_background=self.n_background, n_permutations=self.n_permutations)
        if hasattr(self, "orders_"):
            params.update(background_rows=len(self.background_),
                          model_rows_per_row=self.model_rows_per_row())
        return params
