"""The request path applies a ColumnTransformer's imputers, scalers and one-hot encoders as
their arithmetic: the same engineered rows as scikit-learn's transform, or scikit-learn's
transform itself."""

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from scoring import ExplanationBundle, InputError, LinearScoringExplainer
from scoring.datasets import load_wine_mixed, make_claims, make_credit, make_triage, preprocessor
from scoring.model.spec import ModelSpec
from scoring.model.transformations import RawFeatureMap


def _engineered(ct, rows):
    out = ct.transform(rows)
    return np.asarray(out.toarray() if hasattr(out, "toarray") else out, dtype=float)


def _spec(estimator, X, y, prep=None):
    model = Pipeline([("prep", prep or preprocessor()), ("model", estimator)]).fit(X, y)
    spec, _ = ModelSpec.from_training_rows(model, X)
    return spec, model


def _requests(X):
    """One-row and batch requests as the service gets them: records with None and NaN, an
    unseen category, a row missing everything."""
    strings = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    unseen = X.iloc[:3].copy()
    unseen[strings[0]] = "never seen in training"
    empty = {c: None for c in X.columns}
    return ([X.iloc[[i]].to_dict("records") for i in range(5)]
            + [X.to_dict("records"), unseen.to_dict("records"), [empty]])


@pytest.mark.parametrize("load, estimator", [
    (lambda: make_credit(400), LogisticRegression(max_iter=500)),
    (lambda: make_triage(300), LogisticRegression(max_iter=500)),
    (lambda: make_claims(300), Ridge()),
    (load_wine_mixed, LogisticRegression(max_iter=500)),
])
def test_direct_form_gives_scikit_learns_rows(load, estimator):
    X, y = load()
    assert X.isna().any().any()  # the imputers have work to do
    spec, model = _spec(estimator, X, y)
    assert spec.raw_map.direct is not None
    ct = model[0]
    for records in _requests(X):
        rows = spec.validate(records)
        ours = spec.transform(rows)
        assert np.array_equal(ours, _engineered(ct, rows), equal_nan=True)
        assert np.isfinite(ours).all()


def test_unknown_category_refused_in_scikit_learns_words():
    X, y = make_credit(300)
    strict = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
         make_column_selector(dtype_include="number")),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              OneHotEncoder(handle_unknown="error")),
         make_column_selector(dtype_exclude="number"))])
    model = Pipeline([("prep", strict), ("model", LogisticRegression(max_iter=500))]).fit(X, y)
    explainer = LinearScoringExplainer().fit(model, X)
    assert explainer.spec_.raw_map.direct is not None
    record = X.iloc[[0]].to_dict("records")
    record[0]["employment"] = "astronaut"
    with pytest.raises(InputError, match="Found unknown categories") as caught:
        explainer.score(record)
    assert caught.value.reason == "model_rejected_input"
    known = explainer.score(X.iloc[[0]].to_dict("records"))
    assert np.array_equal(known.probabilities, model.predict_proba(X.iloc[[0]]))


class _ShiftedScaler(StandardScaler):
    """A subclass may change what transform does: not read as a StandardScaler."""

    def transform(self, X, copy=None):
        return super().transform(X, copy=copy) + 1.0


@pytest.mark.parametrize("step", [
    FunctionTransformer(np.log1p, feature_names_out="one-to-one"), _ShiftedScaler(),
    SimpleImputer(strategy="median", add_indicator=True)])
def test_other_steps_keep_scikit_learns_transform(step):
    X, y = make_claims(300)
    prep = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), step),
         ["driver_age", "vehicle_age"]),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              OneHotEncoder(handle_unknown="ignore")),
         make_column_selector(dtype_exclude="number"))])
    spec, model = _spec(Ridge(), X, y, prep)
    assert spec.raw_map.direct is None
    rows = spec.validate(X.iloc[:7].to_dict("records"))
    assert np.array_equal(spec.transform(rows), _engineered(model[0], rows))


def test_loaded_bundle_transforms_directly(tmp_path):
    X, y = make_triage(300)
    model = Pipeline([("prep", preprocessor()),
                      ("model", LogisticRegression(max_iter=500))]).fit(X, y)
    ExplanationBundle(model, LinearScoringExplainer().fit(model, X)).write(tmp_path)
    bundle = ExplanationBundle.read(tmp_path)
    assert bundle.spec.raw_map.direct is not None
    for i in range(5):
        scored = bundle.score(X.iloc[[i]].to_dict("records"))
        assert np.array_equal(scored.probabilities, model.predict_proba(X.iloc[[i]]))


def test_a_column_transformer_fitted_on_an_array_keeps_scikit_learns_transform():
    X, _ = make_claims(200)
    numbers = X[["driver_age", "vehicle_age"]].fillna(0.0)
    ct = ColumnTransformer([("num", StandardScaler(), [0, 1])]).fit(numbers.to_numpy())
    raw_map = RawFeatureMap(ct, numbers)
    assert raw_map.direct is None
    assert np.array_equal(raw_map.transform(numbers), ct.transform(numbers.to_numpy()))


def test_a_map_unpickled_from_before_the_direct_form_still_transforms():
    """scoring migrate unpickles explainers of older versions, whose maps have no direct
    form: they transform with scikit-learn until bound to the bundle's model."""
    X, y = make_credit(300)
    spec, model = _spec(LogisticRegression(max_iter=500), X, y)
    del spec.raw_map.__dict__["direct"]
    rows = spec.validate(X.iloc[:4].to_dict("records"))
    assert np.array_equal(spec.transform(rows), _engineered(model[0], rows))
    spec.bind(model)
    assert spec.raw_map.direct is not None
