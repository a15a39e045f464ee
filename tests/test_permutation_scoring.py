"""The permutation scoring explainer: converges to exact Shapley values on its background,
is additive, deterministic per row, takes the caller's outputs, explains a whole Pipeline
on raw mixed-type rows, survives save/load, and rejects bad parameters."""

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from scoring import PermutationScoringExplainer, load, save
from scoring.evaluation.fidelity import relative_l2_error
from scoring.shapley.exact import exact_shapley_values
from scoring.shapley.permutation import stratified_permutation_values

ADDITIVITY = 1e-10  # each walk's credits telescope to f(x) - f(b)


@pytest.fixture(scope="module")
def mlp():
    X, y = make_classification(n_samples=400, n_features=6, n_informative=4, n_redundant=0,
                               n_classes=3, n_clusters_per_class=1, random_state=1)
    model = MLPClassifier(hidden_layer_sizes=(16,), max_iter=2000, random_state=0).fit(X, y)
    return model, X


def _exact(explainer, X):
    """Exact Shapley values on the explainer's own background, in its layout."""
    phi = exact_shapley_values(explainer.spec_.function, X, explainer.background_)
    return explainer.spec_.layout.values(phi, get_raw=False)


def test_converges_to_exact_shapley_on_its_background(mlp):
    model, X = mlp
    errors = []
    for walks in (2, 32):
        explainer = PermutationScoringExplainer(n_background=50, n_permutations=walks)
        explainer.fit(model, X)
        values = explainer.explain(X[:8])
        assert values.shape == (3, 8, 6)
        errors.append(relative_l2_error(values, _exact(explainer, X[:8])))
    # unbiased: the error shrinks as the walks grow (about 1/sqrt(walks))
    assert errors[1] < 0.05 and errors[1] < errors[0] / 2, errors


def test_additive_and_expected_value_is_the_background_mean(mlp):
    model, X = mlp
    explainer = PermutationScoringExplainer(n_background=40).fit(model, X)
    values = explainer.explain(X[:10])
    np.testing.assert_allclose(explainer.expected_values,
                               model.predict_proba(explainer.background_).mean(axis=0))
    np.testing.assert_allclose(values.sum(-1).T + explainer.expected_values,
                               model.predict_proba(X[:10]), atol=ADDITIVITY)
    assert explainer.get_params()["model_rows_per_row"] == 40 * 2 * 6


def test_same_row_same_values_alone_or_in_a_batch_and_with_outputs(mlp):
    model, X = mlp
    explainer = PermutationScoringExplainer(n_background=30).fit(model, X)
    batch = explainer.explain(X[:12])
    alone = explainer.explain(X[5:6])
    np.testing.assert_allclose(alone[:, 0], batch[:, 5], atol=1e-12)
    rows = explainer.spec_.validate(X[:12])
    given = explainer.shap_values(rows, explainer.spec_.outputs(rows))
    np.testing.assert_allclose(explainer.spec_.layout.values(given, get_raw=False), batch,
                               atol=1e-12)
    other_seed = PermutationScoringExplainer(n_background=30, random_state=1).fit(model, X)
    assert not np.allclose(other_seed.explain(X[:12]), batch)


def test_stratified_reference_matches_exact(mlp):
    model, X = mlp
    explainer = PermutationScoringExplainer(n_background=20).fit(model, X)
    background = explainer.background_
    reference = stratified_permutation_values(explainer.spec_.function, X[:5], background,
                                              40, np.random.default_rng(0))
    exact = exact_shapley_values(explainer.spec_.function, X[:5], background)
    assert relative_l2_error(reference, exact) < 0.03


def test_whole_pipeline_on_raw_mixed_rows():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"age": rng.normal(40, 10, 200),
                          "city": rng.choice(["paris", "lyon", "nice"], 200),
                          "score": rng.normal(size=200)})
    y = ((frame.age > 40) ^ (frame.city == "paris")).astype(int)
    clf = Pipeline([("prep", ColumnTransformer([("num", StandardScaler(), ["age", "score"]),
                                                ("cat", OneHotEncoder(), ["city"])])),
                    ("model", LogisticRegression())]).fit(frame, y)
    explainer = PermutationScoringExplainer(n_background=25).fit(clf, frame)
    # split at its ColumnTransformer: walks on engineered rows, one player per raw column
    assert explainer.spec_.split_pipeline and explainer.players_ == "raw"
    black_box = PermutationScoringExplainer(n_background=25).fit(
        Pipeline([("prep", clf[0]), ("same", FunctionTransformer()), ("model", clf[-1])]),
        frame)
    assert set(black_box.background_["city"]) <= {"paris", "lyon", "nice"}
    np.testing.assert_allclose(black_box.explain(frame.iloc[:3]).sum(-1),
                               explainer.explain(frame.iloc[:3]).sum(-1), atol=1e-10)
    records = frame.iloc[:3].to_dict(orient="records")  # the service's JSON rows
    values = explainer.explain(records)
    assert values.shape == (2, 3, 3)
    np.testing.assert_allclose(values.sum(-1).T + explainer.expected_values,
                               clf.predict_proba(frame.iloc[:3]), atol=ADDITIVITY)
    np.testing.assert_allclose(values, explainer.explain(frame.iloc[:3]), atol=1e-12)


def test_save_load_round_trip(mlp, tmp_path):
    model, X = mlp
    explainer = PermutationScoringExplainer(n_background=20).fit(model, X)
    loaded = load(save(explainer, tmp_path))
    assert loaded.method == "permutation"
    np.testing.assert_array_equal(loaded.explain(X[:4]), explainer.explain(X[:4]))


@pytest.mark.parametrize(("params", "message"), [
    ({"n_permutations": 3}, "n_permutations must be an even integer >= 2"),
    ({"n_permutations": 0}, "n_permutations must be an even integer >= 2"),
    ({"n_background": 0}, "n_background must be a positive integer"),
    ({"n_background": 2.5}, "n_background must be a positive integer"),
])
def test_bad_parameters(mlp, params, message):
    model, X = mlp
    with pytest.raises(ValueError, match=message):
        PermutationScoringExplainer(**params).fit(model, X)
