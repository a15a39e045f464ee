"""TabularExplainer's choice, MimicExplainer's surrogates, PFIExplainer, the Explanation
round trips, and the scoring explainers against exact Shapley values.

Tolerances: additivity 1e-6 (it holds to rounding by construction); values against the
exact enumeration 1e-8 (both sides are exact up to floating-point rounding; Kernel SHAP
only when every coalition is enumerated).
"""

import sys
from math import comb

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC, SVR

from scoring import (
    DecisionTreeExplainableModel,
    Explanation,
    KernelScoringExplainer,
    LGBMExplainableModel,
    LinearExplainableModel,
    LinearScoringExplainer,
    MimicExplainer,
    PFIExplainer,
    SGDExplainableModel,
    TabularExplainer,
    TreeScoringExplainer,
)
from scoring.shapley.exact import exact_shapley_values
from scoring.shapley.kernel import coalition_design

ADDITIVITY = 1e-6
EXACT = 1e-8
COUPLING_TOLERANCE = 5e-3
FEATURES = [f"f{i}" for i in range(6)]


@pytest.fixture(scope="module")
def classification():
    X, y = make_classification(n_samples=300, n_features=6, n_informative=4, n_redundant=0,
                               n_classes=3, n_clusters_per_class=1, random_state=0)
    return X, y


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(n_samples=200, n_features=6, n_informative=4, noise=1.0,
                           random_state=0)
    return X, y


@pytest.fixture(scope="module")
def forest(classification):
    X, y = classification
    return RandomForestClassifier(n_estimators=20, max_depth=5, random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def svc(classification):
    X, y = classification
    return SVC(probability=True, random_state=0).fit(X, y)


def _additive(explanation, outputs):
    local = explanation.local_importance_values
    total = local.sum(-1).T + explanation.expected_values if local.ndim == 3 \
        else local.sum(-1) + explanation.expected_values
    np.testing.assert_allclose(total, np.asarray(outputs).reshape(total.shape),
                               atol=ADDITIVITY)


# -- TabularExplainer picks the explainer ---------------------------------------------------
def test_tree_model_picks_tree(classification, forest):
    X, _ = classification
    explainer = TabularExplainer(forest, X, features=FEATURES)
    assert explainer.explainer_kind == "tree"
    explanation = explainer.explain_local(X[:5])
    assert explanation.local_importance_values.shape == (3, 5, 6)
    _additive(explanation, forest.predict_proba(X[:5]))
    # interventional TreeSHAP on its background is the exact Shapley value on it
    exact = exact_shapley_values(explainer.spec_.function, X[:5], explainer.background_)
    np.testing.assert_allclose(explanation.local_importance_values,
                               np.transpose(exact, (2, 0, 1)), atol=EXACT)


def test_forest_regressor_is_exact_through_the_path_engine():
    """shap's TreeExplainer misses RandomForestRegressor's Shapley values (by up to 0.2
    on diabetes); the path engine behind TabularExplainer is exact."""
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import RandomForestRegressor

    X, y = load_diabetes(return_X_y=True)
    forest = RandomForestRegressor(n_estimators=40, min_samples_leaf=3,
                                   random_state=0).fit(X, y)
    explainer = TabularExplainer(forest, X)
    assert explainer.explainer_kind == "tree"
    assert "exact path engine" in explainer.selection_reason_
    assert len(explainer.background_) == len(X)  # 442 rows: all of them
    values = explainer.explain_local(X[:2]).local_importance_values
    exact = exact_shapley_values(lambda r: forest.predict(r)[:, None], X[:2],
                                 explainer.background_)
    np.testing.assert_allclose(values, exact[..., 0], atol=1e-9)
    assert explainer.expected_values == pytest.approx(forest.predict(X).mean(), abs=1e-9)


def test_linear_model_picks_linear(classification, regression):
    X, y = classification
    logistic = LogisticRegression().fit(X, y)
    explainer = TabularExplainer(logistic, X)
    assert explainer.explainer_kind == "linear"
    _additive(explainer.explain_local(X[:5]), logistic.decision_function(X[:5]))

    binary = LogisticRegression().fit(X, y == 1)
    explanation = TabularExplainer(binary, X, classes=["other", "one"]).explain_local(X[:5])
    assert explanation.classes == ["other", "one"]  # binary keeps both classes
    margin = binary.decision_function(X[:5])
    _additive(explanation, np.c_[-margin, margin])

    Xr, yr = regression
    ridge = Ridge().fit(Xr, yr)
    explanation = TabularExplainer(ridge, Xr).explain_local(Xr[:5])
    assert explanation.classes is None and explanation.local_importance_values.shape == (5, 6)
    _additive(explanation, ridge.predict(Xr[:5]))


def test_svc_picks_svm_and_matches_exact(classification, svc):
    X, _ = classification
    explainer = TabularExplainer(svc, X, nsamples=100)  # 2**6 - 2 = 62: every coalition
    assert explainer.explainer_kind == "svm" and len(explainer.background_) == 20
    assert explainer.selection_reason_.startswith("SVC predict_proba: svm (20 background "
                                                  "rows, every coalition")
    explanation = explainer.explain_local(X[:3])
    assert explanation.method == "svm"
    _additive(explanation, svc.predict_proba(X[:3]))
    exact = exact_shapley_values(explainer.spec_.function, X[:3], explainer.background_,
                                 explainer.background_weights_)
    # libsvm couples the three classes' pairwise probabilities to a tolerance
    assert np.abs(explanation.local_importance_values
                  - np.transpose(exact, (2, 0, 1))).max() < COUPLING_TOLERANCE


def test_kernel_is_exact_when_every_coalition_fits(classification):
    X, y = classification
    model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, random_state=0).fit(X, y)
    explainer = TabularExplainer(model, X)  # 2 * 6 + 2048 coalitions: all 62 of them
    # and the SDK's cost (10 centroids x 2060 coalitions) buys every training row
    assert explainer.explainer_kind == "kernel" and len(explainer.background_) == len(X)
    explanation = explainer.explain_local(X[:3])
    assert explanation.method == "kernel"
    exact = exact_shapley_values(explainer.spec_.function, X[:3], explainer.background_,
                                 explainer.background_weights_)
    np.testing.assert_allclose(explanation.local_importance_values,
                               np.transpose(exact, (2, 0, 1)), atol=EXACT)


def test_unsupported_tree_falls_back_to_kernel(classification):
    X, y = classification
    boosting = GradientBoostingClassifier(n_estimators=5, random_state=0).fit(X, y)
    explainer = TabularExplainer(boosting, X, nsamples=100)
    assert explainer.explainer_kind == "kernel"
    assert "not tree: TreeScoringExplainer cannot explain" in explainer.selection_reason_
    _additive(explainer.explain_local(X[:2]), boosting.predict_proba(X[:2]))


# -- MimicExplainer ------------------------------------------------------------------------
@pytest.mark.parametrize("surrogate", [LinearExplainableModel, SGDExplainableModel,
                                       DecisionTreeExplainableModel, LGBMExplainableModel])
def test_mimic_surrogates_report_fidelity(classification, svc, surrogate):
    X, _ = classification
    args = {"n_estimators": 30} if surrogate is LGBMExplainableModel else {}
    explainer = MimicExplainer(svc, X, surrogate, augment_data=True,
                               max_num_of_augmentations=2, features=FEATURES,
                               classes=["a", "b", "c"], explainable_model_args=args)
    assert explainer.n_training_rows_ == 2 * len(X)
    assert -1.0 < explainer.surrogate_fidelity_ <= 1.0
    assert 0.0 <= explainer.surrogate_accuracy_ <= 1.0
    if surrogate in (DecisionTreeExplainableModel, LGBMExplainableModel):
        assert explainer.surrogate_fidelity_ > 0.8 and explainer.surrogate_accuracy_ > 0.8
    explanation = explainer.explain_global(X[:10])
    assert explanation.local_importance_values.shape == (3, 10, 6)
    assert explanation.extra["surrogate_fidelity"] == explainer.surrogate_fidelity_
    # additive in the surrogate's outputs
    _additive(explanation, explainer.surrogate_.predict(X[:10]))


def test_lgbm_surrogate_without_lightgbm_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "lightgbm", None)
    with pytest.raises(ImportError, match=r"pip install 'scoring\[lightgbm\]'"):
        LGBMExplainableModel()


# -- PFIExplainer -------------------------------------------------------------------------
def test_pfi_is_global_only(classification, forest):
    X, y = classification
    explainer = PFIExplainer(forest, features=FEATURES, n_repeats=3)
    explanation = explainer.explain_global(X, true_labels=y)
    assert not explanation.has_local and explanation.features == FEATURES
    assert explanation.extra["metric"] == "accuracy"
    assert explanation.extra["baseline_score"] == pytest.approx(forest.score(X, y))
    assert explanation.get_ranked_global_values()[0] > 0.05
    with pytest.raises(NotImplementedError, match="does not support local explanations"):
        explainer.explain_local(X[:2])
    with pytest.raises(ValueError, match="needs local importance values"):
        explanation.get_ranked_local_names()
    with pytest.raises(ValueError, match="needs true_labels"):
        explainer.explain_global(X)
    f1 = PFIExplainer(forest, metric="f1_macro", n_repeats=2).explain_global(X, y)
    assert f1.extra["metric"] == "f1_macro"


def test_pfi_with_a_metric_function(regression):
    X, y = regression
    model = Ridge().fit(X, y)

    def neg_mae(y_true, y_pred):
        return -np.abs(y_true - y_pred).mean()

    explanation = PFIExplainer(model, metric=neg_mae, n_repeats=2).explain_global(X, y)
    assert explanation.extra["metric"] == "neg_mae" and explanation.classes is None
    assert explanation.global_importance_values.shape == (6,)


# -- Explanation round trips ----------------------------------------------------------------
def test_explanation_json_and_shap_round_trips(classification, forest):
    X, _ = classification
    explanation = TabularExplainer(forest, X, features=FEATURES,
                                   classes=["a", "b", "c"]).explain_local(X[:4])
    assert Explanation.from_json(explanation.to_json()) == explanation
    top = Explanation.from_json(explanation.to_json(top_k=2))
    assert top.features == explanation.get_ranked_global_names()[:2]

    shap_explanation = explanation.to_shap()
    assert shap_explanation.values.shape == (4, 6, 3)
    back = Explanation.from_shap(shap_explanation, method="tree",
                                 model_output="predict_proba")
    np.testing.assert_array_equal(back.local_importance_values,
                                  explanation.local_importance_values)
    np.testing.assert_array_equal(back.expected_values, explanation.expected_values)
    assert back.classes == ["a", "b", "c"] and back.features == FEATURES
    one = explanation.to_shap(class_index=1)
    assert one.values.shape == (4, 6) and np.all(one.base_values ==
                                                 explanation.expected_values[1])


# -- scoring explainers against exact Shapley values ---------------------------------------
def test_kernel_scoring_explainer_is_exact_when_enumerating(classification, svc):
    X, _ = classification
    explainer = KernelScoringExplainer(n_background=10, nsamples=62).fit(svc, X)
    assert explainer.get_params()["exact"]
    values = explainer.explain(X[:4])
    np.testing.assert_allclose(values.sum(-1).T + explainer.expected_values,
                               svc.predict_proba(X[:4]), atol=ADDITIVITY)
    exact = exact_shapley_values(explainer.spec_.function, X[:4], explainer.background_,
                                 explainer.background_weights_)
    np.testing.assert_allclose(values, np.transpose(exact, (2, 0, 1)), atol=EXACT)


def test_coalition_design_enumerates_the_edge_sizes_then_samples():
    # shap's design for 12 features and 2M+2048 coalitions: sizes 1-3 and 9-11 are
    # enumerated (their kernel share would draw more than exist), the rest sampled in pairs
    Z, weights = coalition_design(12, 2 * 12 + 2048, np.random.default_rng(0))
    sizes = Z.sum(axis=1)
    for size in (1, 2, 3, 9, 10, 11):
        members = Z[sizes == size]
        assert len(members) == comb(12, size) == len(np.unique(members, axis=0))
    middle = Z[(sizes > 3) & (sizes < 9)]
    assert len(middle) == len(Z) - 2 * (12 + 66 + 220) and len(Z) == 2 * 12 + 2048
    half = len(middle) // 2
    np.testing.assert_array_equal(middle[:half], ~middle[half:])  # complements
    assert weights.sum() == pytest.approx(1.0)
    # an enumerated coalition's weight is its size's kernel share over the count
    share = 11 / (np.arange(1, 12) * (12 - np.arange(1, 12)))
    share /= share.sum()
    assert weights[sizes == 1][0] == pytest.approx(share[0] / 12)


def test_tree_scoring_explainer_matches_exact_on_its_background(classification, forest):
    X, _ = classification
    explainer = TreeScoringExplainer(n_background=40).fit(forest, X)
    values = explainer.explain(X[:4])
    np.testing.assert_allclose(values.sum(-1).T + explainer.expected_values,
                               forest.predict_proba(X[:4]), atol=ADDITIVITY)
    exact = exact_shapley_values(explainer.spec_.function, X[:4], explainer.background_)
    np.testing.assert_allclose(values, np.transpose(exact, (2, 0, 1)), atol=EXACT)


def test_linear_scoring_explainer_matches_exact_on_the_training_set(regression):
    X, y = regression
    model = Ridge().fit(X, y)
    explainer = LinearScoringExplainer().fit(model, X)
    values = explainer.explain(X[:4])
    np.testing.assert_allclose(values.sum(-1) + explainer.expected_values, model.predict(X[:4]),
                               atol=ADDITIVITY)
    # coef * (x - mean) is the interventional Shapley value on the whole training set as
    # background (and, f being linear, on the single mean row)
    exact = exact_shapley_values(explainer.spec_.function, X[:4], X)[:, :, 0]
    np.testing.assert_allclose(values, exact, atol=EXACT)
    on_mean = exact_shapley_values(explainer.spec_.function, X[:4], X.mean(0, keepdims=True))
    np.testing.assert_allclose(values, on_mean[:, :, 0], atol=EXACT)


def test_svm_tabular_explainer_on_a_regressor(regression):
    X, y = regression
    model = SVR().fit(X, y)
    explainer = TabularExplainer(model, X, nsamples=100)
    assert explainer.explainer_kind == "svm"
    explanation = explainer.explain_global(X[:3])
    assert explanation.classes is None and explanation.local_importance_values.shape == (3, 6)
    _additive(explanation, model.predict(X[:3]))


def test_binary_margin_keeps_both_classes(classification):
    X, y = classification
    model = SVC().fit(X, y == 1)  # no predict_proba: decision_function, one log-odds output
    explainer = TabularExplainer(model, X, nsamples=100, classes=["other", "one"])
    assert explainer.spec_.function.output == "decision_function"
    explanation = explainer.explain_local(X[:3])
    assert explanation.local_importance_values.shape == (2, 3, 6)
    margin = model.decision_function(X[:3])
    _additive(explanation, np.c_[-margin, margin])
    np.testing.assert_allclose(explainer.expected_values, explanation.expected_values)
    mimic = MimicExplainer(model, X, LinearExplainableModel)
    assert mimic.explain_local(X[:3]).classes == [False, True]
    assert 0.5 < mimic.surrogate_accuracy_ <= 1.0  # agreement on the sign of the margin
