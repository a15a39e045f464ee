"""The amortized scoring explainer: additivity, fidelity against exact Shapley values,
determinism, persistence, and its unbiased permutation labels."""

import json
import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline

from scoring.artifacts.persistence import load, save
from scoring.datasets import make_triage, preprocessor
from scoring.evaluation.fidelity import relative_l2_error
from scoring.scoring_explainers.amortized import AmortizedScoringExplainer, hybrid_inputs
from scoring.shapley.additivity import project_additive
from scoring.shapley.exact import exact_shapley_values
from scoring.shapley.permutation import permutation_labels
from tests.support.realistic import claims_knn

# small, fast settings: the library defaults are sized for ~30 features
FAST = {"hidden_layer_sizes": (64, 64), "max_iter": 150, "n_permutations": 16,
        "small_set_inputs": 3000}
# relative L2 error against exact Shapley values on 6 features; measured 0.10-0.12
FIDELITY_TOLERANCE = 0.2


@pytest.fixture(scope="module")
def problem():
    X, y = make_classification(n_samples=400, n_features=6, n_informative=4,
                               n_redundant=0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MLPClassifier(hidden_layer_sizes=(16,), max_iter=400, random_state=0).fit(
            X[:300], y[:300])
    return model, X[:300], X[300:]


@pytest.fixture(scope="module")
def fitted(problem):
    model, train, _ = problem
    return AmortizedScoringExplainer(**FAST).fit(model, train)


def test_additivity_exact(fitted, problem):
    _, _, test = problem
    values = fitted.explain(test)  # (n_classes, n, M)
    outputs = fitted.spec_.outputs(test)
    total = values.sum(axis=-1) + fitted.expected_values[:, None]
    assert np.abs(total - outputs.T).max() < 1e-6
    # the service path: the caller passes the outputs it computed
    given = fitted.spec_.layout.values(fitted.shap_values(test, outputs), get_raw=False)
    np.testing.assert_allclose(given, values, atol=1e-12)


def test_outputs_shape_is_checked(fitted, problem):
    _, _, test = problem
    with pytest.raises(ValueError, match="outputs must have shape"):
        fitted.shap_values(test[:3], np.zeros((2, 2)))


def test_fidelity_against_exact_shapley(fitted, problem):
    model, train, test = problem
    exact = exact_shapley_values(fitted.spec_.function, test[:30], fitted.background_)
    exact = np.transpose(exact, (2, 0, 1))
    error = relative_l2_error(fitted.explain(test[:30]), exact)
    assert error < FIDELITY_TOLERANCE, error


@pytest.mark.integration  # a long run (whole distills or fits): the integration tier
def test_deterministic(problem, fitted):
    model, train, test = problem
    again = AmortizedScoringExplainer(**FAST).fit(model, train)
    np.testing.assert_array_equal(again.explain(test), fitted.explain(test))
    np.testing.assert_array_equal(fitted.explain(test), fitted.explain(test))


def test_save_load_round_trip(fitted, problem, tmp_path):
    _, _, test = problem
    loaded = load(save(fitted, tmp_path))
    assert type(loaded) is AmortizedScoringExplainer
    np.testing.assert_array_equal(loaded.explain(test), fitted.explain(test))
    np.testing.assert_array_equal(loaded.expected_values, fitted.expected_values)


def test_a_bundle_saved_before_a_parameter_existed_loads_with_its_default(fitted, problem,
                                                                         tmp_path):
    """A state without ``small_set_inputs`` (bundles saved before it existed) loads, takes
    the default, describes itself and explains as before (its /metadata was a 500)."""
    _, _, test = problem
    path = save(fitted, tmp_path)
    manifest = json.loads(path.read_text())
    del manifest["state"]["attributes"]["small_set_inputs"]
    path.write_text(json.dumps(manifest))
    loaded = load(path)
    assert loaded.get_params()["small_set_inputs"] == 10_000
    np.testing.assert_array_equal(loaded.explain(test), fitted.explain(test))


def test_report_params(fitted):
    params = fitted.get_params()
    assert params["background_rows"] == 300 and params["epochs"] >= 1


def test_permutation_labels_are_unbiased():
    rng = np.random.default_rng(0)
    X, background = rng.normal(size=(3, 5)), rng.normal(size=(7, 5))

    def f(Z):
        return np.stack([np.tanh(Z[:, 0] * Z[:, 1] + Z[:, 2]) + Z[:, 3] ** 2 * Z[:, 4],
                         Z[:, 0]], axis=1)

    exact = exact_shapley_values(f, X, background)
    labels = permutation_labels(f, X, background, 4000, rng)
    assert np.abs(labels - exact).max() < 0.1
    # efficiency per walk: sum of labels = f(x) - mean f(sampled background rows)
    projected = project_additive(labels, f(X) - f(background).mean(axis=0))
    np.testing.assert_allclose(projected.sum(axis=1), f(X) - f(background).mean(axis=0))


def test_bad_params():
    with pytest.raises(ValueError, match="n_permutations must be even"):
        AmortizedScoringExplainer(n_permutations=15).fit(
            *_tiny_model())


def _tiny_model():
    from sklearn.linear_model import LinearRegression

    X = np.random.default_rng(0).normal(size=(20, 3))
    return LinearRegression().fit(X, X @ [1.0, 2.0, 3.0]), X


def test_binary_classes_are_exact_negatives_and_no_feature_is_zeroed(fitted, problem):
    model, _, test = problem
    values = fitted.explain(test)  # (n_classes, n, M)
    np.testing.assert_array_equal(values[0], -values[1])
    assert fitted.mirrored_
    # every feature the exact values rank in a row's top 5 gets a non-zero value
    exact = exact_shapley_values(fitted.spec_.function, test[:30], fitted.background_)[..., 1]
    top5 = np.argsort(-np.abs(exact), axis=1)[:, :5]
    assert np.all(np.take_along_axis(values[1][:30], top5, axis=1) != 0.0)


def test_auto_permutations_and_the_batched_ensemble(problem):
    model, train, test = problem
    # "auto": as many permutations as fit the label budget, even, between 16 and 64
    explainer = AmortizedScoringExplainer(hidden_layer_sizes=(8,), max_iter=5, n_networks=3,
                                          label_budget=60_000).fit(model, train)
    n_inputs = sum(explainer.get_params()["synthetic_inputs"].values())
    assert explainer.n_permutations_ == max(16, min(64, 60_000 // (n_inputs * 6))) // 2 * 2
    assert explainer.get_params()["permutations"] == explainer.n_permutations_
    # the request path evaluates the networks in one batched pass: the same as one by one
    X = np.asarray(test[:5], dtype=float)
    outputs = explainer.spec_.outputs(X)[:, 1:]  # binary: the second class is learned
    total = 0.0
    for weights, biases in explainer.networks_:
        h = np.concatenate([X, outputs], axis=1) @ weights[0] + biases[0]
        for W, b in zip(weights[1:], biases[1:], strict=True):
            h = np.maximum(h, 0.0) @ W + b
        total = total + h
    phi = total.reshape(5, 6, 1)
    excess = phi.sum(axis=1) - (outputs - explainer.expected_values_[1:])
    phi = phi - excess[:, None, :] / 6
    np.testing.assert_allclose(explainer.shap_values(X), np.concatenate([-phi, phi], axis=-1),
                               atol=1e-10)
    with pytest.raises(ValueError, match="label_budget"):
        AmortizedScoringExplainer(label_budget=0).fit(model, train)


def test_the_same_rows_give_the_same_explainer_whatever_the_clock(problem):
    # budgets are counts (model rows, networks), never seconds: a busy machine trains the
    # same networks on the same labels, only later
    model, train, _ = problem
    settings = {"hidden_layer_sizes": (8,), "max_iter": 5, "n_networks": 2,
                "label_budget": 60_000}
    first = AmortizedScoringExplainer(**settings).fit(model, train)
    again = AmortizedScoringExplainer(**settings).fit(model, train)
    assert first.get_params()["networks_trained"] == 2
    assert first.n_permutations_ == again.n_permutations_
    for (w1, b1), (w2, b2) in zip(first.networks_, again.networks_, strict=True):
        for a, b in zip(w1 + b1, w2 + b2, strict=True):
            np.testing.assert_array_equal(a, b)


# -- boosted trees' probabilities: the exact margin base -----------------------------------
@pytest.fixture(scope="module")
def triage():
    """A 3-class HistGradientBoosting pipeline on strings, skewed numbers and gaps."""
    X, y = make_triage(n_rows=700)
    assert X.isna().any().any() and X.select_dtypes(exclude="number").shape[1] > 0
    pipe = Pipeline([("prep", preprocessor()),
                     ("model", HistGradientBoostingClassifier(max_iter=60, random_state=0))])
    return pipe.fit(X[:600], y[:600]), X[:600], X[600:]


@pytest.mark.integration  # a long run (whole distills or fits): the integration tier
def test_boosting_probabilities_learn_the_residual_of_the_exact_margin_base(triage, tmp_path):
    pipe, train, test = triage
    settings = {"max_label_rows": 1500, "n_networks": 2, "n_background": 150}
    based = AmortizedScoringExplainer(**settings).fit(pipe, train)
    plain = AmortizedScoringExplainer(margin_base=False, **settings).fit(pipe, train)
    assert based.get_params()["margin_link"] == "softmax"
    assert plain.get_params()["margin_link"] is None
    spec = based.spec_
    rows = spec.transform(spec.validate(test.iloc[:12]))
    exact = exact_shapley_values(spec.function, rows, based.background_,
                                 groups=spec.raw_map.groups)
    errors = {name: relative_l2_error(explainer.shap_values(rows), exact)
              for name, explainer in (("based", based), ("plain", plain))}
    # measured 0.13 against 0.42 without the base
    assert errors["based"] < 0.25 and errors["based"] < 0.6 * errors["plain"], errors
    values = based.shap_values(rows)
    np.testing.assert_allclose(values.sum(axis=1) + based.expected_values_,
                               spec.function(rows), atol=1e-9)
    # the path engine is rebuilt on load, not saved
    loaded = load(save(based, tmp_path))
    np.testing.assert_array_equal(loaded.shap_values(rows), values)


def test_margin_base_is_used_only_where_the_link_holds(triage):
    X, y = make_classification(n_samples=300, n_features=5, random_state=0)
    exponential = GradientBoostingClassifier(loss="exponential", n_estimators=20,
                                             random_state=0).fit(X, y)
    settings = {"max_label_rows": 300, "n_networks": 1, "n_permutations": 4}
    auto = AmortizedScoringExplainer(**settings).fit(exponential, X)
    assert "not a softmax or logistic" in auto.get_params()["margin_link"]
    with pytest.raises(TypeError, match="margin_base=True"):
        AmortizedScoringExplainer(margin_base=True, **settings).fit(exponential, X)
    with pytest.raises(ValueError, match="margin_base must be"):
        AmortizedScoringExplainer(margin_base="yes", **settings).fit(exponential, X)
    logistic = GradientBoostingClassifier(n_estimators=20, random_state=0).fit(X, y)
    binary = AmortizedScoringExplainer(**settings).fit(logistic, X)
    assert binary.get_params()["margin_link"] == "logistic"
    values = binary.shap_values(X[:5])
    np.testing.assert_array_equal(values[..., 0], -values[..., 1])


# -- small training sets: hybrid inputs ------------------------------------------------------
@pytest.fixture(scope="module")
def small_knn():
    """A kNN regressor behind the usual ColumnTransformer on 315 rows with strings and
    gaps: too few rows to train networks on the rows and their jittered copies."""
    case = claims_knn()
    return case.model, case.X_train, case.X_test


def test_hybrid_inputs_keep_each_raw_column_from_one_real_row(small_knn):
    model, train, _ = small_knn
    explainer = AmortizedScoringExplainer(hidden_layer_sizes=(8,), max_iter=2, n_networks=1,
                                          n_permutations=2, small_set_inputs=1000)
    explainer.fit(model, train)
    spec, groups = explainer.spec_, explainer.groups_
    X = np.asarray(spec.transform(spec.validate(train)), dtype=float)
    hybrid = hybrid_inputs(X, 500, groups, np.random.default_rng(0))
    for player in range(groups.max() + 1):
        block = groups == player
        real = {tuple(row) for row in X[:, block]}
        assert all(tuple(row) in real for row in hybrid[:, block])
    assert len({tuple(row) for row in hybrid}) > 450  # new rows, not copies
    assert explainer.get_params()["synthetic_inputs"] == {
        "training_rows": len(train), "hybrid": 1000 - len(train), "jittered": 0}


# a long run (two explainers fitted side by side): the integration tier
@pytest.mark.integration
def test_hybrid_inputs_make_small_sets_learnable(small_knn):
    model, train, test = small_knn
    settings = {"hidden_layer_sizes": (32, 32), "n_networks": 2, "n_background": 100,
                "label_budget": 400_000, "max_iter": 60}
    hybrid = AmortizedScoringExplainer(small_set_inputs=4000, **settings).fit(model, train)
    jittered = AmortizedScoringExplainer(small_set_inputs=0, **settings).fit(model, train)
    assert jittered.get_params()["synthetic_inputs"]["hybrid"] == 0
    spec = hybrid.spec_
    rows = spec.transform(spec.validate(test.iloc[:15]))
    np.testing.assert_array_equal(hybrid.background_, jittered.background_)
    exact = exact_shapley_values(spec.function, rows, hybrid.background_,
                                 groups=spec.raw_map.groups)
    errors = {name: relative_l2_error(explainer.shap_values(rows), exact)
              for name, explainer in (("hybrid", hybrid), ("jittered", jittered))}
    assert errors["hybrid"] < 0.85 * errors["jittered"], errors
