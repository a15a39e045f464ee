"""The Azure-compatible explainers on realistic pipelines: the algorithm TabularExplainer
picks per model family, its fidelity against exact enumeration next to the SDK's
configuration, and the progress bars with their switches."""

import warnings

import numpy as np
import pytest
import shap
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC

from scoring import LinearExplainableModel, MimicExplainer, PFIExplainer, TabularExplainer
from scoring.datasets import make_credit, preprocessor
from scoring.evaluation.fidelity import relative_l2_error, top_k_precision
from scoring.evaluation.reference import reference_values
from scoring.explainers import progress

ADDITIVITY = 1e-6
RAW = ["age", "income", "debt_ratio", "employment", "home", "purpose", "n_late_payments",
       "years_at_job"]


@pytest.fixture(scope="module")
def credit():
    X, y = make_credit(600)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def _pipeline(estimator, X, y):
    with warnings.catch_warnings():
        # SVC(probability=True) is deprecated in scikit-learn 1.9 (users still write it)
        warnings.filterwarnings("ignore", "The `probability` parameter", FutureWarning)
        return Pipeline([("prep", preprocessor()), ("model", estimator)]).fit(X, y)


FAMILIES = {
    "forest": (lambda: RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0),
               "tree", "exact path engine"),
    "logistic": (lambda: LogisticRegression(max_iter=1000), "linear", "exact closed form"),
    "rbf_svc": (lambda: SVC(probability=True, random_state=0), "svm",
                "20 background rows, every coalition, exact on it"),
    "calibrated_svc": (lambda: CalibratedClassifierCV(SVC(), ensemble=False), "svm",
                       "20 background rows, every coalition, exact on it"),
    "mlp": (lambda: MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=0),
            "kernel", "81 background rows, every coalition, exact on it"),
    "knn": (lambda: KNeighborsClassifier(15), "kernel",
            "81 background rows, every coalition, exact on it"),
}


@pytest.mark.parametrize("family", FAMILIES)
def test_each_model_family_gets_its_algorithm(credit, family):
    X_train, X_test, y_train, _ = credit
    estimator, kind, how = FAMILIES[family]
    model = _pipeline(estimator(), X_train, y_train)
    explainer = TabularExplainer(model, X_train)
    name = type(model[-1]).__name__
    assert explainer.explainer_kind == kind
    assert explainer.selection_reason_.startswith(f"{name} ")
    assert f": {kind} ({how}" in explainer.selection_reason_
    explanation = explainer.explain_local(X_test.iloc[:4])
    assert explanation.method == kind and explanation.features == RAW
    values = explanation.local_importance_values
    assert values.shape == (2, 4, len(RAW))
    outputs = model.decision_function(X_test.iloc[:4]) if kind == "linear" \
        else model.predict_proba(X_test.iloc[:4])[:, 1]
    np.testing.assert_allclose(values[1].sum(-1) + explanation.expected_values[1], outputs,
                               atol=ADDITIVITY)


@pytest.mark.parametrize("family", ["rbf_svc", "mlp"])
def test_as_faithful_as_the_sdk_configuration_against_exact_values(credit, family):
    """Against exact enumeration of the raw columns on 100 training rows, the values are at
    least as close as the Azure SDK's configuration (shap's KernelExplainer on 10 kmeans
    centroids of the engineered rows, its default budget, l1_reg="auto", summed onto the
    raw columns) on the same rows."""
    X_train, X_test, y_train, _ = credit
    model = _pipeline(FAMILIES[family][0](), X_train, y_train)
    rows = X_test.iloc[:4]
    explainer = TabularExplainer(model, X_train)
    spec = explainer.spec_
    E_train, E_rows = explainer.engineered_rows_, spec.transform(spec.validate(rows))
    truth, info = reference_values(spec, E_train, E_rows, n_background=100,
                                   budget=2**len(RAW) * 100)
    assert info["kind"] == "exact" and info["background_rows"] == 100
    ours = explainer.explain_local(rows).local_importance_values

    np.random.seed(0)  # shap samples coalitions from numpy's global generator
    sdk = shap.KernelExplainer(spec.function, shap.kmeans(E_train, 10))
    engineered = np.asarray(sdk.shap_values(E_rows, l1_reg="auto", silent=True))
    sdk_values = spec.layout.values(engineered, get_raw=True)
    assert relative_l2_error(ours, truth) <= relative_l2_error(sdk_values, truth)
    assert top_k_precision(ours, truth) >= top_k_precision(sdk_values, truth)


# -- progress bars -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small():
    X, y = make_classification(n_samples=200, n_features=6, n_informative=4, random_state=0)
    return X, y, SVC(probability=True, random_state=0).fit(X, y)


def test_tabular_progress_bar_and_its_switches(small, capfd, monkeypatch):
    X, _, model = small
    TabularExplainer(model, X, show_progress=True).explain_local(X[:10])
    assert "TabularExplainer (svm)" in capfd.readouterr().err
    TabularExplainer(model, X, show_progress=False).explain_local(X[:10])
    assert capfd.readouterr().err == ""

    # by default a bar shows once the call has lasted PROGRESS_DELAY seconds: none here
    explainer = TabularExplainer(model, X)
    explainer.explain_local(X[:10])
    assert capfd.readouterr().err == ""
    monkeypatch.setattr(progress, "PROGRESS_DELAY", 0.0)  # as if every call were long
    explainer.explain_global(X[:10])
    assert "TabularExplainer (svm)" in capfd.readouterr().err
    monkeypatch.setenv("TQDM_DISABLE", "1")
    explainer.explain_global(X[:10])
    assert capfd.readouterr().err == ""
    with pytest.raises(ValueError, match="show_progress must be None, True or False, got 1"):
        TabularExplainer(model, X, show_progress=1)


def test_mimic_and_pfi_progress_bars(small, capfd):
    X, y, model = small
    mimic = MimicExplainer(model, X, LinearExplainableModel, show_progress=True)
    assert "MimicExplainer fit" in capfd.readouterr().err
    mimic.explain_global(X[:10])
    assert "MimicExplainer (mimic_linear)" in capfd.readouterr().err
    PFIExplainer(model, show_progress=True).explain_global(X, true_labels=y)
    err = capfd.readouterr().err
    assert "PFIExplainer" in err and "/31" in err  # once, then 6 columns x 5 shuffles

    quiet = MimicExplainer(model, X, LinearExplainableModel, show_progress=False)
    quiet.explain_global(X[:10])
    PFIExplainer(model, show_progress=False).explain_global(X, true_labels=y)
    assert capfd.readouterr().err == ""
