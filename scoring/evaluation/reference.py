"""Reference Shapley values that scoring explainers are measured against."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from scoring.model.rows import take_rows
from scoring.model.spec import ModelSpec
from scoring.shapley.background import sample_background
from scoring.shapley.exact import MAX_EXACT_FEATURES, exact_shapley_values
from scoring.shapley.masking import n_players
from scoring.shapley.permutation import stratified_permutation_values

_MIN_BACKGROUND = 100


def reference_values(spec: ModelSpec, X_train: Any, X: Any, n_background: int = 1000,
                     nsamples: int = 64, seconds: float = 20.0,
                     random_state: int | None = 0,
                     verbose: bool = False) -> tuple[np.ndarray, dict]:
    """Ground truth for rows ``X`` (as the model takes them): interventional Shapley values
    of the raw columns (each raw column's engineered columns switched together, as the
    rows users send) with up to ``n_background`` rows of ``X_train`` (a uniform sample) as
    background, in the public layout of ``spec``.

    Exact by enumeration when the model evaluates every coalition in about ``seconds``;
    otherwise antithetic permutation sampling stratified over the background rows, with as
    many walks as fit in ``seconds`` but at least ``nsamples`` model rows (one antithetic
    pair) per background row and explained row. A model too slow for that keeps fewer
    background rows (down to 100) so the reference stays near ``seconds``. ``verbose``
    shows a progress bar over the explained rows on stderr.
    """
    rng = np.random.default_rng(random_state)
    background, _ = sample_background(X_train, n_background, rng)
    f = spec.function
    groups = spec.raw_map.groups if spec.layout.has_raw else None
    M = n_players(X, groups)
    # time one walk per probe background row (model calls and the numpy around them: for
    # cheap models the latter dominates), then afford model rows per explained row within
    # the time given
    probe = take_rows(background, np.arange(min(len(background), 256)))
    for _ in range(2):  # the first call warms up (allocations, thread pools)
        started = time.perf_counter()
        stratified_permutation_values(f, take_rows(X, [0]), probe, 1,
                                      np.random.default_rng(0), groups)
    per_model_row = (time.perf_counter() - started) / (len(probe) * 2 * M)
    per_row = seconds / per_model_row / len(X)
    # a slow model keeps fewer background rows rather than overrunning the time: at least
    # nsamples model rows (one antithetic pair) each, and never fewer than 100 rows
    keep = min(len(background), max(_MIN_BACKGROUND, int(per_row / max(nsamples, 2 * M))))
    background = take_rows(background, np.arange(keep))
    affordable = per_row / len(background)
    if M <= MAX_EXACT_FEATURES and 2**M <= affordable:
        def values(rows: Any) -> np.ndarray:
            return exact_shapley_values(f, rows, background, groups=groups)
        info = {"kind": "exact", "n_coalitions": 2**M}
    else:
        pairs = max(1, int(max(affordable, nsamples) / (2 * M)))

        def values(rows: Any) -> np.ndarray:
            return stratified_permutation_values(f, rows, background, pairs, rng, groups)
        info = {"kind": "permutation", "permutations_per_background_row": 2 * pairs}
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
