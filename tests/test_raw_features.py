"""Raw-feature explanations: transformations given to the explainer, and a whole Pipeline
explained as a black box on raw rows with string categories."""

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from scoring import (
    KernelScoringExplainer,
    LinearScoringExplainer,
    TabularExplainer,
)

RAW = ["age", "income", "city", "color", "flag", "noise"]
ENGINEERED = ["num__age", "num__income", "cat__city_lyon", "cat__city_nice",
              "cat__city_paris", "cat__color_blue", "cat__color_red", "pass__flag"]
ATOL = 1e-10  # sums of the same numbers in two orders


def _frame(n, seed):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "age": rng.normal(40, 10, n), "income": rng.normal(50, 15, n),
        "city": rng.choice(["paris", "lyon", "nice"], n), "color": rng.choice(["red", "blue"], n),
        "flag": rng.integers(0, 2, n).astype(float), "noise": rng.normal(size=n)})
    frame.loc[::17, "income"] = np.nan  # the imputer takes missing values
    return frame


@pytest.fixture(scope="module")
def data():
    x_train, x_test = _frame(300, 0), _frame(20, 1)
    y = ((x_train.age > 40) ^ (x_train.city == "paris") | (x_train.flag > 0)).astype(int)
    numeric = Pipeline([("imputer", SimpleImputer(strategy="median")),
                        ("scaler", StandardScaler())])
    preprocessor = ColumnTransformer([
        ("num", numeric, ["age", "income"]),
        ("cat", OneHotEncoder(handle_unknown="ignore"), ["city", "color"]),
        ("pass", "passthrough", ["flag"]),
        ("drop", "drop", ["noise"])])
    clf = Pipeline([("preprocessor", preprocessor),
                    ("classifier", LogisticRegression())]).fit(x_train, y)
    return x_train, x_test, y, preprocessor, clf


def _check_raw_equals_engineered(raw, engineered):
    assert raw.features == RAW and raw.raw
    assert engineered.features == ENGINEERED and not engineered.raw
    np.testing.assert_allclose(raw.local_importance_values.sum(-1),
                               engineered.local_importance_values.sum(-1), atol=ATOL)
    assert np.all(raw.local_importance_values[..., RAW.index("noise")] == 0)  # dropped column


def test_tabular_explainer_with_column_transformer(data):
    x_train, x_test, _, preprocessor, clf = data
    model = clf.steps[-1][1]
    explainer = TabularExplainer(model, initialization_examples=x_train,
                                 features=RAW, classes=["no", "yes"],
                                 transformations=preprocessor)
    assert explainer.explainer_kind == "linear"
    raw = explainer.explain_local(x_test)  # raw features by default, as the seed
    engineered = explainer.explain_local(x_test, get_raw=False)
    _check_raw_equals_engineered(raw, engineered)
    assert raw.local_importance_values.shape == (2, 20, 6)
    margin = clf.decision_function(x_test)
    total = raw.local_importance_values.sum(-1).T + raw.expected_values
    np.testing.assert_allclose(total, np.c_[-margin, margin], atol=1e-9)
    glob = explainer.explain_global(x_test)
    assert glob.get_ranked_global_names()[-1] == "noise"


def test_tabular_explainer_with_list_of_tuples(data):
    x_train, x_test, y, _, _ = data
    numeric = [([f], Pipeline([("imputer", SimpleImputer(strategy="median")),
                               ("scaler", StandardScaler())])) for f in ["age", "income"]]
    categorical = [([f], OneHotEncoder(handle_unknown="ignore", sparse_output=False))
                   for f in ["city", "color"]]
    transformations = numeric + categorical + [(["flag"], None)]
    fitted = [(cols, t if t is None else t.fit(x_train[cols])) for cols, t in transformations]
    engineered_train = np.hstack([x_train[c].to_numpy(float) if t is None
                                  else t.transform(x_train[c]) for c, t in fitted])
    model = LogisticRegression().fit(engineered_train, y)
    explainer = TabularExplainer(model, x_train.drop(columns="noise"),
                                 transformations=fitted, explainer_kind="kernel",
                                 nsamples=300, players="engineered")
    assert explainer.explainer_kind == "kernel"
    rows = x_test.drop(columns="noise").iloc[:4]
    raw = explainer.explain_local(rows)
    engineered = explainer.explain_local(rows, get_raw=False)
    assert raw.features == RAW[:-1] and len(engineered.features) == 8
    np.testing.assert_allclose(raw.local_importance_values.sum(-1),
                               engineered.local_importance_values.sum(-1), atol=ATOL)
    total = raw.local_importance_values.sum(-1).T + raw.expected_values
    X = explainer.spec_.transform(explainer.spec_.validate(rows))
    np.testing.assert_allclose(total, model.predict_proba(X), atol=1e-6)


def test_scoring_explainers_raw_and_engineered(data):
    x_train, x_test, _, preprocessor, clf = data
    model = clf.steps[-1][1]
    explainer = TabularExplainer(model, initialization_examples=x_train,
                                 transformations=preprocessor)
    kernel = KernelScoringExplainer(explainer, nsamples=300, players="engineered")
    raw, engineered = kernel.explain(x_test, get_raw=True), kernel.explain(x_test, get_raw=False)
    assert raw.shape == (2, 20, 6) and engineered.shape == (2, 20, 8)
    np.testing.assert_allclose(raw.sum(-1), engineered.sum(-1), atol=ATOL)
    np.testing.assert_allclose(raw.sum(-1).T + kernel.expected_values,
                               clf.predict_proba(x_test), atol=1e-6)
    # by default each raw column's engineered columns switch together: raw values only
    grouped = KernelScoringExplainer(explainer, nsamples=300)
    assert grouped.players_ == "raw" and grouped.explain(x_test).shape == (2, 20, 6)
    np.testing.assert_allclose(grouped.explain(x_test).sum(-1).T + grouped.expected_values,
                               clf.predict_proba(x_test), atol=1e-6)

    linear = LinearScoringExplainer(explainer)
    raw, engineered = linear.explain(x_test, get_raw=True), linear.explain(x_test,
                                                                           get_raw=False)
    # a binary margin keeps both classes, the first the negative of the second
    assert raw.shape == (2, 20, 6) and engineered.shape == (2, 20, 8)
    np.testing.assert_allclose(engineered[0], -engineered[1], atol=1e-12)
    np.testing.assert_allclose(raw.sum(-1), engineered.sum(-1), atol=ATOL)
    # the closed form is shap's LinearExplainer: the same values as the TabularExplainer
    tabular = explainer.explain_local(x_test, get_raw=False).local_importance_values
    np.testing.assert_allclose(engineered, tabular, atol=1e-10)
    assert linear.explain_local(x_test, get_raw=True).features == RAW


def test_whole_pipeline_is_split_at_its_column_transformer(data):
    x_train, x_test, _, _, clf = data
    explainer = TabularExplainer(clf, x_train, nsamples=300)
    assert explainer.spec_.split_pipeline and explainer.explainer_kind == "linear"
    explanation = explainer.explain_local(x_test.iloc[:4])
    assert explanation.features == RAW and explanation.local_importance_values.shape == (2, 4, 6)


def test_pipeline_that_cannot_be_split_is_a_black_box_on_raw_rows(data):
    x_train, x_test, y_train, preprocessor, clf = data
    # a step after the ColumnTransformer: its columns no longer map to raw ones
    clf = Pipeline([("prep", preprocessor), ("same", FunctionTransformer()),
                    ("model", clf.steps[-1][1])])
    explainer = TabularExplainer(clf, x_train, nsamples=300)
    assert not explainer.spec_.split_pipeline and explainer.explainer_kind == "kernel"
    # a random sample (no centroids of categories); 6 raw columns have 62 coalitions, so
    # the cost of 10 rows x nsamples=300 buys 48 rows
    assert len(explainer.background_) == 10 * 300 // 62
    assert set(explainer.background_["city"]) <= {"paris", "lyon", "nice"}
    explanation = explainer.explain_local(x_test.iloc[:4])
    assert explanation.features == RAW and explanation.local_importance_values.shape == (2, 4, 6)
    total = explanation.local_importance_values.sum(-1).T + explanation.expected_values
    np.testing.assert_allclose(total, clf.predict_proba(x_test.iloc[:4]), atol=1e-6)

    unseen = x_test.iloc[:2].copy()
    unseen["city"] = "berlin"  # handle_unknown='ignore': all city columns zero
    values = explainer.explain_local(unseen).local_importance_values
    np.testing.assert_allclose(values.sum(-1).T + explanation.expected_values,
                               clf.predict_proba(unseen), atol=1e-6)
    scoring = KernelScoringExplainer(explainer, nsamples=300)
    assert scoring.explain(unseen).shape == (2, 2, 6)
    records = unseen.to_dict(orient="records")  # the service's JSON rows
    np.testing.assert_allclose(scoring.explain(records), scoring.explain(unseen), atol=1e-12)
