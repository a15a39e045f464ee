"""distill: picks the fastest candidate meeting the fidelity bar, refuses clearly."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC

from scoring.evaluation.distill import DistillError, distill

REPORT_KEYS = {"method", "explainer_class", "params", "fidelity", "latency", "tried", "criteria"}
FIDELITY_KEYS = {"relative_l2_error", "top5_precision", "top5_sign_agreement",
                 "additivity_gap", "reference"}
QUICK_REFERENCE = {"n_held_out": 4, "reference_background": 20, "reference_nsamples": 128,
                   "reference_seconds": 0.5}


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=200, n_features=6, n_informative=4, n_redundant=0,
                               random_state=0)
    return X, y


def test_auto_picks_linear_for_a_linear_output(data):
    X, y = data
    model = LogisticRegression().fit(X, y)
    explainer = distill(model, X, model_output="decision_function", verbose=False,
                        **QUICK_REFERENCE)
    report = explainer.report_.to_dict()
    assert report["method"] == "linear"
    assert REPORT_KEYS <= set(report) and FIDELITY_KEYS <= set(report["fidelity"])
    assert {"row_ms", "batch100_ms", "row_given_outputs_ms"} <= set(report["latency"])
    # exact on the training mean; the quick reference's 20-row background differs from it
    assert report["fidelity"]["relative_l2_error"] < 0.5
    assert report["criteria"]["fidelity_bar"] == "azure-sdk-kernel"
    # measured without the held-out rows, then refitted on all of them: the closed form's
    # mean is the mean of every training row
    assert report["refit_on_all_rows"] is True
    np.testing.assert_allclose(explainer.mean_, X.mean(axis=0), atol=1e-12)
    # which training rows the fidelity was measured on, so it can be checked on them
    held = report["held_out_rows"]
    assert len(held) == len(set(held)) == report["n_held_out_rows"] == 4
    assert all(0 <= i < len(X) for i in held)


def test_auto_tries_tree_first_for_trees_and_keeps_the_fastest_faithful(data):
    X, y = data
    model = RandomForestClassifier(n_estimators=20, max_depth=4, random_state=0).fit(X, y)
    # a reference on every training row: the exact tree beats the kmeans-10 bar clearly
    explainer = distill(model, X, verbose=False, hidden_layer_sizes=(8,), max_iter=5,
                        **{**QUICK_REFERENCE, "n_held_out": 10, "reference_background": 200,
                           "reference_seconds": 5.0})
    report = explainer.report_
    tried = [t["method"] for t in report.tried]
    # the exact tree explainer first; taken at once when 20x faster than the bar, else the
    # later candidates are tried up to the SDK configuration itself
    assert tried[0] == "tree" and (tried == ["tree"] or tried[-1] == "kernel")
    faithful = [t for t in report.tried if "missed" in t and not t["missed"]]
    assert any(t["method"] == "tree" for t in faithful)
    # a faithful candidate is shipped: 20x faster than the bar, or else the most faithful
    assert report.method in {t["method"] for t in faithful}
    assert report.fidelity["relative_l2_error"] < 0.5


def test_auto_default_is_never_less_faithful_than_the_sdk_configuration(data, capsys):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model = SVC(probability=True, random_state=0).fit(X, y)
    explainer = distill(model, X, hidden_layer_sizes=(32, 32), max_iter=60,
                        **QUICK_REFERENCE)
    report = explainer.report_.to_dict()
    assert report["method"] in ("amortized", "svm", "permutation", "kernel")
    bar = report["criteria"]["min_fidelity"]
    assert report["fidelity"]["relative_l2_error"] <= bar["relative_l2_error"] + 1e-12
    err = capsys.readouterr().err
    assert "[distill]" in err and "[distill] reference" in err  # progress on stderr, each step
    assert explainer.report_.summary().startswith(report["method"])


def test_refuses_with_what_it_tried(data):
    X, y = data
    model = LogisticRegression().fit(X, y)
    with pytest.raises(DistillError) as caught:
        distill(model, X, model_output="decision_function", min_fidelity=1.0,
                max_latency_ms=1e-9, verbose=False, hidden_layer_sizes=(8,), max_iter=5,
                n_permutations=2, **QUICK_REFERENCE)
    message = str(caught.value)
    assert "no scoring explainer met" in message
    for method in ("linear", "amortized", "permutation", "kernel"):
        assert f"  {method}: rel. L2 error" in message
    assert "ms/row (needs <= 1e-09)" in message
    assert [t["method"] for t in caught.value.tried] == ["linear", "amortized", "permutation",
                                                       "kernel"]


def test_explicit_method_keeps_the_old_keywords(data):
    X, y = data
    model = LogisticRegression().fit(X, y)
    explainer = distill(model, X, method="kernel", nsamples=256, n_held_out=4,
                        reference_background=20, reference_nsamples=256,
                        reference_seconds=0.5, verbose=False)
    assert explainer.report_.to_dict()["method"] == "kernel"
    assert explainer.report_.to_dict()["params"]["nsamples"] == 256
    features = [f"f{i}" for i in range(X.shape[1])]
    named = distill(model, X, method="linear", features=features, classes=["no", "yes"],
                    verbose=False, **QUICK_REFERENCE)
    assert named.spec_.engineered_features == features
    glob = named.explain_global(X)
    assert np.asarray(glob.global_importance_values).shape[-1] == X.shape[1]


def test_bad_arguments(data):
    X, y = data
    model = LogisticRegression().fit(X, y)
    with pytest.raises(TypeError, match="no candidate takes"):
        distill(model, X, not_a_param=3, verbose=False)
    with pytest.raises(ValueError, match="min_fidelity"):
        distill(model, X, min_fidelity=2.0, verbose=False)
    with pytest.raises(ValueError, match="method must be one of"):
        distill(model, X, method="magic", verbose=False)


def test_auto_permutation_ladder_before_the_sdk_configuration():
    # 12 features: the SDK samples coalitions; permutation rungs at 1, 2, 4x its budget
    X, y = make_classification(n_samples=240, n_features=12, n_informative=6, random_state=1)
    model = LogisticRegression().fit(X, y)  # predict_proba: not linear, so no exact method
    tiny = {"hidden_layer_sizes": (2,), "max_iter": 2}
    explainer = distill(model, X, verbose=False, **tiny, **QUICK_REFERENCE)
    report = explainer.report_.to_dict()
    rungs = [t for t in report["tried"] if t["method"] == "permutation"]
    assert rungs, report["tried"]
    sdk = next(t for t in report["tried"] if t["method"] == "kernel") if report[
        "method"] == "kernel" else None
    budgets = [t["params"]["n_background"] * t["params"]["n_permutations"] * 12
               for t in rungs]
    assert budgets == sorted(budgets)  # cheapest first
    # the SDK's budget: 10 kmeans rows x (2 * 12 + 2048) coalitions; the training split
    # (236 rows) caps the background, so the walks per row grow instead
    assert budgets[0] >= 10 * (2 * 12 + 2048)
    bar = report["criteria"]["min_fidelity"]
    assert report["fidelity"]["relative_l2_error"] <= bar["relative_l2_error"] + 1e-12
    assert report["fidelity"]["top5_precision"] >= bar["top5_precision"] - 1e-12
    # a faithful candidate is shipped; a rung is faithful only when clearly as good as the
    # SDK configuration on top-5
    faithful = [t for t in report["tried"] if "missed" in t and not t["missed"]]
    assert report["method"] in {t["method"] for t in faithful}
    if sdk is None:
        assert report["method"] == "permutation"
        assert report["fidelity"]["top5_precision"] >= min(1.0, bar["top5_precision"] + 0.02)
        # refitted on all rows with the parameters of a faithful rung
        assert explainer.get_params()["n_background"] in {
            t["params"]["n_background"] for t in faithful if t["method"] == "permutation"}
    # permutation parameters from the caller: no ladder, one candidate as they asked
    explainer = distill(model, X, verbose=False, n_background=50, **tiny, **QUICK_REFERENCE)
    rungs = [t for t in explainer.report_.to_dict()["tried"] if t["method"] == "permutation"]
    assert len(rungs) <= 1 and all("params" not in t for t in rungs)
