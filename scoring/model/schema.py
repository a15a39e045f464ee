"""The columns a model takes, and the validation that turns user rows into model input."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd


class InputError(ValueError):
    """Rows that the model cannot take. ``row`` and ``field`` point at the culprit when known."""

    def __init__(self, message: str, *, row: int | None = None, field: str | None = None,
                 reason: str = "invalid_input") -> None:
        super().__init__(message)
        self.row = row
        self.field = field
        self.reason = reason

    def to_dict(self) -> dict:
        out = {"error": str(self), "reason": self.reason}
        if self.row is not None:
            out["row"] = self.row
        if self.field is not None:
            out["field"] = self.field
        return out


_STRING_DTYPES = ("str", "string")
# what a number column converts at once; anything else is checked value by value
_PLAIN_NUMBERS = frozenset({int, float, np.float64, np.float32, np.int64, np.int32})


@dataclass
class InputSchema:
    """Column names, kinds (``"numeric"`` or ``"categorical"``) and, for categorical
    columns, the categories seen in training.

    ``allow_nan`` says whether missing values may reach the model (a pipeline with an
    imputer takes them, a bare SVC does not).
    """

    columns: list[str]
    kinds: list[str]
    categories: dict[str, list] = field(default_factory=dict)
    allow_nan: bool = False
    from_dataframe: bool = False
    # pandas dtypes of the categorical training columns ("str", "object", "category"...):
    # validated rows get the same, so missing values reach the model as pandas gave them
    dtypes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_data(cls, X: Any, features: Sequence[str] | None = None,
                  allow_nan: bool = False) -> InputSchema:
        """Infer the schema from training rows (DataFrame or 2-D array)."""
        if isinstance(X, pd.DataFrame):
            columns = [str(c) for c in X.columns]
            if features is not None and list(map(str, features)) != columns:
                raise ValueError(
                    f"features {list(features)} do not match the DataFrame's columns {columns}"
                )
            kinds, categories, dtypes = [], {}, {}
            for name in X.columns:
                if pd.api.types.is_numeric_dtype(X[name]) and not pd.api.types.is_bool_dtype(
                        X[name]):
                    kinds.append("numeric")
                else:
                    kinds.append("categorical")
                    categories[str(name)] = sorted(
                        {_plain(v) for v in X[name].dropna().unique()}, key=str)
                    dtypes[str(name)] = str(X[name].dtype)
            return cls(columns, kinds, categories, allow_nan=allow_nan, from_dataframe=True,
                       dtypes=dtypes)
        array = np.asarray(X)
        if array.ndim != 2:
            raise ValueError(f"training data must be 2-D (n_rows, n_features), got {array.ndim}-D")
        n = array.shape[1]
        if features is None:
            columns = [f"x{i}" for i in range(n)]
        else:
            columns = [str(f) for f in features]
            if len(columns) != n:
                raise ValueError(f"{len(columns)} feature names given for {n} columns of data")
        return cls(columns, ["numeric"] * n, {}, allow_nan=allow_nan, from_dataframe=False)

    @property
    def n_features(self) -> int:
        return len(self.columns)

    @property
    def all_numeric(self) -> bool:
        return all(k == "numeric" for k in self.kinds)

    @cached_property
    def _known_categories(self) -> dict[str, frozenset]:
        # sets, not pandas' isin: a one-row request looks each value up once
        return {name: frozenset(_plain(v) for v in known)
                for name, known in self.categories.items()}

    # -- validation --------------------------------------------------------------------
    def validate(self, data: Any, unseen: list | None = None) -> np.ndarray | pd.DataFrame:
        """Check rows and return them as the model takes them.

        Accepts a DataFrame (columns by name, extra columns refused), a 1-D or 2-D array or
        nested lists in training column order, one record (dict) or a list of records.
        Returns a float array for all-numeric schemas fitted on arrays, a DataFrame with the
        training columns otherwise. Raises :class:`InputError` naming the row and field.

        ``unseen``: a list that receives ``{"row", "field", "value", "warning"}`` for every
        value of a categorical column that training never saw (the model's encoder decides
        what it means), by row then column: found while each value is checked anyway.
        """
        if not self.from_dataframe and self.all_numeric:
            numbers = _numeric_table(data)
            if numbers is not None:
                return self._validate_array(numbers)
        columns = self._columns(data)
        if len(columns[0]) == 0:
            raise InputError("no rows to score: the input is empty", reason="empty_input")
        checked, found = {}, []
        for name, kind, values in zip(self.columns, self.kinds, columns, strict=True):
            checked[name] = self._check_column(values, name, kind)
            if unseen is not None and name in self._known_categories:
                found += self._unseen(checked[name], name)
        if unseen is not None:
            unseen += sorted(found, key=lambda warning: warning["row"])  # stable: by column
        if self.from_dataframe or not self.all_numeric:
            # one DataFrame, built once from typed columns
            return pd.DataFrame(checked, copy=False)
        return np.column_stack(list(checked.values()))

    def _unseen(self, values: Any, name: str) -> list[dict]:
        known = self._known_categories[name]
        return [{"row": i, "field": name, "value": _plain(value),
                 "warning": "category not seen in training"}
                for i, value in enumerate(values)
                if not _missing(value) and not _known(value, known)]

    def _validate_array(self, data: np.ndarray) -> np.ndarray:
        # the request-path fast lane: no DataFrame for a numeric array
        if data.shape[0] == 0:
            raise InputError("no rows to score: the input is empty", reason="empty_input")
        if data.shape[1] != self.n_features:
            raise InputError(
                f"rows have {data.shape[1]} columns; the model takes {self.n_features} "
                f"({', '.join(self.columns)})", reason="wrong_column_count")
        array = data.astype(float, copy=False)
        infinite = np.isinf(array)
        if infinite.any():
            i, j = (int(k[0]) for k in np.nonzero(infinite))
            raise InputError(f"row {i}, field {self.columns[j]!r}: infinite values are not "
                             "accepted", row=i, field=self.columns[j], reason="not_finite")
        missing = np.isnan(array)
        if missing.any() and not self.allow_nan:
            i, j = (int(k[0]) for k in np.nonzero(missing))
            raise InputError(f"row {i}, field {self.columns[j]!r}: missing value (NaN); this "
                             "model cannot take missing values", row=i, field=self.columns[j],
                             reason="missing_value")
        return array

    def _columns(self, data: Any) -> list[Sequence]:
        """The values of each training column, in training order, as the user sent them
        (shape, names and row kinds checked)."""
        if isinstance(data, pd.DataFrame):
            frame = self._frame_from_named(data, "DataFrame")
            return [frame[name].to_numpy(dtype=object) for name in self.columns]
        if isinstance(data, Mapping):
            return self._columns_of_records([data])
        if isinstance(data, (list, tuple)) and len(data) > 0 and all(
                isinstance(r, Mapping) for r in data):
            return self._columns_of_records(list(data))
        if isinstance(data, (list, tuple)) and len(data) > 0 and any(
                isinstance(r, Mapping) for r in data):
            bad = next(i for i, r in enumerate(data) if not isinstance(r, Mapping))
            raise InputError("rows mix records (objects) and lists; send one kind",
                             row=bad, reason="bad_row_type")
        if isinstance(data, pd.Series):
            data = data.to_numpy()[None, :]
        try:
            array = np.asarray(data, dtype=object)
        except ValueError as exc:
            raise InputError(f"rows are not a rectangular table: {exc}",
                             reason="bad_shape") from None
        if array.size == 0:
            raise InputError("no rows to score: the input is empty", reason="empty_input")
        if array.ndim == 1:
            if any(isinstance(v, (list, tuple)) for v in array):
                # ragged nested lists: find the first row of the wrong length
                for i, row in enumerate(array):
                    if not isinstance(row, (list, tuple)) or len(row) != self.n_features:
                        n = len(row) if isinstance(row, (list, tuple)) else 1
                        raise InputError(
                            f"row {i} has {n} values; the model takes {self.n_features} "
                            f"({', '.join(self.columns)})", row=i, reason="wrong_column_count")
            array = array[None, :]
        if array.ndim != 2:
            raise InputError(f"rows must be a 2-D table, got a {array.ndim}-D array",
                             reason="bad_shape")
        if array.shape[1] != self.n_features:
            raise InputError(
                f"rows have {array.shape[1]} columns; the model takes {self.n_features} "
                f"({', '.join(self.columns)})", reason="wrong_column_count")
        return list(array.T)

    def _frame_from_named(self, frame: pd.DataFrame, what: str) -> pd.DataFrame:
        columns = [str(c) for c in frame.columns]
        if columns == [str(i) for i in range(len(columns))] and not self.columns == columns:
            # an array wrapped in a DataFrame without names: positional
            if len(columns) != self.n_features:
                raise InputError(
                    f"rows have {len(columns)} columns; the model takes {self.n_features}",
                    reason="wrong_column_count")
            return pd.DataFrame(frame.to_numpy(dtype=object), columns=self.columns)
        unknown = [c for c in columns if c not in self.columns]
        if unknown:
            raise InputError(f"unknown column(s) {_few(unknown)}; the model takes {self.columns}",
                             field=unknown[0], reason="unknown_column")
        missing = [c for c in self.columns if c not in columns]
        if missing:
            raise InputError(f"missing column(s) {missing} in the {what}",
                             field=missing[0], reason="missing_column")
        renamed = frame.copy()
        renamed.columns = columns
        return renamed[self.columns].reset_index(drop=True)

    def _columns_of_records(self, records: list[Mapping]) -> list[list]:
        for i, record in enumerate(records):
            if all(type(k) is str for k in record) and record.keys() == self._column_set:
                continue  # the usual record: every training column, nothing else
            unknown = [k for k in record if str(k) not in self._column_set]
            if unknown:
                raise InputError(f"row {i}: unknown field(s) {_few(unknown)}; the model takes "
                                 f"{self.columns}", row=i, field=str(unknown[0]),
                                 reason="unknown_column")
            named = {str(k) for k in record}
            missing = [c for c in self.columns if c not in named]
            if missing:
                raise InputError(f"row {i}: missing field(s) {missing}", row=i,
                                 field=missing[0], reason="missing_column")
            records[i] = {str(k): v for k, v in record.items()}
        return [[record[name] for record in records] for name in self.columns]

    @cached_property
    def _column_set(self) -> frozenset[str]:
        return frozenset(self.columns)

    def _check_column(self, values: Sequence, name: str, kind: str) -> Any:
        """One column's values checked and typed: a float array for numbers; for
        categories, the training column's string dtype or objects."""
        if kind == "numeric":
            return self._check_numbers(values, name)
        # categorical: strings (or whatever the training categories were); unseen categories
        # are passed through, the model's own encoder decides (handle_unknown)
        out = np.empty(len(values), dtype=object)
        for i, v in enumerate(values):
            if _missing(v):
                if not self.allow_nan:
                    raise InputError(f"row {i}, field {name!r}: missing value (null); this "
                                     "model cannot take missing values", row=i, field=name,
                                     reason="missing_value")
                # a JSON null means what a missing value means to pandas: NaN (imputers
                # treat None as a category of its own)
                v = np.nan
            elif isinstance(v, (list, dict)):
                raise InputError(f"row {i}, field {name!r}: expected a category, got "
                                 f"{type(v).__name__}", row=i, field=name, reason="bad_value")
            out[i] = v
        if self.dtypes.get(name) in _STRING_DTYPES:
            # pandas' own strings, as the training column had them (NaN for missing); other
            # dtypes stay objects: a cast to bool would make null True, a cast to category
            # would drop the training categories
            return pd.array(out, dtype=self._string_dtypes[name])
        return out

    @cached_property
    def _string_dtypes(self) -> dict[str, Any]:
        # parsed once: pandas parses a dtype's name on every call, which costs as much as
        # making a one-row column
        return {name: pd.api.types.pandas_dtype(dtype) for name, dtype in self.dtypes.items()
                if dtype in _STRING_DTYPES}

    def _check_numbers(self, values: Sequence, name: str) -> np.ndarray:
        numbers = None
        if all(type(v) in _PLAIN_NUMBERS for v in values):
            try:  # the usual column: ints and floats, converted at once
                numbers = np.array(values, dtype=float)
            except OverflowError:  # an integer of hundreds of digits: named below
                numbers = None
        if numbers is None:
            numbers = np.empty(len(values), dtype=float)
            for i, v in enumerate(values):
                if v is None:
                    numbers[i] = np.nan
                    continue
                if isinstance(v, (bool, np.bool_)) or isinstance(v, str):
                    raise InputError(f"row {i}, field {name!r}: expected a number, got "
                                     f"{_short(v)}", row=i, field=name, reason="not_a_number")
                try:
                    numbers[i] = float(v)
                except OverflowError:  # an integer of hundreds of digits
                    raise InputError(f"row {i}, field {name!r}: {_short(v)} is too large for a "
                                     "float", row=i, field=name, reason="not_finite") from None
                except (TypeError, ValueError):
                    raise InputError(f"row {i}, field {name!r}: expected a number, got "
                                     f"{_short(v)}", row=i, field=name,
                                     reason="not_a_number") from None
        infinite = np.isinf(numbers)
        if infinite.any():
            i = int(np.flatnonzero(infinite)[0])
            raise InputError(f"row {i}, field {name!r}: infinite values are not accepted",
                             row=i, field=name, reason="not_finite")
        missing = np.isnan(numbers)
        if missing.any() and not self.allow_nan:
            i = int(np.flatnonzero(missing)[0])
            raise InputError(f"row {i}, field {name!r}: missing value (NaN/null); this "
                             "model cannot take missing values", row=i, field=name,
                             reason="missing_value")
        return numbers


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters: error messages stay short whatever the
    input held."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _few(names: list, limit: int = 5) -> str:
    """The first ``limit`` of ``names``, each cut short, and how many more there are."""
    shown = ", ".join(_short(n, 60) for n in names[:limit])
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"[{shown}]{more}"


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _missing(value: Any) -> bool:
    """A missing category: JSON null, pandas' NA or NaN."""
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def _known(value: Any, known: frozenset) -> bool:
    try:
        return _plain(value) in known
    except TypeError:  # unhashable: no training category
        return False


def _numeric_table(data: Any) -> np.ndarray | None:
    """``data`` as a 2-D number array when it plainly is one (an array, or lists of ints
    and floats), else ``None`` for the careful path that names the culprit. Booleans are
    left to the careful path, which refuses them: numpy would quietly turn them into 1/0."""
    if isinstance(data, np.ndarray):
        return data if data.ndim == 2 and data.dtype.kind in "fiu" else None
    if not isinstance(data, list) or not data or not all(type(r) is list for r in data):
        return None
    if any(type(v) is bool for row in data for v in row):
        return None
    try:
        array = np.asarray(data)
    except (ValueError, OverflowError):  # ragged, or integers too large for numpy
        return None
    return array if array.ndim == 2 and array.dtype.kind in "fiu" else None

