"""What ``ExplanationBundle.score`` answers for a table, as a table: the one layout of
``scoring explain``'s CSV, Parquet and Dask outputs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from scoring.core.explanation import Explanation

# the columns around the importances; a feature of one of these names would be ambiguous
OUTPUT_COLUMNS = ("row", "class", "prediction", "probability", "expected_value")


def check_feature_names(features: Sequence[str]) -> None:
    """``ValueError`` when a feature name is one of ``OUTPUT_COLUMNS``."""
    clash = sorted(set(OUTPUT_COLUMNS).intersection(features))
    if clash:
        raise ValueError(f"feature name(s) {clash} collide with the output columns")


def scored_table(explanation: Explanation, predictions: np.ndarray,
                 probabilities: np.ndarray | None, first_row: int = 0) -> pd.DataFrame:
    """One line per row (and class, rows major): ``row`` (from ``first_row``), ``class``,
    ``prediction``, ``probability`` of that class (models with ``predict_proba``), one
    importance column per feature of ``explanation``, ``expected_value``."""
    values = explanation.local_importance_values
    n = values.shape[-2]
    row_ids = np.arange(first_row, first_row + n, dtype=np.int64)
    if values.ndim == 2:
        frame = pd.DataFrame({"row": row_ids, "prediction": predictions})
        frame = pd.concat([frame, pd.DataFrame(values, columns=explanation.features)], axis=1)
        frame["expected_value"] = float(explanation.expected_values)
        return frame
    classes = explanation.classes
    k = len(classes)
    frame = pd.DataFrame({"row": np.repeat(row_ids, k),
                          "class": np.tile(np.asarray(classes, dtype=object), n),
                          "prediction": np.repeat(np.asarray(predictions), k)})
    if probabilities is not None:
        probabilities = np.asarray(probabilities, dtype=float)
        # a model explained on fewer outputs than it has probabilities has none per line
        frame["probability"] = probabilities.reshape(-1) if probabilities.shape[1] == k \
            else np.nan
    stacked = np.transpose(values, (1, 0, 2)).reshape(n * k, values.shape[-1])
    frame = pd.concat([frame, pd.DataFrame(stacked, columns=explanation.features)], axis=1)
    frame["expected_value"] = np.tile(np.asarray(explanation.expected_values, dtype=float), n)
    return frame
