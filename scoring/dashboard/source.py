"""Where the dashboard's rows come from: a sample explained when the bundle is built, or
an explanation file written by ``scoring explain``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from scoring.artifacts.bundle import ExplanationBundle
from scoring.core.explanation import Explanation
from scoring.dashboard.data import DashboardData
from scoring.model.rows import n_rows as count_rows
from scoring.model.rows import sample_rows, take_rows

# rows of the training data explained and stored in a bundle for its dashboard
DEFAULT_DATASET_ROWS = 1_000
# ...as many of them as this many model evaluations explain (an explainer that calls the
# model on hybrid rows, as kernel and permutation do, would otherwise add minutes to
# distill), but at least MIN_DATASET_ROWS
DATASET_MODEL_ROWS = 1_000_000
MIN_DATASET_ROWS = 10


def explain_dataset(bundle: ExplanationBundle, X: Any, n_rows: int = DEFAULT_DATASET_ROWS,
                    random_state: int = 0,
                    model_rows: int = DATASET_MODEL_ROWS) -> Explanation:
    """The local explanation of a uniform sample of at most ``n_rows`` rows of ``X`` (with
    the rows), as the service explains them: what a bundle stores for its dashboard. An
    explainer that calls the model explains fewer rows: as many as ``model_rows`` model
    evaluations explain (at least ``MIN_DATASET_ROWS``), the same on any machine."""
    rows, _ = sample_rows(X, n_rows, np.random.default_rng(random_state))
    total = count_rows(rows)
    per_row = bundle.scoring_explainer.model_rows_per_row()
    keep = min(total, max(MIN_DATASET_ROWS, model_rows // max(per_row, 1)))
    explanation = bundle.score(take_rows(rows, np.arange(keep)), predict=False,
                               keep_rows=True).explanation
    explanation.extra["sampled_from"] = len(X)
    return explanation


def read_explanation_file(path: str | Path) -> Explanation:
    """An explanation file of ``scoring explain --output FILE.json``; ``ValueError`` naming
    the file when it cannot be read or holds no local values with their rows."""
    try:
        explanation = Explanation.from_json(Path(path).read_text())
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"explanation file {path}: cannot read it: {exc}") from None
    if not explanation.has_local or explanation.data is None:
        raise ValueError(f"explanation file {path} holds no local values with their rows; "
                         "write one with `scoring explain --data FILE --output FILE.json`")
    return explanation


def dashboard_data(bundle: ExplanationBundle,
                   explanation_file: str | Path | None = None) -> DashboardData | None:
    """The rows the dashboard of ``bundle`` draws: those of ``explanation_file`` when given,
    else the bundle's stored dataset explanation, else ``None``."""
    if explanation_file:
        explanation, source = read_explanation_file(explanation_file), str(explanation_file)
    elif bundle.dataset_explanation is not None:
        explanation = bundle.dataset_explanation
        source = f"bundle {bundle.tag}: {explanation.num_examples} rows sampled from " \
                 f"{explanation.extra.get('sampled_from', '?')} training rows"
    else:
        return None
    raw_schema = explanation.raw and explanation.features == bundle.feature_names
    schema = bundle.input_schema
    # rows explained per raw column, by an explainer that also has per-engineered values
    engineered = explanation.raw and bundle.spec.layout.has_engineered(
        bundle.scoring_explainer.players_)
    return DashboardData(explanation, kinds=list(schema.kinds) if raw_schema else None,
                         categories=schema.categories if raw_schema else None, source=source,
                         engineered=engineered)
