"""A fitted ``ColumnTransformer`` of imputers, scalers and one-hot encoders applied as the
arithmetic it is: the request path's rows were checked by the input schema already, and
the checks each scikit-learn step repeats on every call cost more than its arithmetic
(most of a one-row request)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

Step = Callable[[np.ndarray], np.ndarray]


class UnknownCategory(ValueError):
    """A category a ``handle_unknown="error"`` encoder refuses: scikit-learn's own
    transform then runs and raises its own message."""


class DirectTransform:
    """``(n_rows, n_engineered)`` floats from validated raw rows, equal to the
    ``ColumnTransformer``'s output (checked on given rows by :meth:`build`).

    Built only from the steps it knows (``SimpleImputer`` without indicators,
    ``StandardScaler``, ``OneHotEncoder`` without dropped or infrequent categories,
    ``"passthrough"``, ``"drop"``, and ``Pipeline`` chains of them); ``None`` otherwise.
    """

    def __init__(self, columns: list[str],
                 blocks: list[tuple[list[int], bool, list[Step], slice]], width: int) -> None:
        self._columns = columns
        self._blocks = blocks
        self._width = width

    @classmethod
    def build(cls, column_transformer: ColumnTransformer,
              rows: pd.DataFrame) -> DirectTransform | None:
        """The direct form of ``column_transformer``, or ``None`` when a step is one it
        does not know or the two disagree on ``rows`` and on those rows with every value
        missing (the imputers' part)."""
        if not hasattr(column_transformer, "feature_names_in_"):
            return None  # fitted on an array: columns by position, not by the rows' names
        names = [str(c) for c in column_transformer.feature_names_in_]
        numeric = {name: pd.api.types.is_numeric_dtype(rows[name])
                   and not pd.api.types.is_bool_dtype(rows[name]) for name in names}
        indices = column_transformer._transformer_to_input_indices  # as RawFeatureMap reads
        blocks, width = [], 0
        for name, transformer, _ in column_transformer.transformers_:
            columns = [names[i] for i in indices.get(name, [])]
            if transformer == "drop" or not columns:
                continue
            kinds = {numeric[c] for c in columns}
            steps = _steps(transformer)
            if steps is None or len(kinds) != 1:
                return None
            where = column_transformer.output_indices_[name]
            blocks.append((indices[name], kinds.pop(), steps, where))
            width = max(width, where.stop)
        direct = cls(names, blocks, width)
        return direct if direct._agrees(column_transformer, rows) else None

    def __call__(self, rows: pd.DataFrame) -> np.ndarray:
        """Raises :class:`UnknownCategory` for a category an encoder refuses."""
        if list(rows.columns) != self._columns:
            rows = rows[self._columns]
        # one conversion of the whole table (a float goes through a Python float exactly):
        # pandas' per-column access costs more than the arithmetic of a one-row request
        values = rows.to_numpy(dtype=object)
        out = np.empty((len(rows), self._width))
        for columns, numeric, steps, where in self._blocks:
            block = values[:, columns]
            if numeric:
                block = block.astype(float)
            for step in steps:
                block = step(block)
            out[:, where] = block
        return out

    def _agrees(self, column_transformer: ColumnTransformer, rows: pd.DataFrame) -> bool:
        missing = rows.iloc[:1].copy()
        for name in missing.columns:
            missing[name] = np.nan if pd.api.types.is_numeric_dtype(missing[name]) else None
        for probe in (rows, missing):
            try:
                expected = column_transformer.transform(probe)
            except (ValueError, TypeError):  # scikit-learn refuses these rows: no answer
                continue
            try:
                expected = np.asarray(expected.toarray() if hasattr(expected, "toarray")
                                      else expected, dtype=float)
                ours = self(probe)
            except (ValueError, TypeError):
                return False
            if not np.array_equal(ours, expected, equal_nan=True):
                return False
        return True


def _steps(transformer: Any) -> list[Step] | None:
    """The arithmetic of a transformer or a ``Pipeline`` chain of them, step by step."""
    if transformer == "passthrough":
        return []
    chain = [s for _, s in transformer.steps] if type(transformer) is Pipeline \
        else [transformer]
    steps = []
    for step in chain:
        if step is None or step == "passthrough":
            continue
        direct = _STEPS.get(type(step))
        made = direct(step) if direct is not None else None
        if made is None:
            return None
        steps.append(made)
    return steps


class _Impute:
    """``SimpleImputer``: NaN (in float and object arrays alike, as scikit-learn finds
    them: ``X != X``) replaced by the column's statistic."""

    def __init__(self, statistics: np.ndarray) -> None:
        self.statistics = statistics

    @classmethod
    def of(cls, imputer: SimpleImputer) -> _Impute | None:
        missing = imputer.missing_values
        if imputer.add_indicator or not (isinstance(missing, float) and np.isnan(missing)) \
                or any(_is_missing(s) for s in imputer.statistics_):
            return None  # indicators, other markers, or columns empty in training
        return cls(imputer.statistics_)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        mask = X != X
        if not mask.any():
            return X
        X = X.copy()
        X[mask] = np.broadcast_to(self.statistics.astype(X.dtype, copy=False), X.shape)[mask]
        return X


class _Standardise:
    """``StandardScaler``: a float copy, then scikit-learn's two in-place steps."""

    def __init__(self, mean: np.ndarray | None, scale: np.ndarray | None) -> None:
        self.mean, self.scale = mean, scale

    @classmethod
    def of(cls, scaler: StandardScaler) -> _Standardise:
        return cls(scaler.mean_ if scaler.with_mean else None,
                   scaler.scale_ if scaler.with_std else None)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        X = np.array(X, dtype=float)
        if self.mean is not None:
            X -= self.mean
        if self.scale is not None:
            X /= self.scale
        return X


class _OneHot:
    """``OneHotEncoder``: each value looked up in its column's categories through a dict,
    as scikit-learn maps object categories (``sklearn.utils._encode``); an unknown one is a
    row of zeros, or :class:`UnknownCategory` for ``handle_unknown="error"``."""

    def __init__(self, categories: list[list], refuse: bool) -> None:
        self.lookups = [{c: i for i, c in enumerate(column)} for column in categories]
        self.offsets = np.cumsum([0] + [len(column) for column in categories]).tolist()
        self.refuse = refuse

    @classmethod
    def of(cls, encoder: OneHotEncoder) -> _OneHot | None:
        if encoder.drop_idx_ is not None or encoder.min_frequency is not None or \
                encoder.max_categories is not None or \
                encoder.handle_unknown not in ("ignore", "error") or \
                any(_is_missing(c) for column in encoder.categories_ for c in column):
            return None
        return cls([column.tolist() for column in encoder.categories_],
                   encoder.handle_unknown == "error")

    def __call__(self, X: np.ndarray) -> np.ndarray:
        out = np.zeros((len(X), self.offsets[-1]))
        for j, lookup in enumerate(self.lookups):
            for i, value in enumerate(X[:, j].tolist()):
                k = lookup.get(value)
                if k is not None:
                    out[i, self.offsets[j] + k] = 1.0
                elif self.refuse:
                    raise UnknownCategory(f"unknown category {value!r}")
        return out


_STEPS: dict[type, Callable[[Any], Step | None]] = {
    SimpleImputer: _Impute.of, StandardScaler: _Standardise.of, OneHotEncoder: _OneHot.of}


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)
