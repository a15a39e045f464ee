"""Reference Shapley values that scoring explainers are measured against."""

from __future__ import annotations

from typing import Any

import numpy as np
from tqdm.auto import tqdm

from scoring.model.rows import take_rows
from scoring.model.spec import ModelSpec
from scoring.shapley.background import sample_background
from scoring.shapley.exact import MAX_EXACT_FEATURES, exact_shapley_values
from scoring.shapley.masking import n_players
from scoring.shapley.permutation import stratified_permutation_values

# background rows a reference keeps at least (exact or sampled)
_MIN_BACKGROUND = 100
# model rows per explained row: enumerates every coalition of up to 8 players on 128
# background rows, or for 30 players one antithetic walk pair from each of 546
DEFAULT_BUDGET = 32_768


def reference_values(spec: ModelSpec, X_train: Any, X: Any, n_background: int = 1000,
                     budget: int = DEFAULT_BUDGET, random_state: int | None = 0,
                     verbose: bool = False) -> tuple[np.ndarray, dict]:
    """Ground truth for rows ``X`` (as the model takes them): interventional Shapley values
    of the raw columns (each raw column's engineered columns switched together, as the
    rows users send) with up to ``n_background`` rows of ``X_train`` (a uniform sample) as
    background, in the public layout of ``spec``.

    ``budget`` is in model rows per explained row, so the same rows give the same values
    on any machine, idle or busy. Exact by enumeration when every coalition on at least
    100 background rows fits in it (as many background rows as fit); otherwise antithetic
    permutation sampling stratified over the background rows: one walk pair from each of
    as many background rows as the budget affords (at least 100), more pairs each when
    the sample has fewer rows. ``verbose`` shows a progress bar over the explained rows on
    stderr.
    """
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ValueError(f"the reference budget must be a positive integer (model rows per "
                         f"explained row), got {budget!r}")
    rng = np.random.default_rng(random_state)
    background, _ = sample_background(X_train, n_background, rng)
    f = spec.function
    groups = spec.raw_map.groups if spec.layout.has_raw else None
    M = n_players(X, groups)
    n_background = len(background)
    if M <= MAX_EXACT_FEATURES and 2**M * min(n_background, _MIN_BACKGROUND) <= budget:
        background = take_rows(background, np.arange(min(n_background, budget // 2**M)))

        def values(rows: Any) -> np.ndarray:
            return exact_shapley_values(f, rows, background, groups=groups)
        info = {"kind": "exact", "n_coalitions": 2**M}
    else:
        keep = min(n_background, max(_MIN_BACKGROUND, budget // (2 * M)))
        background = take_rows(background, np.arange(keep))
        pairs = max(1, budget // (keep * 2 * M))

        def values(rows: Any) -> np.ndarray:
            return stratified_permutation_values(f, rows, background, pairs, rng, groups)
        info = {"kind": "permutation", "permutations_per_background_row": 2 * pairs}
    info["budget"] = int(budget)
    info["background_rows"] = len(background)
    n = X.shape[0]
    # about ten steps, so the bar moves on a slow model without many small model calls
    step = max(1, -(-n // 10))
    parts = []
    with tqdm(total=n, disable=not verbose, unit="row", leave=False,
              desc=f"[distill] reference ({info['kind']})") as bar:
        for start in range(0, n, step):
            parts.append(values(take_rows(X, np.arange(start, min(n, start + step)))))
            bar.update(min(step, n - start))
    phi = np.concatenate(parts)
    return spec.layout.values(phi, get_raw=spec.layout.has_raw, players="raw"), info
