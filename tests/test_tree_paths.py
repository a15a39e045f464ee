"""The tree path engine: exact interventional Shapley values of scikit-learn tree models,
per column or per column group, checked against enumeration of every coalition."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import (
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeRegressor

from scoring import TreeScoringExplainer
from scoring.datasets import make_claims, make_triage, preprocessor
from scoring.model.trees import additive_trees
from scoring.shapley.exact import exact_shapley_values
from scoring.shapley.tree_paths import (
    PathEngine,
    background_patterns,
    interventional_values,
    shapley_tables,
    tree_paths,
)


def _skewed(n_rows: int, n_cols: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.lognormal(size=(n_rows, n_cols))
    X[:, 1] = np.round(X[:, 1])  # ties at thresholds
    y = X[:, 0] * (X[:, 1] > 1) + np.log(X[:, 2]) + 0.1 * rng.normal(size=n_rows)
    return X, y


def _values(model, output, X, background, groups, max_entries=2**23):
    paths = tree_paths(additive_trees(model, output), groups)
    tables = shapley_tables(paths, background_patterns(paths, background), max_entries)
    return interventional_values(paths, tables, X, int(groups.max()) + 1), tables


@pytest.mark.parametrize("max_entries", [2**23, 0])  # tables, then pattern by pattern
@pytest.mark.parametrize("make_model,output", [
    (lambda: DecisionTreeRegressor(max_depth=5, random_state=0), "predict"),
    (lambda: ExtraTreesRegressor(n_estimators=20, min_samples_leaf=3, random_state=0),
     "predict"),
    (lambda: GradientBoostingRegressor(n_estimators=30, random_state=0), "predict"),
])
def test_values_equal_enumeration_per_column(make_model, output, max_entries):
    X, y = _skewed(300, 6)
    model = make_model().fit(X, y)
    background = X[:40]
    values, tables = _values(model, output, X[100:104], background, np.arange(6),
                             max_entries)
    assert bool(tables.leaves) == (max_entries > 0)
    exact = exact_shapley_values(lambda r: model.predict(r)[:, None], X[100:104], background)
    np.testing.assert_allclose(values, exact, atol=1e-10)


def test_groups_are_players_and_classes_are_outputs():
    X, y = _skewed(300, 6, seed=1)
    labels = np.digitize(y, np.quantile(y, [0.3, 0.7]))
    forest = RandomForestClassifier(n_estimators=15, max_depth=7, random_state=0).fit(X, labels)
    groups = np.array([0, 0, 1, 2, 2, 3])
    values, _ = _values(forest, "predict_proba", X[:3], X[200:260], groups)
    exact = exact_shapley_values(forest.predict_proba, X[:3], X[200:260], groups=groups)
    assert values.shape == (3, 4, 3)
    np.testing.assert_allclose(values, exact, atol=1e-12)


def test_missing_values_follow_the_trees():
    X, y = _skewed(400, 4, seed=2)
    X[::7, 0] = np.nan  # scikit-learn trees learn where a missing value goes
    tree = DecisionTreeRegressor(max_depth=6, random_state=0).fit(X, y)
    rows = np.vstack([X[:3], [[np.nan, 1.0, 2.0, 0.5]]])
    values, _ = _values(tree, "predict", rows, X[50:90], np.arange(4))
    exact = exact_shapley_values(lambda r: tree.predict(r)[:, None], rows, X[50:90])
    np.testing.assert_allclose(values, exact, atol=1e-10)


def test_boosting_classifier_decision_function_is_read_and_its_probabilities_are_not():
    X, y = _skewed(300, 5, seed=3)
    model = GradientBoostingClassifier(n_estimators=20, random_state=0).fit(X, y > np.median(y))
    values, _ = _values(model, "decision_function", X[:3], X[100:140], np.arange(5))
    exact = exact_shapley_values(lambda r: model.decision_function(r)[:, None], X[:3],
                                 X[100:140])
    np.testing.assert_allclose(values, exact, atol=1e-10)
    with pytest.raises(TypeError, match="its decision_function is"):
        additive_trees(model, "predict_proba")


def test_regression_pipeline_with_strings_and_missing_values_is_exact_per_raw_column():
    X, y = make_claims(n_rows=600)
    X = X.copy()
    pipe = Pipeline([("prep", preprocessor()),
                     ("model", GradientBoostingRegressor(n_estimators=40, random_state=0))])
    pipe.fit(X, y)
    assert X.isna().any().any() and X.select_dtypes(exclude="number").shape[1] > 0
    explainer = TreeScoringExplainer(n_background=80).fit(pipe, X)
    assert explainer.get_params()["engine"] == "paths" and explainer.players_ == "raw"
    rows = X.iloc[:3].copy()
    rows.iloc[0, :] = None  # every column missing: the imputers decide
    values = explainer.explain(rows)
    np.testing.assert_allclose(values.sum(-1) + explainer.expected_values, pipe.predict(rows),
                               atol=1e-9)
    spec = explainer.spec_
    exact = exact_shapley_values(spec.function, spec.transform(spec.validate(rows)),
                                 explainer.background_, groups=spec.raw_map.groups)
    np.testing.assert_allclose(values, exact[..., 0], atol=1e-9)
    # the expected value is the model's mean output over the background rows
    assert explainer.expected_values == pytest.approx(
        float(spec.function(explainer.background_).mean()), abs=1e-9)


def test_deep_forest_per_engineered_column_is_refused_and_per_raw_column_is_not():
    X, y = make_triage(n_rows=600)
    forest = Pipeline([("prep", preprocessor()),
                       ("model", RandomForestClassifier(n_estimators=20, random_state=0))])
    forest.fit(X, y)
    # fully grown trees test many one-hot columns on one path, but few raw columns
    with pytest.raises(TypeError, match="too deep to explain fast"):
        TreeScoringExplainer(players="engineered").fit(forest, X)
    explainer = TreeScoringExplainer(n_background=50).fit(forest, X)
    values = explainer.explain(X.iloc[:3])
    np.testing.assert_allclose(values.sum(-1).T + explainer.expected_values,
                               forest.predict_proba(X.iloc[:3]), atol=1e-12)


@pytest.mark.parametrize("make_model,output,n_classes", [
    (lambda: HistGradientBoostingRegressor(max_iter=30, random_state=0), "predict", 0),
    (lambda: HistGradientBoostingClassifier(max_iter=30, random_state=0), "decision_function",
     2),
    (lambda: HistGradientBoostingClassifier(max_iter=30, random_state=0), "decision_function",
     3),
])
def test_histogram_boosting_is_read_in_float64_with_its_missing_values(make_model, output,
                                                                       n_classes):
    X, y = _skewed(400, 5, seed=4)
    X[::7, 0] = np.nan
    if n_classes:
        y = np.digitize(y, np.quantile(y, np.linspace(0, 1, n_classes + 1)[1:-1]))
    model = make_model().fit(X, y)
    f = getattr(model, output)
    rows = np.vstack([X[:3], [[np.nan, 1.0, 2.0, 0.5, 1.0]]])
    engine = PathEngine.build(model, output, np.arange(5), X[100:140])
    exact = exact_shapley_values(lambda r: np.asarray(f(r)).reshape(len(r), -1), rows,
                                 X[100:140])
    np.testing.assert_allclose(engine.values(rows), exact, atol=1e-10)


def test_histogram_boosting_outputs_that_are_not_sums_are_refused():
    X, y = _skewed(300, 4, seed=5)
    poisson = HistGradientBoostingRegressor(loss="poisson", max_iter=10).fit(X, np.exp(y / 4))
    with pytest.raises(TypeError, match="LogLink"):
        additive_trees(poisson, "predict")
    classifier = HistGradientBoostingClassifier(max_iter=10).fit(X, y > 1)
    with pytest.raises(TypeError, match="its decision_function is"):
        additive_trees(classifier, "predict_proba")
    categories = np.column_stack([np.round(X[:, 1]) % 4, X[:, 2]])
    native = HistGradientBoostingRegressor(categorical_features=[0], max_iter=10).fit(
        categories, y)
    with pytest.raises(TypeError, match="native categorical"):
        additive_trees(native, "predict")


def test_float32_tables_keep_the_margins_values_within_1e_6_of_enumeration():
    """The amortized explainer's margin base stores its tables in float32: on a triage
    pipeline (strings, missing values, one-hot groups as players) its values stay within
    1e-6 of the float64 tables' and of enumeration of every raw-column coalition."""
    X, y = make_triage(n_rows=700)
    pipe = Pipeline([("prep", preprocessor()),
                     ("model", HistGradientBoostingClassifier(max_iter=60, random_state=0))])
    pipe.fit(X, y)
    explainer = TreeScoringExplainer(model_output="decision_function",
                                     n_background=40).fit(pipe, X)
    spec, background = explainer.spec_, explainer.background_
    groups = spec.raw_map.groups
    rows = spec.transform(spec.validate(X.iloc[600:606]))
    model = pipe[-1]
    single = PathEngine.build(model, "decision_function", groups, background,
                              table_dtype=np.float32)
    double = PathEngine.build(model, "decision_function", groups, background)
    assert single.tables.coefficients.dtype == np.float32
    np.testing.assert_allclose(single.values(rows), double.values(rows), rtol=0, atol=1e-6)
    exact = exact_shapley_values(model.decision_function, rows, background, groups=groups)
    np.testing.assert_allclose(single.values(rows), exact, rtol=0, atol=1e-6)
