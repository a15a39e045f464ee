"""From explainer values ``(n_rows, n_features, n_outputs)`` to the public layout and an
:class:`~scoring.Explanation`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from scoring.core.explanation import Explanation
from scoring.model.schema import InputError

ENGINEERED_UNAVAILABLE = (
    "this explainer computes one value per raw column (it switches each raw column's "
    "engineered columns together, which is what makes it faithful to the rows you send); "
    "per-engineered-column values need an explainer built on engineered columns "
    "(method='tree' or 'linear', or players='engineered')")


class OutputLayout:
    """Lays out values as interpret-community does: ``(n_rows, n_features)`` for one
    output, ``(n_classes, n_rows, n_features)`` for classes.

    Parameters
    ----------
    classes : class names, or ``None`` for regression. A binary classifier explained on its
        one log-odds output keeps both classes (see :func:`both_classes`).
    output : the explained model output (``"predict_proba"``, ``"predict"``,
        ``"decision_function"``), recorded on every explanation.
    raw_matrix : ``(n_engineered, n_raw)`` 0/1 map from engineered to raw columns, or
        ``None`` without transformations.
    raw_features, engineered_features : column names.
    """

    def __init__(self, classes: list | None, output: str, raw_matrix: np.ndarray | None,
                 raw_features: list[str], engineered_features: list[str]) -> None:
        self.classes = classes
        self.output = output
        self.raw_matrix = raw_matrix
        self.raw_features = raw_features
        self.engineered_features = engineered_features

    @property
    def has_raw(self) -> bool:
        """Whether engineered values can be summed onto raw columns."""
        return self.raw_matrix is not None

    def expected(self, expected: Any) -> float | np.ndarray:
        """Expected values ``(n_outputs,)`` -> a float, or ``(n_classes,)``."""
        expected = np.asarray(expected, dtype=float).reshape(-1)
        if self.classes is None:
            return float(expected[0])
        return both_classes(expected[None, None, :], expected)[1]

    def raw_values(self, get_raw: bool | None, players: str = "engineered") -> bool:
        """The one ``get_raw`` rule: whether values come per raw column. ``None`` means
        whenever there are transformations. ``players`` says what an explainer's values
        are per: ``"engineered"`` columns (summed onto raw columns when asked) or
        ``"raw"`` columns (explainers that switch each raw column's engineered columns
        together: they have no per-engineered-column values). Raises
        :class:`~scoring.InputError` (``field="get_raw"``) for what cannot be given."""
        if get_raw and not self.has_raw:
            raise InputError("values per raw column (get_raw) need an explainer fitted with "
                             "transformations; this model's features are already raw",
                             reason="get_raw_unavailable", field="get_raw")
        if get_raw is False and players == "raw" and self.has_raw:
            raise InputError(ENGINEERED_UNAVAILABLE, reason="engineered_unavailable",
                             field="get_raw")
        return self.has_raw and get_raw is not False

    def has_engineered(self, players: str = "engineered") -> bool:
        """Whether an explainer whose values are per ``players`` can give values per
        engineered column that differ from its raw ones (:meth:`raw_values` with
        ``get_raw=False``)."""
        return self.has_raw and players != "raw"

    def values(self, values: np.ndarray, get_raw: bool | None,
               players: str = "engineered") -> np.ndarray:
        """``(n_rows, n_players, n_outputs)`` -> the public layout, per raw column as
        :meth:`raw_values` says."""
        raw = self.raw_values(get_raw, players)
        if players == "raw" and self.has_raw:
            missing = len(self.raw_features) - values.shape[1]
            if missing > 0:  # raw columns after the last one the model uses: no effect
                values = np.pad(values, ((0, 0), (0, missing), (0, 0)))
        elif raw:
            values = np.einsum("imo,mr->iro", values, self.raw_matrix)
        if self.classes is None:
            return values[:, :, 0]
        values, _ = both_classes(values, np.zeros(values.shape[-1]))
        return np.transpose(values, (2, 0, 1))

    def explanation(self, values: np.ndarray, expected: Any, rows: Any, X: Any,
                    get_raw: bool | None, method: str, extra: dict | None = None,
                    players: str = "engineered") -> Explanation:
        """An :class:`Explanation` from ``values (n_rows, n_players, n_outputs)``, per raw
        column as :meth:`raw_values` says; its ``data`` are the validated raw ``rows`` (per
        raw column) or ``X``, the same rows as the model takes them (per engineered
        column), when given."""
        raw = self.raw_values(get_raw, players)
        features, shown = (self.raw_features, rows) if raw or not self.has_raw else (
            self.engineered_features, X)
        data = shown.to_numpy() if isinstance(shown, pd.DataFrame) else shown
        return Explanation(features, local_importance_values=self.values(values, raw, players),
                           expected_values=self.expected(expected), classes=self.classes,
                           data=data, method=method, model_output=self.output,
                           raw=raw or not self.has_raw, extra=extra)


def both_classes(values: np.ndarray, expected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A binary classifier's one margin output (log-odds of the second class) as two
    classes: the first class's log-odds are its negative."""
    if values.shape[-1] != 1:
        return values, expected
    return np.concatenate([-values, values], axis=-1), np.concatenate([-expected, expected])
