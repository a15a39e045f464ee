"""Example data sets: mixed dtypes with missing values, CSV-stable, learnable; the realistic
cases fit."""

from __future__ import annotations

import ast
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from scoring import datasets
from scoring.datasets import preprocessor
from tests.support.realistic import CASES

LOADERS = {
    "credit": (datasets.make_credit, "binary"),
    "triage": (datasets.make_triage, "multiclass"),
    "claims": (datasets.make_claims, "regression"),
    "diabetes_mixed": (datasets.load_diabetes_mixed, "regression"),
    "wine_mixed": (datasets.load_wine_mixed, "multiclass"),
    "churn": (datasets.make_churn, "binary"),
}


def test_datasets_module_imports_only_numpy_pandas_sklearn():
    tree = ast.parse(Path(datasets.__file__).read_text())
    roots = {alias.name.split(".")[0] for node in ast.walk(tree)
             if isinstance(node, ast.Import) for alias in node.names}
    roots |= {node.module.split(".")[0] for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.module}
    assert roots <= {"__future__", "numpy", "pandas", "sklearn"}


@pytest.mark.parametrize("name", LOADERS)
def test_mixed_types_with_missing_values(name):
    load, _ = LOADERS[name]
    X, y = load()
    assert len(X) == len(y) and y.notna().all()
    strings = [c for c in X.columns if pd.api.types.is_string_dtype(X[c].dtype)]
    numbers = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c].dtype)]
    assert sorted(strings + numbers) == sorted(X.columns)
    assert any(X[c].isna().any() for c in strings)
    assert any(X[c].isna().any() for c in numbers)
    rates = X.isna().mean()
    assert rates.max() <= 0.10
    assert ((rates == 0) | (rates >= 0.02)).all()
    # missing strings are NaN (as read_csv gives them), never None
    for c in strings:
        assert not any(v is None for v in X[c].tolist())


@pytest.mark.parametrize("name", LOADERS)
def test_csv_round_trip_keeps_dtypes_and_values(name):
    load, _ = LOADERS[name]
    X, _ = load()
    back = pd.read_csv(io.StringIO(X.to_csv(index=False)))
    assert back.dtypes.to_dict() == X.dtypes.to_dict()
    pd.testing.assert_frame_equal(back, X, check_exact=True)


@pytest.mark.parametrize("name", LOADERS)
def test_deterministic_and_sized(name):
    load, _ = LOADERS[name]
    X1, y1 = load(n_rows=100, random_state=3)
    X2, y2 = load(n_rows=100, random_state=3)
    assert len(X1) == 100
    pd.testing.assert_frame_equal(X1, X2)
    pd.testing.assert_series_equal(y1, y2)


@pytest.mark.parametrize("name", LOADERS)
def test_targets_are_learnable(name):
    load, task = LOADERS[name]
    X, y = load()
    stratify = None if task == "regression" else y
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=stratify)
    if task == "regression":
        estimator = HistGradientBoostingRegressor(max_iter=60, random_state=0)
    else:
        estimator = HistGradientBoostingClassifier(max_iter=60, random_state=0)
    model = Pipeline([("prep", preprocessor()), ("model", estimator)]).fit(X_train, y_train)
    score = model.score(X_test, y_test)
    if task == "regression":
        assert score > 0.15  # R² against the mean's 0
    else:
        assert score > y_test.value_counts(normalize=True).max() + 0.02


@pytest.mark.parametrize("name", CASES)
def test_realistic_case_builds_and_predicts(name):
    case = CASES[name]()
    assert case.name == name and case.task in ("binary", "multiclass", "regression")
    assert list(case.model.named_steps) == ["prep", "model"]
    if case.task == "regression":
        out = case.model.predict(case.X_test)
        assert case.model.score(case.X_test, case.y_test) > 0.15
    else:
        out = case.model.predict_proba(case.X_test)
        assert out.shape == (len(case.X_test), case.y_train.nunique())
        np.testing.assert_allclose(out.sum(axis=1), 1.0)
        majority = case.y_test.value_counts(normalize=True).max()
        assert case.model.score(case.X_test, case.y_test) > majority
    assert np.isfinite(out).all()


def test_none_in_an_object_column_is_not_missing_to_the_pipeline():
    """A pandas 3 str column stores None as NaN (imputed); an object column keeps None, which
    SimpleImputer(missing_values=np.nan) passes on and OneHotEncoder ignores as unknown."""
    case = CASES["credit_logreg"]()
    X = case.X_test.iloc[:20].copy()
    X["employment"] = X["employment"].fillna("salaried")
    as_nan = X.copy()
    as_nan.loc[:, "employment"] = np.nan
    as_str_none = X.copy()
    as_str_none.loc[:, "employment"] = None
    as_object_none = X.astype({"employment": object})
    as_object_none.loc[:, "employment"] = None
    assert as_str_none["employment"].isna().all() and as_str_none["employment"].dtype == "str"
    p_nan = case.model.predict_proba(as_nan)
    np.testing.assert_array_equal(case.model.predict_proba(as_str_none), p_nan)
    assert not np.allclose(case.model.predict_proba(as_object_none), p_nan)
    # the fix: give string columns the string dtype before predicting
    fixed = as_object_none.astype({"employment": "str"})
    np.testing.assert_array_equal(case.model.predict_proba(fixed), p_nan)
