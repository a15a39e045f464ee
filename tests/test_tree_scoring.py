"""TreeScoringExplainer on binary boosting: both classes' probabilities, or a clear refusal."""

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier

from scoring import TreeScoringExplainer
from scoring.evaluation.distill import distill

ADDITIVITY = 1e-6


@pytest.fixture(scope="module")
def binary():
    return make_classification(n_samples=300, n_features=6, n_informative=4, n_redundant=0,
                               random_state=0)


def test_binary_gradient_boosting_explains_both_classes(binary):
    X, y = binary
    model = GradientBoostingClassifier(n_estimators=20, random_state=0).fit(X, y)
    explainer = TreeScoringExplainer(n_background=50).fit(model, X)
    values = explainer.explain(X[:8])
    assert values.shape == (2, 8, X.shape[1])
    expected = np.asarray(explainer.expected_values)
    # probabilities: the two expected values sum to one, not to zero
    np.testing.assert_allclose(expected.sum(), 1.0, atol=ADDITIVITY)
    np.testing.assert_allclose(values.sum(-1).T + expected, model.predict_proba(X[:8]),
                               atol=ADDITIVITY)
    np.testing.assert_allclose(values[0], -values[1], atol=1e-12)
    local = explainer.explain_local(X[:3])
    np.testing.assert_allclose(np.asarray(local.local_importance_values).sum(-1).T
                               + np.asarray(local.expected_values),
                               model.predict_proba(X[:3]), atol=ADDITIVITY)


def test_model_shap_misreads_is_refused_at_fit(binary):
    X, y = binary
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, y)
    # shap's TreeExplainer values for this model do not add up to predict_proba: refuse
    # at fit, naming the model and what to use instead, rather than explain wrongly
    with pytest.raises(TypeError, match="HistGradientBoostingClassifier.*method='permutation'"):
        TreeScoringExplainer(n_background=50).fit(model, X)
    # distill's auto mode moves on to a model-agnostic candidate (any fidelity will do here:
    # the point is the skip, not the bar)
    explainer = distill(model, X, verbose=False, n_held_out=4, reference_background=20,
                        reference_budget=4096, min_fidelity=0.0,
                        hidden_layer_sizes=(16,), max_iter=20)
    assert explainer.report_.to_dict()["method"] in ("amortized", "permutation", "kernel")
    assert "TypeError" in explainer.report_.to_dict()["tried"][0]["error"]
