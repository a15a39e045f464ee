"""Map engineered features back to the raw columns they were made from.

The importances of all engineered columns made from one raw column are summed onto it,
as the Azure SDK does; this needs one-to-many transformations (each engineered column
comes from exactly one raw column).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from scoring.core.codec import decode
from scoring.model.direct import DirectTransform, UnknownCategory


class RawFeatureMap:
    """Applies fitted transformations to raw rows and maps importances back to raw columns.

    Parameters
    ----------
    transformations : a fitted ``sklearn.compose.ColumnTransformer``, or a list of
        ``(columns, transformer)`` tuples as in sklearn-pandas' ``DataFrameMapper``
        (``columns`` a name or list of names; ``transformer`` ``None`` for passthrough).
        Unfitted transformers in the list are fitted on ``raw_examples``.
    raw_examples : raw rows (DataFrame with the original columns).

    Attributes
    ----------
    raw_features : raw column names, in input order.
    engineered_features : names of the transformed columns (``get_feature_names_out``).
    matrix : ``(n_engineered, n_raw)`` 0/1 array, ``matrix[e, r] = 1`` when engineered
        column ``e`` was made from raw column ``r``.
    direct : the :class:`~scoring.model.direct.DirectTransform` that :meth:`transform`
        applies, or ``None`` (the transformations themselves).
    """

    # the default of maps unpickled from versions before the direct form (scoring migrate)
    direct: DirectTransform | None = None

    def __init__(self, transformations: Any, raw_examples: pd.DataFrame) -> None:
        if not isinstance(raw_examples, pd.DataFrame):
            raise TypeError(
                "with transformations, initialization_examples must be a pandas DataFrame of "
                f"raw rows (the columns the transformations select), got "
                f"{type(raw_examples).__name__}"
            )
        self.raw_features = [str(c) for c in raw_examples.columns]
        if isinstance(transformations, ColumnTransformer):
            try:
                check_is_fitted(transformations)
            except NotFittedError:
                raise NotFittedError("the ColumnTransformer passed as transformations is not "
                                     "fitted; fit it (or the pipeline holding it) first") from None
            self._steps = None
            self._column_transformer = transformations
            blocks = _column_transformer_blocks(transformations, self.raw_features)
            self.check_direct(raw_examples.iloc[:20])
        elif isinstance(transformations, (list, tuple)):
            self._column_transformer = None
            self._steps = _fit_steps(transformations, raw_examples)
            blocks = [_block(cols, trans, raw_examples[cols]) for cols, trans in self._steps]
        else:
            raise TypeError(
                "transformations must be a fitted sklearn ColumnTransformer or a list of "
                f"(columns, transformer) tuples, got {type(transformations).__name__}"
            )
        self.engineered_features = [name for names, _ in blocks for name in names]
        index = {name: i for i, name in enumerate(self.raw_features)}
        self.matrix = np.zeros((len(self.engineered_features), len(self.raw_features)))
        row = 0
        for _, sources in blocks:
            for source in sources:
                self.matrix[row, index[source]] = 1.0
                row += 1
        width = self.transform(raw_examples.iloc[:2]).shape[1]
        if width != len(self.engineered_features):
            raise ValueError(
                f"the transformations output {width} columns but their feature names list "
                f"{len(self.engineered_features)}; cannot map engineered features to raw ones"
            )

    @property
    def groups(self) -> np.ndarray:
        """The raw column index of each engineered column, ``(n_engineered,)``."""
        return self.matrix.argmax(axis=1)

    def check_direct(self, rows: pd.DataFrame) -> None:
        """Transform with the ``ColumnTransformer``'s arithmetic (:class:`~scoring.model.
        direct.DirectTransform`) when it has one and gives scikit-learn's output on raw
        ``rows``; otherwise with the ``ColumnTransformer`` itself."""
        self.direct = None if self._column_transformer is None else DirectTransform.build(
            self._column_transformer, rows)

    def bind(self, column_transformer: ColumnTransformer, rows: pd.DataFrame) -> None:
        """Transform with ``column_transformer`` from now on (say, the bundle's own copy of
        the same fitted object); it must give the same engineered columns (its direct form
        is checked on raw ``rows``)."""
        names = [str(n) for n in column_transformer.get_feature_names_out()]
        own = [str(n) for n in self._column_transformer.get_feature_names_out()] \
            if self._column_transformer is not None else None
        if own != names:
            raise ValueError("the model's ColumnTransformer makes other columns than the one "
                             "this explainer was built with")
        self._column_transformer = column_transformer
        self.check_direct(rows)

    @property
    def transformations(self) -> Any:
        """The fitted transformations: the ``ColumnTransformer`` or the ``(columns,
        transformer)`` list."""
        return self._column_transformer if self._column_transformer is not None \
            else [tuple(step) for step in self._steps]

    def to_state(self, arrays: Any) -> dict:
        """Names and matrix as JSON (the transformers go to the model file)."""
        return {"raw_features": self.raw_features,
                "engineered_features": self.engineered_features,
                "matrix": {"__array__": arrays.put(self.matrix)}}

    @classmethod
    def from_state(cls, state: dict, arrays: Any, transformations: Any,
                   rows: pd.DataFrame) -> RawFeatureMap:
        """The map :meth:`to_state` saved, transforming with ``transformations`` (its
        direct form checked on raw ``rows``)."""
        raw_map = cls.__new__(cls)
        raw_map.raw_features = list(state["raw_features"])
        raw_map.engineered_features = list(state["engineered_features"])
        raw_map.matrix = decode(state["matrix"], arrays)
        if isinstance(transformations, ColumnTransformer):
            raw_map._column_transformer, raw_map._steps = transformations, None
        elif isinstance(transformations, (list, tuple)):
            raw_map._column_transformer = None
            raw_map._steps = [(list(cols), trans) for cols, trans in transformations]
        else:
            raise ValueError("the model file holds no transformations for this explainer")
        raw_map.check_direct(rows)
        return raw_map

    def transform(self, raw_rows: pd.DataFrame) -> np.ndarray:
        """Raw rows -> dense engineered array ``(n_rows, n_engineered)``."""
        if self.direct is not None:
            try:
                return self.direct(raw_rows)
            except UnknownCategory:  # scikit-learn's transform refuses it in its own words
                pass
        if self._column_transformer is not None:
            return _dense(self._column_transformer.transform(raw_rows))
        parts = [_dense(trans.transform(raw_rows[cols])) if trans is not None
                 else raw_rows[cols].to_numpy(dtype=float) for cols, trans in self._steps]
        return np.hstack([p.reshape(len(raw_rows), -1) for p in parts]).astype(float)


def _dense(out: Any) -> np.ndarray:
    if hasattr(out, "toarray"):
        out = out.toarray()
    return np.asarray(out, dtype=float)


def _fit_steps(transformations: Sequence, raw: pd.DataFrame) -> list[tuple[list[str], Any]]:
    steps = []
    for i, item in enumerate(transformations):
        if not (isinstance(item, tuple) and len(item) >= 2):
            raise TypeError(f"transformations[{i}] must be a (columns, transformer) tuple, "
                            f"got {item!r}")
        cols, trans = item[0], item[1]
        cols = [str(c) for c in ([cols] if isinstance(cols, str) else cols)]
        missing = [c for c in cols if c not in raw.columns]
        if missing:
            raise ValueError(f"transformations[{i}] selects unknown column(s) {missing}; raw "
                             f"columns are {list(raw.columns)}")
        if trans is not None:
            try:
                check_is_fitted(trans)
            except NotFittedError:
                trans = clone(trans).fit(raw[cols])
        steps.append((cols, trans))
    return steps


def _column_transformer_blocks(ct: ColumnTransformer,
                               raw_features: list[str]) -> list[tuple[list[str], list[str]]]:
    names_in = [str(c) for c in getattr(ct, "feature_names_in_", raw_features)]
    if names_in != raw_features:
        raise ValueError(f"the ColumnTransformer was fitted on columns {names_in}, but the "
                         f"initialization examples have {raw_features}")
    out_names = list(ct.get_feature_names_out())
    blocks, position = [], 0
    indices = ct._transformer_to_input_indices  # public API gives names only, not per block
    for name, trans, _ in ct.transformers_:
        cols = [names_in[i] for i in indices.get(name, [])]
        if trans == "drop" or not cols:
            continue
        if trans == "passthrough":
            own = cols
        else:
            own = [str(n) for n in trans.get_feature_names_out(cols)]
        display = out_names[position:position + len(own)]
        position += len(own)
        blocks.append((display, _sources(name, own, cols)))
    if position != len(out_names):
        raise ValueError("could not align the ColumnTransformer's output columns with its "
                         "transformers")
    return blocks


def _block(cols: list[str], trans: Any, raw: pd.DataFrame) -> tuple[list[str], list[str]]:
    if trans is None:
        return cols, cols
    if hasattr(trans, "get_feature_names_out"):
        own = [str(n) for n in trans.get_feature_names_out(cols)]
    else:
        width = _dense(trans.transform(raw.iloc[:1])).reshape(1, -1).shape[1]
        own = [f"{cols[0]}_{k}" for k in range(width)] if len(cols) == 1 else cols
    return own, _sources(type(trans).__name__, own, cols)


def _sources(name: str, outputs: list[str], inputs: list[str]) -> list[str]:
    """The raw column each output column comes from."""
    if len(inputs) == 1:
        return [inputs[0]] * len(outputs)
    sources = []
    for out in outputs:
        # longest input name that the output name is, or starts with (OneHotEncoder: col_cat)
        candidates = [c for c in inputs if out == c or out.startswith(c + "_")
                      or out.endswith("_" + c)]
        if not candidates:
            raise ValueError(
                f"transformer {name!r} makes column {out!r} from several raw columns {inputs}; "
                "raw-feature explanations need one-to-many transformations (each engineered "
                "column made from one raw column). Give each raw column its own transformer, "
                "or explain engineered features (get_raw=False)"
            )
        sources.append(max(candidates, key=len))
    return sources
