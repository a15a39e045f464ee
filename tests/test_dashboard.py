"""The dashboard's data: stored in bundles, bounded views, and its JSON routes on a real
`bentoml serve` of the credit pipeline (string categoricals with missing values)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests

from scoring.artifacts.bundle import DATASET_FILE, BundleError, ExplanationBundle
from scoring.core.explanation import Explanation
from scoring.dashboard import DashboardData, dashboard_data, explain_dataset
from scoring.dashboard.data import MAX_POINTS
from scoring.model.schema import InputError


def model_rows(records: list[dict], X: pd.DataFrame) -> pd.DataFrame:
    """Records as the training frame holds them (missing values as NaN, its dtypes)."""
    frame = pd.DataFrame(records, columns=X.columns)
    for name in X.columns:
        if pd.api.types.is_numeric_dtype(X[name]):
            frame[name] = pd.to_numeric(frame[name]).astype(float)
        else:
            frame[name] = frame[name].astype(object).where(frame[name].notna(), np.nan)
    return frame


def test_a_bundle_stores_its_dataset_explanation_and_checks_its_hash(bundles, tmp_path):
    credit = bundles["credit"]
    bundle = ExplanationBundle(credit.model, credit.explainer)
    bundle.dataset_explanation = explain_dataset(bundle, credit.X, 40)
    assert bundle.dataset_explanation.num_examples == 40
    bundle.write(tmp_path)
    read = ExplanationBundle.read(tmp_path)
    assert read.dataset_explanation == bundle.dataset_explanation
    # the rows keep their types: strings, missing values
    data = DashboardData(read.dataset_explanation, kinds=read.input_schema.kinds)
    assert data.kinds == list(read.input_schema.kinds)

    path = tmp_path / DATASET_FILE
    path.write_text(path.read_text().replace('"salaried"', '"retired"', 1))
    with pytest.raises(BundleError, match=DATASET_FILE):
        ExplanationBundle.read(tmp_path)


def test_an_explainer_calling_the_model_stores_as_many_rows_as_its_budget(bundles):
    credit = bundles["credit"]  # a permutation explainer: model rows per explained row
    bundle = ExplanationBundle(credit.model, credit.explainer)
    per_row = credit.explainer.model_rows_per_row()
    assert per_row > 0
    few = explain_dataset(bundle, credit.X, 300, model_rows=12 * per_row)
    assert few.num_examples == 12
    assert explain_dataset(bundle, credit.X, 300, model_rows=1).num_examples == 10  # at least
    # the same uniform sample, cut: its first rows with the same values
    full = explain_dataset(bundle, credit.X, 300)
    assert full.num_examples == 300
    np.testing.assert_allclose(few.local_importance_values,
                               full.local_importance_values[:, :12], atol=1e-12)


def test_every_view_is_bounded_whatever_the_number_of_rows():
    rng = np.random.default_rng(0)
    n, features = 60_000, ["a", "b", "c"]
    data = np.column_stack([rng.normal(size=n), rng.choice(["x", "y"], n),
                            rng.integers(0, 5, n)]).astype(object)
    values = rng.normal(size=(2, n, 3))
    values[0] = -values[1]
    explanation = Explanation(features, local_importance_values=values,
                              expected_values=[0.4, 0.6], classes=["no", "yes"], data=data)
    view = DashboardData(explanation, kinds=["numeric", "categorical", "numeric"])
    points = view.points("value:a", "output", "value:b", output=1)
    assert points["n_shown"] == 1_000 and len(points["x"]) == 1_000 and points["n_rows"] == n
    assert len(set(points["rows"])) == 1_000
    assert len(view.points("value:a", "output", max_points=MAX_POINTS)["x"]) == MAX_POINTS
    i = points["rows"][0]
    assert points["y"][0] == pytest.approx(values[1, i].sum() + 0.6)
    assert points["color"][0] == data[i, 1]
    predicted = view.points("value:a", "predicted", max_points=50)
    assert predicted["y"] == ["yes" if values[1, r].sum() + 0.6 > 0.5 else "no"
                              for r in predicted["rows"]]
    summary = view.summary_points(output=1, top_k=2)
    assert len(summary["features"]) == 2 and all(len(v) == 150 for v in summary["importances"])
    with pytest.raises(InputError, match="max_points"):
        view.points("value:a", "output", max_points=MAX_POINTS + 1)
    for bad in ({"x": "value:nope"}, {"output": 2}):
        with pytest.raises(InputError):
            view.points(**{"x": "value:a", "y": "output", **bad})
    assert view.feature_grid("b") == ["x", "y"]
    assert view.feature_grid("c", 10) == [0.0, 1.0, 2.0, 3.0, 4.0]  # integers stay integers


def test_a_regression_has_one_output_and_no_predicted_class():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(30, 2))
    data = np.column_stack([rng.normal(size=30), rng.choice(["u", "v"], 30)]).astype(object)
    view = DashboardData(Explanation(["n", "c"], local_importance_values=values,
                                     expected_values=3.0, data=data))
    assert view.summary()["outputs"] == ["prediction"] and view.kinds == ["numeric",
                                                                           "categorical"]
    row = view.row(4)
    np.testing.assert_allclose(row["model_output"], [values[4].sum() + 3.0])
    assert np.shape(row["importances"]) == (1, 2)
    with pytest.raises(InputError, match="predicted"):
        view.points("value:n", "predicted")


def test_the_page_offers_engineered_values_only_when_the_explainer_has_them(bundles,
                                                                          tmp_path):
    """Ticking "engineered features" on a bundle without them showed a red 400; the page
    now hides the box unless the summary says the service can give them."""
    credit, tabular = bundles["credit"], bundles["tabular"]
    bundle = ExplanationBundle(credit.model, credit.explainer)
    bundle.dataset_explanation = explain_dataset(bundle, credit.X, 30)
    with pytest.raises(InputError, match="engineered"):  # what the page would ask for
        bundle.score(credit.X.head(1), get_raw=False)
    summary = dashboard_data(bundle).summary()
    assert summary["engineered"] is False
    # the local views start on the first row of every view's sample
    assert summary["first_row"] in DashboardData(bundle.dataset_explanation).points(
        "output", "output", max_points=1)["rows"]

    linear = ExplanationBundle(tabular.model, tabular.explainer)
    explained = linear.score(tabular.X.head(40), keep_rows=True).explanation
    (tmp_path / "rows.json").write_text(explained.to_json())
    assert dashboard_data(linear, tmp_path / "rows.json").summary()["engineered"] is True
    engineered = linear.score(tabular.X.head(1), get_raw=False).explanation
    assert len(engineered.features) > len(explained.features)
    # rows explained per engineered column already: no second view to offer
    (tmp_path / "engineered.json").write_text(
        linear.score(tabular.X.head(40), get_raw=False, keep_rows=True).explanation.to_json())
    assert dashboard_data(linear, tmp_path / "engineered.json").summary()["engineered"] \
        is False


def test_the_served_views(credit_server, bundles):
    url, credit = credit_server.url, bundles["credit"]
    summary = requests.get(url + "/dashboard/api/summary", timeout=30).json()
    assert [f["name"] for f in summary["features"]] == list(credit.X.columns)
    assert summary["n_rows"] == 300 and summary["outputs"] == ["0", "1"]
    kinds = {f["name"]: f["kind"] for f in summary["features"]}
    assert kinds["employment"] == "categorical" and kinds["income"] == "numeric"

    importance = requests.get(url + "/dashboard/api/importance?output=1&top_k=3",
                              timeout=30).json()
    assert len(importance["features"]) == 3
    assert importance["values"] == sorted(importance["values"], reverse=True)

    # a stored row's importances are what /predict answers for its values
    row = requests.get(url + "/dashboard/api/row?row=7", timeout=30).json()
    answer = requests.post(url + "/predict", json={"rows": [row["values"]]}, timeout=60).json()
    np.testing.assert_allclose(np.asarray(answer["local_importance_values"])[:, 0],
                               row["importances"], atol=1e-9)
    np.testing.assert_allclose(answer["probabilities"][0], row["model_output"], atol=1e-9)

    # ICE: the model's own probabilities on the grid, categories included
    for feature in ("debt_ratio", "purpose"):
        ice = requests.post(url + "/dashboard/api/ice", timeout=60,
                            json={"row": row["values"], "feature": feature}).json()
        assert len(ice["grid"]) >= 2
        direct = credit.model.predict_proba(model_rows(
            [{**row["values"], feature: g} for g in ice["grid"]], credit.X))
        np.testing.assert_allclose(ice["probabilities"], direct, atol=1e-9)


@pytest.mark.parametrize("path,reason", [
    ("/dashboard/api/points?x=value:nope&y=output", "bad_axis"),
    ("/dashboard/api/points?y=output", "bad_axis"),
    ("/dashboard/api/points?x=output&y=output&max_points=999999", "bad_max_points"),
    ("/dashboard/api/points?x=output&y=output&output=-1", "bad_query"),
    ("/dashboard/api/points?x=predicted&y=output&output=2", "bad_output"),
    ("/dashboard/api/importance?output=5", "bad_output"),
    ("/dashboard/api/row?row=300", "bad_row"),
    ("/dashboard/api/row", "bad_row"),
    ("/dashboard/api/summary_points?top_k=0", "bad_top_k"),
])
def test_bad_view_requests_are_4xx_naming_the_problem(credit_server, path, reason):
    r = requests.get(credit_server.url + path, timeout=30)
    assert r.status_code == 400, r.text
    assert r.json()["reason"] == reason and r.json()["error"]


def test_bad_ice_requests_and_bundles_without_rows(credit_server, svc_server):
    url = credit_server.url + "/dashboard/api/ice"
    for body, reason in (({"row": {"age": 40}, "feature": "age"}, "missing_column"),
                         ({"row": [1], "feature": "age"}, "bad_body"),
                         ({"feature": 3}, "bad_body")):
        r = requests.post(url, json=body, timeout=30)
        assert r.status_code == 400 and r.json()["reason"] == reason, r.text
    r = requests.post(url, data=b"{", headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 400 and r.json()["reason"] == "invalid_json"
    assert requests.get(credit_server.url + "/dashboard/api/nope", timeout=30).status_code == 404
    # the page is served everywhere; without explained rows the views say how to get them
    assert requests.get(svc_server.url + "/dashboard", timeout=30).status_code == 200
    r = requests.get(svc_server.url + "/dashboard/api/summary", timeout=30)
    assert r.status_code == 404 and r.json()["reason"] == "no_dashboard_data"
    assert "SCORING_DASHBOARD_EXPLANATION" in r.json()["error"]


def test_the_commands_refuse_a_bundle_without_rows(bundles, bento_home, tmp_path):
    out = subprocess.run([str(Path(sys.executable).with_name("scoring")), "report", "--bundle",
                          bundles["svc"].tag, "--output", str(tmp_path / "report.html")],
                         env={**os.environ, "BENTOML_HOME": str(bento_home)},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "stores no explained rows" in out.stderr
    assert "--explanation" in out.stderr and not (tmp_path / "report.html").exists()


def test_an_unreadable_explanation_file_stops_the_service(bundles, tmp_path, monkeypatch,
                                                         caplog):
    from service.lifecycle import check_dashboard_data

    bundle = ExplanationBundle(bundles["credit"].model, bundles["credit"].explainer)
    global_only = bundles["credit"].explainer.explain_global(bundles["credit"].X, max_rows=5)
    files = {"garbage.json": "{not json", "global.json": global_only.to_json()}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    for name, message in (("garbage.json", "cannot read it"),
                          ("global.json", "holds no local values"),
                          ("absent.json", "cannot read it")):
        monkeypatch.setenv("SCORING_DASHBOARD_EXPLANATION", str(tmp_path / name))
        caplog.clear()
        with pytest.raises(SystemExit) as stopped:
            check_dashboard_data(bundle)
        assert stopped.value.code == 1 and message in caplog.text, caplog.text
