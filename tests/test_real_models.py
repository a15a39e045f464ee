"""The pipelines users bring: string categoricals with missing values through a
ColumnTransformer, in front of tree ensembles, MLPs and linear models; explained at the raw
columns, served with the model's own answer for missing values."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import requests
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline

from scoring import (
    ExplanationBundle,
    InputError,
    InputSchema,
    PermutationScoringExplainer,
    TreeScoringExplainer,
    distill,
)
from scoring.datasets import make_credit, make_triage, preprocessor
from scoring.shapley.exact import exact_shapley_values


def _pipeline(estimator) -> Pipeline:
    """What users write: impute and scale numbers, impute and one-hot strings."""
    return Pipeline([("prep", preprocessor()), ("model", estimator)])


@pytest.fixture(scope="module")
def credit():
    X, y = make_credit(n_rows=500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = _pipeline(MLPClassifier((16,), max_iter=300, random_state=0)).fit(X, y)
    return X, y, mlp


def test_pipeline_is_split_and_explained_at_the_raw_columns(credit):
    X, _, mlp = credit
    explainer = PermutationScoringExplainer(n_background=40).fit(mlp, X)
    spec = explainer.spec_
    assert spec.split_pipeline and type(spec.model).__name__ == "MLPClassifier"
    assert explainer.players_ == "raw" and spec.raw_features == list(X.columns)
    values = explainer.explain(X.iloc[:6])  # raw columns by default
    assert values.shape == (2, 6, X.shape[1])
    np.testing.assert_array_equal(values[0], -values[1])  # binary: exact negatives
    total = values.sum(-1).T + explainer.expected_values
    np.testing.assert_allclose(total, mlp.predict_proba(X.iloc[:6]), atol=1e-10)
    with pytest.raises(ValueError, match="one value per raw column"):
        explainer.explain(X.iloc[:2], get_raw=False)


def test_grouped_walks_converge_to_exact_raw_shapley_values(credit):
    """The estimator on group-masked engineered rows is the pipeline on raw hybrid rows,
    so the exact raw-level values are computed on the engineered matrix."""
    X, _, mlp = credit
    explainer = PermutationScoringExplainer(n_background=25, n_permutations=40).fit(mlp, X)
    spec = explainer.spec_
    rows = X.iloc[10:14]
    engineered = spec.transform(spec.validate(rows))
    exact = exact_shapley_values(spec.function, engineered, explainer.background_,
                                 groups=spec.raw_map.groups)  # (n, raw, O)
    # the identity behind it, on one coalition: a raw hybrid through the whole pipeline
    keep = np.arange(X.shape[1]) % 2 == 0
    x_raw, b_raw = rows.iloc[[0]], X.iloc[[100]]
    hybrid = x_raw.copy()
    for j, name in enumerate(X.columns):
        if not keep[j]:
            hybrid[name] = b_raw[name].to_numpy()
    b_engineered = spec.transform(spec.validate(b_raw))[0]
    masked = np.where(keep[spec.raw_map.groups], engineered[0], b_engineered)
    np.testing.assert_array_equal(mlp.predict_proba(hybrid)[0],
                                  spec.function(masked[None])[0])
    values = explainer.spec_.layout.values(explainer.shap_values(engineered), get_raw=True,
                                           players="raw")
    truth = spec.layout.values(exact, get_raw=True, players="raw")
    error = np.linalg.norm(values - truth) / np.linalg.norm(truth)
    assert error < 0.1, error


def test_null_is_the_model_answer_for_a_missing_value(credit):
    X, _, mlp = credit
    bundle = ExplanationBundle(mlp, PermutationScoringExplainer(n_background=20).fit(mlp, X))
    records = X.iloc[:8].to_dict("records")
    records[0]["employment"] = None  # JSON null in a string column
    records[1]["income"] = None  # and in a number column
    records[2]["home"] = float("nan")
    scored = bundle.score(records)
    expected = X.iloc[:8].copy()
    expected.loc[expected.index[0], "employment"] = np.nan
    expected.loc[expected.index[1], "income"] = np.nan
    expected.loc[expected.index[2], "home"] = np.nan
    np.testing.assert_array_equal(scored.probabilities, mlp.predict_proba(expected))
    np.testing.assert_array_equal(scored.predictions, mlp.predict(expected))
    assert scored.warnings == []


def test_unknown_category_is_answered_with_a_warning(credit):
    X, _, mlp = credit
    bundle = ExplanationBundle(mlp, PermutationScoringExplainer(n_background=20).fit(mlp, X))
    records = X.iloc[:3].to_dict("records")
    records[1]["purpose"] = "spaceship"
    scored = bundle.score(records)
    assert scored.warnings == [{"row": 1, "field": "purpose", "value": "spaceship",
                                "warning": "category not seen in training"}]
    np.testing.assert_array_equal(scored.probabilities,
                                  mlp.predict_proba(pd.DataFrame(records)))
    assert "spaceship" not in bundle.metadata()["categories"]["purpose"]
    assert set(bundle.metadata()["categories"]["purpose"]) == set(X["purpose"].dropna())
    with pytest.raises(InputError) as refused:
        bundle.score(records, get_raw=False)
    assert refused.value.reason == "engineered_unavailable"


def test_forest_pipeline_gets_exact_raw_column_values(credit):
    X, y, _ = credit
    forest = _pipeline(RandomForestClassifier(n_estimators=30, max_depth=6,
                                              random_state=0)).fit(X, y)
    explainer = TreeScoringExplainer(n_background=60).fit(forest, X)
    assert explainer.get_params()["engine"] == "paths" and explainer.players_ == "raw"
    rows = X.iloc[:4]
    values = explainer.explain(rows)
    np.testing.assert_array_equal(values[0], -values[1])
    np.testing.assert_allclose(values.sum(-1).T + explainer.expected_values,
                               forest.predict_proba(rows), atol=1e-12)
    spec = explainer.spec_
    exact = exact_shapley_values(spec.function, spec.transform(spec.validate(rows)),
                                 explainer.background_, groups=spec.raw_map.groups)
    np.testing.assert_allclose(values, exact.transpose(2, 0, 1), atol=1e-12)
    with pytest.raises(ValueError, match="one value per raw column"):
        explainer.explain(rows, get_raw=False)


def test_distill_skips_what_cannot_run_with_a_one_line_reason():
    X, y = make_triage(n_rows=400)
    hgb = _pipeline(HistGradientBoostingClassifier(max_iter=30, random_state=0)).fit(X, y)
    # any fidelity will do here: the point is the skip, not the bar
    explainer = distill(hgb, X, verbose=False, hidden_layer_sizes=(8,), max_iter=5,
                        n_held_out=6, reference_background=40, reference_budget=8000,
                        min_fidelity=0.0)
    report = explainer.report_
    tree = next(t for t in report.tried if t.method == "tree")
    assert tree.error and "\n" not in tree.error  # shap refuses 3-class probabilities
    assert report.method != "tree"
    values = explainer.explain(X.iloc[:4])
    assert values.shape == (3, 4, X.shape[1])
    np.testing.assert_allclose(values.sum(-1).T + explainer.expected_values,
                               hgb.predict_proba(X.iloc[:4]), atol=1e-8)


def _post(server, path: str, body: dict):
    return requests.post(server.url + path, json=body, timeout=60)


def test_served_null_and_unknown_category(credit_server, bundles):
    b = bundles["credit"]
    records = b.X.iloc[:4].to_dict("records")
    records = [{k: (None if isinstance(v, float) and np.isnan(v) else v)
                for k, v in r.items()} for r in records]  # what JSON carries
    records[0]["employment"] = None
    records[2]["purpose"] = "spaceship"
    answer = _post(credit_server, "/predict", {"rows": records, "top_k": 2})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    expected = b.X.iloc[:4].copy()
    expected.loc[expected.index[0], "employment"] = np.nan
    expected.loc[expected.index[2], "purpose"] = "spaceship"
    assert body["probabilities"] == b.model.predict_proba(expected).tolist()
    assert body["feature_names"] == list(b.X.columns)
    assert body["warnings"] == [{"row": 2, "field": "purpose", "value": "spaceship",
                                 "warning": "category not seen in training"}]
    np.testing.assert_allclose(body["local_importance_values"], b.explainer.explain(expected),
                               atol=1e-12)
    refused = _post(credit_server, "/predict", {"rows": records, "get_raw": False})
    assert refused.status_code == 400 and refused.json()["reason"] == "engineered_unavailable"
    meta = requests.get(credit_server.url + "/metadata", timeout=10).json()
    assert set(meta["categories"]["purpose"]) == set(b.X["purpose"].dropna())


def test_served_score_takes_the_seed_clients_body(credit_server, bundles):
    b = bundles["credit"]
    rows = b.X.iloc[:3]
    answer = requests.post(credit_server.url + "/score", data=rows.to_json(),
                           headers={"Content-Type": "application/json"}, timeout=60)
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(answer.json()["local_importance_values"],
                               b.explainer.explain(rows), atol=1e-12)


def test_null_in_a_boolean_column_stays_missing():
    frame = pd.DataFrame({"x": [1.0, 2.0], "flag": [True, False]})
    schema = InputSchema.from_data(frame)
    schema.allow_nan = True
    rows = schema.validate([{"x": 1.0, "flag": None}, {"x": 2.0, "flag": "no"}])
    assert pd.isna(rows["flag"].iloc[0]) and rows["flag"].iloc[1] == "no"


def test_nulls_reach_a_pipeline_of_strings_only():
    X, y = make_credit(n_rows=300)
    strings = X[["employment", "home", "purpose"]]
    pipe = _pipeline(LogisticRegression(max_iter=500)).fit(strings, y)
    bundle = ExplanationBundle(pipe, PermutationScoringExplainer(n_background=10).fit(
        pipe, strings))
    records = strings.iloc[:2].to_dict("records")
    records[0]["home"] = None
    expected = strings.iloc[:2].copy()
    expected.loc[expected.index[0], "home"] = np.nan
    np.testing.assert_array_equal(bundle.score(records).probabilities,
                                  pipe.predict_proba(expected))
