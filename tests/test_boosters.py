"""XGBoost, LightGBM and CatBoost in the tree path engine: their trees read as each library
predicts (split conventions, missing values, base scores), exact Shapley values of the raw
columns through a ColumnTransformer, and what cannot be read refused with the reason."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import catboost
import joblib
import lightgbm
import numpy as np
import pandas as pd
import pytest
import xgboost
from sklearn.pipeline import Pipeline

from scoring import AmortizedScoringExplainer, ExplanationBundle, TreeScoringExplainer, distill
from scoring.artifacts.trust import UntrustedTypes
from scoring.datasets import make_claims, make_credit, make_triage, preprocessor
from scoring.model.function import ModelFunction
from scoring.model.trees import additive_trees, feature_dtype, not_additive
from scoring.shapley.exact import exact_shapley_values
from scoring.shapley.tree_paths import (
    PathEngine,
    background_patterns,
    interventional_values,
    shapley_tables,
    tree_paths,
)

# one thread each: the machine is shared; CatBoost writes no training logs into the tree
CLASSIFIERS = {
    "xgboost": lambda: xgboost.XGBClassifier(n_estimators=30, max_depth=4, random_state=0,
                                             n_jobs=1),
    "lightgbm": lambda: lightgbm.LGBMClassifier(n_estimators=30, num_leaves=15, verbose=-1,
                                                random_state=0, n_jobs=1),
    "catboost": lambda: catboost.CatBoostClassifier(iterations=30, depth=4, verbose=0,
                                                    random_seed=0, thread_count=1,
                                                   allow_writing_files=False),
}
REGRESSORS = {
    "xgboost": lambda: xgboost.XGBRegressor(n_estimators=30, max_depth=4, random_state=0,
                                            n_jobs=1),
    "lightgbm": lambda: lightgbm.LGBMRegressor(n_estimators=30, num_leaves=15, verbose=-1,
                                               random_state=0, n_jobs=1),
    "catboost": lambda: catboost.CatBoostRegressor(iterations=30, depth=4, verbose=0,
                                                   random_seed=0, thread_count=1,
                                                   allow_writing_files=False),
}


def _missing_values(n_rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Numbers with missing values everywhere, ties at thresholds (a rounded column) and a
    column whose training values are never missing but whose explained ones are."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, 5))
    X[:, 3] = np.round(X[:, 3])
    y = X[:, 0] + X[:, 1] * X[:, 2] + X[:, 3] + 0.3 * rng.normal(size=n_rows)
    X[:, :4][rng.random((n_rows, 4)) < 0.15] = np.nan
    return X, y


def _explained_rows(X: np.ndarray) -> np.ndarray:
    rows = X[:60].copy()
    rows[::3, 4] = np.nan
    return rows


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("library", ["xgboost", "lightgbm", "catboost"])
def test_trees_add_up_to_the_library_margins_with_missing_values(library, task):
    """The paths send every row, missing values and values on thresholds included, to the
    leaves the library itself sends it to: the margins differ from the leaves' sum by one
    constant (base score) and the library's own rounding (XGBoost adds in float32)."""
    X, y = _missing_values(800, seed=1)
    if task == "regression":
        model = REGRESSORS[library]().fit(X, y)
    else:
        classes = 2 if task == "binary" else 3
        labels = np.digitize(y, np.quantile(y, np.linspace(0, 1, classes + 1)[1:-1]))
        model = CLASSIFIERS[library]().fit(X, labels)
    paths = tree_paths(additive_trees(model, "decision_function"), np.arange(5),
                       feature_dtype(model))
    rows = _explained_rows(X)
    margins = ModelFunction(model, "decision_function")(rows)
    gap = margins - paths.output(rows)
    assert gap.shape == (len(rows), 3 if task == "multiclass" else 1)
    rounding = 1e-5 if library == "xgboost" else 1e-12
    assert np.ptp(gap, axis=0).max() <= rounding * max(1.0, np.abs(margins).max())


def _pipeline(library: str, task: str):
    if task == "binary":
        X, y = make_credit(500)
        estimator = CLASSIFIERS[library]()
    elif task == "multiclass":
        X, y = make_triage(500)
        y = y.map({"low": 0, "medium": 1, "high": 2})  # XGBoost takes class numbers
        estimator = CLASSIFIERS[library]()
    else:
        X, y = make_claims(500)
        y = y / 1000.0
        estimator = REGRESSORS[library]()
    return Pipeline([("prep", preprocessor()), ("model", estimator)]).fit(X, y), X


@pytest.mark.parametrize("library,task", [
    ("xgboost", "binary"), ("xgboost", "regression"), ("lightgbm", "multiclass"),
    ("lightgbm", "binary"), ("catboost", "regression"), ("catboost", "multiclass")])
def test_values_equal_exact_enumeration_of_the_raw_columns(library, task):
    """Through a ColumnTransformer (imputers, scaling, one-hot on strings with missing
    values): each raw column's Shapley value of the margin (or a regressor's prediction)
    equals enumeration of every coalition of raw columns on the explainer's background."""
    model, X = _pipeline(library, task)
    output = "predict" if task == "regression" else "decision_function"
    explainer = TreeScoringExplainer(model_output=output, n_background=40).fit(model, X)
    assert explainer.engine_ == "paths"
    spec = explainer.spec_
    assert len(spec.raw_features) <= 10
    rows = X.iloc[:6]
    phi = exact_shapley_values(spec.function, spec.transform(spec.validate(rows)),
                               explainer.background_, groups=spec.raw_map.groups)
    truth = spec.layout.values(phi, get_raw=True, players="raw")
    values = np.asarray(explainer.explain(rows, get_raw=True))
    assert values.shape == truth.shape
    np.testing.assert_allclose(values, truth, rtol=0, atol=1e-6)
    # additive: the expected value plus a row's values is its margin
    engineered = spec.transform(spec.validate(rows))
    np.testing.assert_allclose(
        explainer.shap_values(engineered).sum(axis=1) + explainer.expected_values_,
        spec.function(engineered), rtol=0, atol=1e-5)


@pytest.mark.parametrize("library,task,link", [
    ("xgboost", "binary", "logistic"), ("lightgbm", "multiclass", "softmax"),
    ("catboost", "binary", "logistic")])
def test_probabilities_get_the_exact_margin_base(library, task, link):
    """Probabilities go through the exact margin base, as scikit-learn's boosting does:
    the margins' values are the path engine's, carried through the library's link."""
    model, X = _pipeline(library, task)
    explainer = AmortizedScoringExplainer(n_background=50, n_augment=0, max_label_rows=200,
                                          n_networks=1, max_iter=5).fit(model, X)
    assert explainer.link_ == link
    assert explainer.get_params()["margin_link"] == link


def test_probabilities_are_not_sums_over_trees():
    model, _ = _pipeline("xgboost", "binary")
    assert "its decision_function is" in not_additive(model[-1], "predict_proba")
    assert not_additive(model[-1], "decision_function") is None


def test_what_a_threshold_cannot_say_is_refused_with_what_to_do():
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"colour": pd.Categorical(rng.choice(list("abcde"), 400)),
                          "size": rng.normal(size=400)})
    y = (frame["colour"].isin(["a", "c"]) ^ (frame["size"] > 0)).astype(int)
    codes = np.column_stack([frame["colour"].cat.codes, frame["size"]]).astype(float)
    refused = {
        "enable_categorical": xgboost.XGBClassifier(
            n_estimators=5, enable_categorical=True, tree_method="hist").fit(frame, y),
        "categorical_feature": lightgbm.LGBMClassifier(
            n_estimators=5, verbose=-1, min_data_per_group=5, cat_smooth=1).fit(
                codes, y, categorical_feature=[0]),
        "cat_features": catboost.CatBoostClassifier(iterations=5, verbose=0,
                                                    allow_writing_files=False).fit(
            frame.astype({"colour": str}), y, cat_features=[0]),
        "zero_as_missing": lightgbm.LGBMClassifier(n_estimators=5, verbose=-1, n_jobs=1,
                                                   zero_as_missing=True).fit(
            np.round(codes), y),
    }
    for option, model in refused.items():
        reason = not_additive(model, "decision_function")
        assert reason is not None and option in reason, (option, reason)
        if option != "zero_as_missing":
            assert "OneHotEncoder" in reason
    for option in ("categorical_feature", "zero_as_missing"):  # models of numeric arrays
        with pytest.raises(TypeError, match=option):
            TreeScoringExplainer(model_output="decision_function").fit(
                refused[option], np.round(codes) if option == "zero_as_missing" else codes)


def test_native_category_columns_are_refused_before_any_work():
    rng = np.random.default_rng(6)
    frame = pd.DataFrame({"colour": pd.Categorical(rng.choice(list("abc"), 200)),
                          "size": rng.normal(size=200)})
    y = (frame["colour"].eq("a") ^ (frame["size"] > 0)).astype(int)
    model = xgboost.XGBClassifier(n_estimators=3, enable_categorical=True).fit(frame, y)
    with pytest.raises(TypeError, match=r"\['colour'\].*OneHotEncoder"):
        distill(model, frame, verbose=False)


def test_regressors_with_a_link_explain_their_margin_not_their_prediction():
    X, y = _missing_values(300, seed=3)
    counts = np.round(np.exp(np.nan_to_num(y) / 3))
    for model in (xgboost.XGBRegressor(n_estimators=5, objective="count:poisson"),
                  lightgbm.LGBMRegressor(n_estimators=5, objective="poisson", verbose=-1),
                  catboost.CatBoostRegressor(iterations=5, loss_function="Poisson",
                                             verbose=0, allow_writing_files=False)):
        model.fit(X, counts)
        assert "link of the sum over its trees" in not_additive(model, "predict")
        assert not_additive(model, "decision_function") is None


def test_early_stopping_explains_the_trees_predict_uses():
    """XGBoost predicts with the trees up to its best iteration; the reader reads those."""
    X, y = _missing_values(600, seed=4)
    model = xgboost.XGBRegressor(n_estimators=200, learning_rate=0.3, max_depth=5,
                                 early_stopping_rounds=3, random_state=0, n_jobs=1)
    model.fit(X[:400], y[:400], eval_set=[(X[400:], y[400:])], verbose=False)
    assert model.best_iteration < 199
    explainer = TreeScoringExplainer(n_background=30).fit(model, X)
    rows = _explained_rows(X)
    values = explainer.shap_values(rows)
    np.testing.assert_allclose(values.sum(axis=1)[:, 0] + explainer.expected_values_[0],
                               model.predict(rows), atol=1e-4)


def test_a_bundle_refuses_untrusted_types_when_built_not_when_saved():
    model, X = _pipeline("xgboost", "regression")
    explainer = TreeScoringExplainer(n_background=20).fit(model, X)
    needed = ["xgboost.core.Booster", "xgboost.sklearn.XGBRegressor"]
    with pytest.raises(UntrustedTypes, match=r"trusted_types=\['xgboost.core.Booster'") as info:
        ExplanationBundle(model, explainer)
    assert info.value.types == needed
    bundle = ExplanationBundle(model, explainer, trusted_types=needed)
    assert bundle.trusted_types == needed


def _run_cli(*args: str, home) -> subprocess.CompletedProcess:
    env = {**os.environ, "BENTOML_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "scoring.cli", *args], env=env,
                          capture_output=True, text=True, timeout=600)


FLAG = "--trusted-types xgboost.core.Booster xgboost.sklearn.XGBRegressor"


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("xgboost_cli")
    model, X = _pipeline("xgboost", "regression")
    joblib.dump(model, root / "claims.joblib")
    X.assign(cost=model.predict(X)).to_csv(root / "train.csv", index=False)
    return root, ["distill", "--model", str(root / "claims.joblib"), "--data",
                  str(root / "train.csv"), "--target", "cost", "--method", "tree",
                  "--dashboard-rows", "0"]


def test_distill_names_the_flag_to_pass_before_any_work(model_files):
    root, command = model_files
    started = time.perf_counter()
    refused = _run_cli(*command, home=root / "home")
    assert refused.returncode != 0
    assert FLAG in refused.stderr and "nothing was distilled" in refused.stderr
    assert "[distill]" not in refused.stderr  # stopped before fitting any candidate
    assert time.perf_counter() - started < 30


@pytest.mark.integration
def test_distill_with_the_flag_saves_a_bundle_that_explains(model_files):
    root, command = model_files
    built = _run_cli(*command, *FLAG.split(), home=root / "home")
    assert built.returncode == 0, built.stderr
    assert "[distill] tree:" in built.stderr
    tag = built.stdout.strip().splitlines()[-1]
    explained = _run_cli("explain", "--bundle", tag, "--data", str(root / "train.csv"),
                         "--drop", "cost", "--output", str(root / "values.json"),
                         *FLAG.split(), home=root / "home")
    assert explained.returncode == 0, explained.stderr


@pytest.mark.parametrize("library,task", [("xgboost", "binary"), ("lightgbm", "multiclass"),
                                          ("catboost", "multiclass")])
def test_one_pass_through_the_trees_gives_the_predictions_too(library, task):
    """The request path predicts from the probabilities, as these libraries' predict
    does: the same classes as predict."""
    model, X = _pipeline(library, task)
    explainer = TreeScoringExplainer(model_output="decision_function",
                                     n_background=10).fit(model, X)
    scored = explainer.score(X, explain=False)
    np.testing.assert_array_equal(np.ravel(scored.predictions), np.ravel(model.predict(X)))


def test_oblivious_trees_cost_one_lookup_per_tree():
    """CatBoost's trees ask one question per level: each gets a table of its values for
    every combination of answers, equal to the leaf-by-leaf values and to enumeration."""
    X, y = _missing_values(600, seed=5)
    model = REGRESSORS["catboost"]().fit(X, y)
    background = X[:50]
    engine = PathEngine.build(model, "predict", np.arange(5), background)
    assert engine.codes is not None and engine.codes.leaves.all()
    assert engine.codes.tests.shape == (30, 4)  # 30 trees, depth 4
    assert not engine.tables.leaves and not len(engine.tables.rest.leaf)
    rows = _explained_rows(X)[:8]
    paths = engine.paths
    by_leaf = interventional_values(
        paths, shapley_tables(paths, background_patterns(paths, background)), rows, 5)
    np.testing.assert_allclose(engine.values(rows), by_leaf, rtol=0, atol=1e-12)
    exact = exact_shapley_values(lambda r: model.predict(r).reshape(-1, 1), rows, background)
    np.testing.assert_allclose(engine.values(rows), exact, rtol=0, atol=1e-10)
