"""The SVM scoring explainer: the model read as arrays, exact raw-column values on its
background for the wine SVC pipeline and an SVR, persistence, refusals, and distill
shipping it for the 133-row wine set."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC, SVR

from scoring import ExplanationBundle, SVMScoringExplainer, distill, load, save
from scoring.datasets import load_diabetes_mixed, preprocessor
from scoring.model.svm import RBFMachine, couple, unsupported_svm
from scoring.shapley.exact import exact_shapley_values
from tests.support.realistic import wine_svc

# libsvm stops coupling pairwise probabilities at a tolerance, the machine solves it
# exactly: measured up to 3e-3 apart on the wine SVC's hybrid rows
COUPLING_TOLERANCE = 5e-3


def _svc(**params) -> SVC:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # probability=True, deprecated in 1.9
        return SVC(**params)


@pytest.fixture(scope="module")
def wine():
    return wine_svc()


@pytest.fixture(scope="module")
def fitted(wine):
    return SVMScoringExplainer().fit(wine.model, wine.X_train)


def _engineered(explainer, rows):
    spec = explainer.spec_
    return np.asarray(spec.transform(spec.validate(rows)), dtype=float)


def test_machine_gives_the_models_outputs_on_hybrid_rows(wine, fitted):
    X = _engineered(fitted, wine.X_test)
    # hybrids: each test row with a random half of its columns from a training row
    rng = np.random.default_rng(0)
    donors = _engineered(fitted, wine.X_train)[rng.integers(0, len(wine.X_train), len(X))]
    hybrid = np.where(rng.random(X.shape) < 0.5, X, donors)
    machine = RBFMachine(wine.model[-1])
    kernel = np.exp(machine.log_factors(hybrid, None).sum(axis=1))
    probabilities = machine.outputs(kernel)
    assert np.abs(probabilities - wine.model[-1].predict_proba(hybrid)).max() < COUPLING_TOLERANCE
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-12)

    Xb, yb = make_classification(n_samples=150, n_features=5, random_state=0)
    binary = _svc(probability=True, random_state=0).fit(Xb, yb)
    machine = RBFMachine(binary)  # two classes: coupled all the same by scikit-learn's libsvm
    kernel = np.exp(machine.log_factors(Xb, None).sum(axis=1))
    assert np.abs(machine.outputs(kernel) - binary.predict_proba(Xb)).max() < COUPLING_TOLERANCE


def test_coupling_recovers_consistent_pairwise_probabilities():
    for p in (np.array([0.2, 0.3, 0.5]), np.array([0.1, 0.2, 0.3, 0.4]), np.full(3, 1 / 3)):
        k = len(p)
        pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
        # P(i beats j) = p_i / (p_i + p_j) agree exactly: libsvm's matrix is then singular
        pairwise = np.array([[p[i] / (p[i] + p[j])] for i, j in pairs])
        np.testing.assert_allclose(couple(pairwise, pairs, k)[0], p, atol=1e-9)


def test_values_are_the_exact_raw_column_values_on_its_background(wine, fitted):
    rows = wine.X_test.iloc[:10]
    values = fitted.explain(rows)  # (3 classes, 10 rows, 8 raw columns)
    assert fitted.players_ == "raw" and values.shape == (3, 10, wine.X_train.shape[1])
    params = fitted.get_params()
    assert params["exact"] and params["n_coalitions"] == 2**8 - 2
    assert params["background_rows"] == 20
    np.testing.assert_allclose(values.sum(-1).T + fitted.expected_values,
                               wine.model.predict_proba(rows), atol=1e-10)
    spec = fitted.spec_
    exact = exact_shapley_values(spec.function, _engineered(fitted, rows), fitted.background_,
                                 fitted.background_weights_, groups=spec.raw_map.groups)
    exact = exact.transpose(2, 0, 1)
    assert np.abs(values - exact).max() < COUPLING_TOLERANCE
    assert np.linalg.norm(values - exact) < 0.01 * np.linalg.norm(exact)
    # the service path: the caller passes the probabilities it computed
    X = _engineered(fitted, rows)
    given = fitted.shap_values(X, spec.outputs(X))
    np.testing.assert_allclose(given, fitted.shap_values(X), atol=1e-12)


def test_regression_values_are_exact():
    X, y = load_diabetes_mixed()
    model = Pipeline([("prep", preprocessor()), ("model", SVR(C=50.0))]).fit(X[:300], y[:300])
    explainer = SVMScoringExplainer(n_background=8).fit(model, X[:300])
    rows = X.iloc[300:306]
    values = explainer.explain(rows)  # (6 rows, 10 raw columns)
    spec = explainer.spec_
    exact = exact_shapley_values(spec.function, _engineered(explainer, rows),
                                 explainer.background_, explainer.background_weights_,
                                 groups=spec.raw_map.groups)[..., 0]
    # no coupling: exact up to the single-precision kernel values
    np.testing.assert_allclose(values, exact, atol=1e-5 * np.abs(exact).max())
    np.testing.assert_allclose(values.sum(-1) + explainer.expected_values,
                               model.predict(rows), atol=1e-8)


def test_save_load_round_trip(wine, fitted, tmp_path):
    loaded = load(save(fitted, tmp_path))
    assert type(loaded) is SVMScoringExplainer
    rows = wine.X_test.iloc[:5]
    np.testing.assert_array_equal(loaded.explain(rows), fitted.explain(rows))


def test_refuses_what_it_cannot_read():
    X, y = make_classification(n_samples=80, n_features=4, random_state=0)
    assert "kernel is 'linear'" in unsupported_svm(
        _svc(kernel="linear", probability=True).fit(X, y), "predict_proba")
    assert "probability=False" in unsupported_svm(SVC().fit(X, y), "predict_proba")
    assert "decision_function" in unsupported_svm(SVC().fit(X, y), "decision_function")
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    assert "not a fitted SVC" in unsupported_svm(forest, "predict_proba")
    with pytest.raises(TypeError, match="cannot explain SVC"):
        SVMScoringExplainer().fit(_svc(kernel="poly", probability=True).fit(X, y), X)


@pytest.mark.integration  # a long run (whole distills or fits): the integration tier
def test_distill_ships_it_for_the_small_wine_set(wine):
    # 133 training rows: too few for the amortized networks; exact on 20 kmeans centroids
    # it is more faithful than the SDK's 10 and over 20x faster than shap's KernelExplainer
    # (fewer hybrid inputs for the amortized candidate keep the test fast; bench.pipelines
    # runs distill's defaults on this case)
    explainer = distill(wine.model, wine.X_train, verbose=False, small_set_inputs=2000)
    report = explainer.report_
    assert report.method == "svm" and report.refit_on_all_rows
    bar = report.criteria["min_fidelity"]
    assert report.fidelity.relative_l2_error <= bar["relative_l2_error"]
    assert report.fidelity.top5_precision >= bar["top5_precision"]
    # the request path: records with a missing value, the probabilities reused
    records = wine.X_test.iloc[:3].to_dict("records")
    records[0]["colour_band"] = None
    scored = ExplanationBundle(wine.model, explainer).score(records)
    values = np.asarray(scored.explanation.local_importance_values)
    assert values.shape == (3, 3, wine.X_train.shape[1])
    np.testing.assert_allclose(values.sum(-1).T + explainer.expected_values,
                               scored.probabilities, atol=1e-10)
