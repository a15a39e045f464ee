"""The centroid walks, distill's fallback for black boxes on small data: exact for games
of pairwise interactions on their weighted background, the skipped steps change no value,
the values survive a save and a load, and distill ships them where the networks miss."""

import numpy as np
import pandas as pd
import pytest
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from scoring import CentroidWalksScoringExplainer, distill, load, save
from scoring.datasets import make_churn, make_credit, preprocessor
from scoring.shapley.exact import exact_shapley_values
from scoring.shapley.permutation import antithetic_design, walk_values, weighted_walk_values
from tests.support.realistic import claims_knn


@pytest.fixture(scope="module")
def knn():
    return claims_knn()


def test_one_antithetic_pair_per_centroid_is_exact_for_a_pairwise_game():
    rng = np.random.default_rng(0)
    background = rng.normal(size=(6, 5))
    X = rng.normal(size=(4, 5))
    X[:, 1] = background[0, 1]  # a column some rows share with a centroid: a skipped step
    weights = rng.random(6)
    weights /= weights.sum()

    def f(Z):  # main effects and pairwise interactions only, two outputs
        first = Z @ np.arange(1.0, 6.0) + Z[:, 0] * Z[:, 1] - 2 * Z[:, 2] * Z[:, 4]
        return np.stack([first, np.tanh(Z[:, 3]) * Z[:, 1]], axis=1)

    groups = np.array([0, 1, 1, 2, 3])  # two columns that switch together
    orders, b_index = antithetic_design(6, 1, 4, rng)
    phi = weighted_walk_values(f, X, background, f(background), weights[b_index] / 2, orders,
                               b_index, groups=groups)
    exact = exact_shapley_values(f, X, background, weights, groups=groups)
    np.testing.assert_allclose(phi, exact, atol=1e-10)


def test_skipped_steps_change_no_value_and_are_not_evaluated(knn):
    explainer = CentroidWalksScoringExplainer(n_background=16).fit(knn.model, knn.X_train)
    spec = explainer.spec_
    X = spec.transform(spec.validate(knn.X_test.iloc[:5]))
    evaluated = []

    def f(Z):
        evaluated.append(len(Z))
        return spec.function(Z)

    orders, b_index = explainer.orders_, explainer.background_index_
    P = len(orders)
    phi = weighted_walk_values(f, X, explainer.background_, explainer.background_outputs_,
                               np.full(P, 1.0 / P), orders, b_index, groups=explainer.groups_)
    every_step = walk_values(spec.function, X, explainer.background_, orders, b_index,
                             groups=explainer.groups_)
    np.testing.assert_allclose(phi, every_step, atol=1e-10)
    # the categories the rows share with centroids: those steps were not model rows
    assert sum(evaluated) < len(X) * explainer.model_rows_per_row()
    additive = phi.sum(axis=1) + explainer.background_outputs_[b_index].mean(axis=0)
    np.testing.assert_allclose(additive, spec.function(X), atol=1e-9)


def test_saved_and_loaded_it_explains_raw_rows_as_before(knn, tmp_path):
    explainer = CentroidWalksScoringExplainer(n_background=16).fit(knn.model, knn.X_train)
    rows = knn.X_test.iloc[:3]
    # the test fitted the kNN itself: it trusts its tree and metric types
    trusted = ["sklearn.metrics._dist_metrics.EuclideanDistance64",
               "sklearn.neighbors._kd_tree.KDTree"]
    loaded = load(save(explainer, tmp_path, trusted_types=trusted), trusted_types=trusted)
    after = loaded.explain_local(rows)
    assert after.method == "centroid_walks"
    np.testing.assert_array_equal(after.local_importance_values, explainer.explain(rows))
    assert explainer.get_params()["model_rows_per_row"] == 16 * 2 * 6  # 7 raw columns


def test_bad_parameters_are_named():
    X, y = make_credit(60)
    model = Pipeline([("prep", preprocessor()), ("model", KNeighborsClassifier())]).fit(X, y)
    with pytest.raises(ValueError, match="n_permutations must be an even integer"):
        CentroidWalksScoringExplainer(n_permutations=3).fit(model, X)
    with pytest.raises(ValueError, match="background size must be a positive integer"):
        CentroidWalksScoringExplainer(n_background=0).fit(model, X)


def test_distill_ships_the_fallback_where_the_networks_miss():
    # a kNN on 300 rows and 12 raw columns (8 of loan data, 4 unrelated ones), networks
    # too small to learn: the SDK configuration samples coalitions, the walks ship
    X, y = make_credit(300)
    other, _ = make_churn(300, random_state=1)
    X = pd.concat([X, other[["tenure_months", "contract", "internet", "support_calls"]]],
                  axis=1)
    model = Pipeline([("prep", preprocessor()),
                      ("model", KNeighborsClassifier(15, weights="distance"))]).fit(X, y)
    explainer = distill(model, X, verbose=False, n_held_out=10, reference_background=50,
                        reference_budget=8192, hidden_layer_sizes=(2,), max_iter=2,
                        n_networks=1, small_set_inputs=0, n_augment=0)
    report = explainer.report_
    assert report.method == "centroid_walks"
    assert report.explainer_class == "CentroidWalksScoringExplainer"
    assert report.summary().startswith("centroid_walks")
    bar = report.criteria["min_fidelity"]
    assert report.fidelity.relative_l2_error <= bar["relative_l2_error"]
    assert report.fidelity.top5_precision >= bar["top5_precision"]
    shipped = next(t for t in report.tried if t.verdict == "shipped")
    assert shipped.label == f"centroid_walks (n_background={shipped.params['n_background']})"
    assert explainer.get_params()["n_background"] == shipped.params["n_background"]
    assert report.refit_on_all_rows


def test_a_pipeline_it_cannot_split_is_walked_on_raw_rows(knn):
    # a step the spec does not know keeps the pipeline whole: the background is a sample
    # of raw rows (no centroids of strings) and every step is evaluated
    whole = Pipeline([("prep", knn.model[0]), ("same", FunctionTransformer()),
                      ("model", knn.model[-1])])
    explainer = CentroidWalksScoringExplainer(n_background=16).fit(whole, knn.X_train)
    assert isinstance(explainer.background_, pd.DataFrame)
    rows = knn.X_test.iloc[:3]
    values = explainer.explain(rows)
    assert values.shape == (3, knn.X_train.shape[1])
    np.testing.assert_allclose(values.sum(-1) + explainer.expected_values,
                               whole.predict(rows), atol=1e-9)
