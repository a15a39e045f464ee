"""Calibrated classifiers (scikit-learn 1.9 deprecates SVC(probability=True)): the SVM
explainer reads CalibratedClassifierCV around RBF SVCs exactly, distill and bundles take
it around any estimator."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC, NuSVC

from scoring import ExplanationBundle, SVMScoringExplainer, distill
from scoring.datasets import load_wine_mixed, preprocessor
from scoring.model.svm import rbf_machine, unsupported_svm
from scoring.shapley.exact import exact_shapley_values


def _scaled(loader) -> tuple[np.ndarray, np.ndarray]:
    X, y = loader(return_X_y=True)
    return (X - X.mean(axis=0)) / X.std(axis=0), y


@pytest.mark.parametrize("ensemble", [False, True])
@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
@pytest.mark.parametrize("loader", [load_breast_cancer, load_wine])
def test_machine_gives_the_calibrated_probabilities_on_hybrid_rows(loader, method, ensemble):
    X, y = _scaled(loader)
    model = CalibratedClassifierCV(SVC(), method=method, ensemble=ensemble).fit(X, y)
    assert unsupported_svm(model, "predict_proba") is None
    machine = rbf_machine(model)
    rng = np.random.default_rng(0)
    hybrid = np.where(rng.random(X.shape) < 0.5, X, X[rng.permutation(len(X))])
    kernel = np.exp(machine.log_factors(hybrid, None).sum(axis=1))
    np.testing.assert_allclose(machine.outputs(kernel), model.predict_proba(hybrid),
                               rtol=0, atol=1e-10)


@pytest.mark.parametrize("calibrated", [
    lambda: CalibratedClassifierCV(SVC(random_state=0), ensemble=False),
    lambda: CalibratedClassifierCV(NuSVC(), method="isotonic", ensemble=True, cv=3)])
def test_values_are_exact_raw_column_values_on_the_background(calibrated):
    X, y = load_wine_mixed()
    model = Pipeline([("prep", preprocessor()), ("model", calibrated())]).fit(X, y)
    explainer = SVMScoringExplainer(n_background=6).fit(model, X)
    assert explainer.get_params()["exact"]  # 8 raw columns: every coalition
    rows = X.iloc[:5]
    spec = explainer.spec_
    engineered = np.asarray(spec.transform(spec.validate(rows)), dtype=float)
    exact = exact_shapley_values(spec.function, engineered, explainer.background_,
                                 explainer.background_weights_, groups=spec.raw_map.groups)
    values = explainer.explain(rows)  # (3 classes, 5 rows, 8 raw columns)
    # single-precision kernel values: the only gap
    np.testing.assert_allclose(values, exact.transpose(2, 0, 1), rtol=0, atol=1e-5)
    np.testing.assert_allclose(values.sum(-1).T + explainer.expected_values,
                               model.predict_proba(rows), atol=1e-10)


def test_what_the_svm_explainer_cannot_read_is_refused():
    X, y = _scaled(load_wine)
    temperature = CalibratedClassifierCV(SVC(), method="temperature").fit(X, y)
    assert "'temperature'" in unsupported_svm(temperature, "predict_proba")
    forest = CalibratedClassifierCV(RandomForestClassifier(n_estimators=5)).fit(X, y)
    assert "its calibrated estimator: it is not a fitted SVC" in unsupported_svm(
        forest, "predict_proba")
    linear = CalibratedClassifierCV(SVC(kernel="linear")).fit(X, y)
    assert "kernel is 'linear'" in unsupported_svm(linear, "predict_proba")
    assert "CalibratedClassifierCV(SVC(), ensemble=False)" in unsupported_svm(
        SVC().fit(X, y), "predict_proba")


def test_a_calibrated_model_is_stored_without_trusted_types(tmp_path):
    X, y = _scaled(load_breast_cancer)
    for method in ("sigmoid", "isotonic"):
        model = CalibratedClassifierCV(SVC(), method=method, ensemble=False).fit(X, y)
        explainer = SVMScoringExplainer(n_background=5, nsamples=100).fit(model, X)
        ExplanationBundle(model, explainer).write(tmp_path / method)
        loaded = ExplanationBundle.read(tmp_path / method)
        np.testing.assert_array_equal(loaded.scoring_explainer.explain(X[:3]),
                                      explainer.explain(X[:3]))


@pytest.mark.integration
def test_distill_explains_calibration_around_any_estimator():
    X, y = load_wine_mixed()
    model = Pipeline([("prep", preprocessor()), ("model", CalibratedClassifierCV(
        RandomForestClassifier(n_estimators=30, random_state=0), ensemble=True))]).fit(X, y)
    explainer = distill(model, X, verbose=False)
    values = explainer.explain(X.iloc[:4])
    assert values.shape == (3, 4, X.shape[1])
    np.testing.assert_allclose(values.sum(-1).T + explainer.expected_values,
                               model.predict_proba(X.iloc[:4]), atol=1e-8)


def test_the_request_path_calls_a_calibrated_model_once():
    """CalibratedClassifierCV.predict is the argmax of its predict_proba: the request path
    takes it from the probabilities it has rather than computing them twice."""
    X, y = load_wine_mixed()
    model = Pipeline([("prep", preprocessor()),
                      ("model", CalibratedClassifierCV(SVC(), ensemble=False))]).fit(X, y)
    explainer = SVMScoringExplainer().fit(model, X)
    calibrated = explainer.spec_.model
    expected = calibrated.predict(explainer.spec_.transform(explainer.spec_.validate(X)))

    def refused(rows):
        raise AssertionError("predict_proba computed twice")

    calibrated.predict = refused  # the instance's own: what the request path would call
    scored = explainer.score(X.to_dict("records"), explain=False)
    assert np.array_equal(scored.predictions, expected)
    assert np.array_equal(scored.probabilities, model.predict_proba(X))
