"""The `scoring` command line: distill a model file into a bundle, explain a data file;
a bundle it distilled, served by `bentoml serve`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import joblib
import numpy as np
import pandas as pd
import pytest
import requests
from sklearn.datasets import load_diabetes
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline

from scoring import Explanation, SVMScoringExplainer
from scoring.artifacts.scored_table import scored_table
from scoring.cli import demo_model
from scoring.datasets import make_credit, make_triage, preprocessor
from tests.support.processes import run_side_by_side


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "scoring.cli", *args]


def in_home(home) -> dict[str, str]:
    """The environment of a command using the BentoML home ``home``."""
    return {**os.environ, "BENTOML_HOME": str(home)}


def run_cli(*args: str, home) -> subprocess.CompletedProcess:
    return subprocess.run(cli(*args), env=in_home(home), capture_output=True, text=True,
                          timeout=900)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = load_diabetes(as_frame=True)
    frame = data.frame
    model = Ridge().fit(frame.drop(columns=["target"]).to_numpy(), frame["target"])
    joblib.dump(model, root / "ridge.joblib")
    frame.to_csv(root / "train.csv", index=False)
    frame.iloc[:7].to_csv(root / "rows.csv", index=False)
    frame.iloc[:7].to_parquet(root / "rows.parquet")
    return root, model, frame


@pytest.fixture(scope="module")
def built(files):
    root, _, _ = files
    return run_cli("distill", "--model", str(root / "ridge.joblib"), "--data",
                   str(root / "train.csv"), "--target", "target", "--method", "linear",
                   "--name", "ridge", "--report", str(root / "report.json"),
                   home=root / "home")


def test_distill_then_explain_csv_and_json(files, built):
    root, model, frame = files
    home = root / "home"
    assert built.returncode == 0, built.stderr
    tag = built.stdout.strip().splitlines()[-1]
    assert tag.startswith("ridge:")
    # a short story on stderr, the full report in the file asked for
    lines = built.stderr.splitlines()
    assert any(line.startswith("[distill] linear: rel. L2 error") and " -> shipped: " in line
               for line in lines)
    assert f"full report in {root / 'report.json'}" in lines[-1] and "{" not in built.stderr
    report = json.loads((root / "report.json").read_text())
    assert report["method"] == "linear" and report["tried"][0]["verdict"] == "shipped"

    out, as_json = run_side_by_side(
        [cli("explain", "--bundle", tag, "--data", str(root / "rows.csv"), "--drop", "target",
             "--output", str(root / "values.csv")),
         cli("explain", "--bundle", tag, "--data", str(root / "rows.parquet"), "--drop",
             "target")], timeout=300, env=in_home(home))
    assert out.returncode == 0, out.stderr
    values = pd.read_csv(root / "values.csv")
    features = [c for c in frame.columns if c != "target"]
    assert list(values.columns) == ["row", "prediction", *features, "expected_value"]
    X = frame[features].iloc[:7].to_numpy()
    np.testing.assert_allclose(values["prediction"], model.predict(X), rtol=1e-12)
    np.testing.assert_allclose(values[features].sum(axis=1) + values["expected_value"],
                               model.predict(X), atol=1e-8)

    assert as_json.returncode == 0, as_json.stderr
    explanation = Explanation.from_json(as_json.stdout)
    np.testing.assert_allclose(explanation.local_importance_values, values[features].to_numpy())


def test_cli_errors_name_the_problem(files):
    root, _, _ = files
    missing_target, no_model, no_bundle = run_side_by_side(
        [cli("distill", "--model", str(root / "ridge.joblib"), "--data",
             str(root / "train.csv"), "--target", "nope"),
         cli("distill", "--model", str(root / "absent.joblib"), "--data",
             str(root / "train.csv"), "--target", "target"),
         cli("explain", "--bundle", "absent:latest", "--data", str(root / "rows.csv"))],
        timeout=300, env=in_home(root / "home-errors"))
    assert missing_target.returncode != 0
    assert "target column 'nope'" in missing_target.stderr
    assert no_model.returncode != 0 and "does not exist" in no_model.stderr
    assert no_bundle.returncode != 0 and "no bundle 'absent:latest'" in no_bundle.stderr


def test_explain_rejects_unknown_columns(files, built):
    root, _, _ = files
    assert built.returncode == 0, built.stderr
    out = run_cli("explain", "--bundle", "ridge:latest", "--data", str(root / "rows.csv"),
                  home=root / "home")
    # the target column is not a model input: the error names it
    assert out.returncode != 0
    assert "unknown column(s) ['target']" in out.stderr


def test_the_demo_model_is_fitted_and_explained_without_a_future_warning():
    """The first command a new user runs: the seed's ``SVC(probability=True)`` is deprecated
    in scikit-learn 1.9, so the demo calibrates the SVC (test_readme runs the whole demo)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        model, x_train, _ = demo_model()
        explainer = SVMScoringExplainer(n_background=5).fit(model, x_train)
        values = explainer.explain(x_train[:3])
    np.testing.assert_allclose(values.sum(-1).T + explainer.expected_values,
                               model.predict_proba(x_train[:3]), atol=1e-8)


def _credit_files(tmp_path, *, n_rows: int, n_estimators: int, n_explained: int):
    """A boosted credit pipeline (strings with missing values, skewed numbers, a
    ColumnTransformer) as a user has it: credit.joblib, train.csv with its ``default``
    target, and rows.csv of its first ``n_explained`` rows; returns ``X, y, pipeline``."""
    X, y = make_credit(n_rows=n_rows)
    pipe = Pipeline([("prep", preprocessor()), ("model", GradientBoostingClassifier(
        n_estimators=n_estimators, random_state=0))]).fit(X, y)
    joblib.dump(pipe, tmp_path / "credit.joblib")
    X.assign(default=y).to_csv(tmp_path / "train.csv", index=False)
    X.iloc[:n_explained].to_csv(tmp_path / "rows.csv", index=False)
    return X, y, pipe


# a long run (distill end to end): the integration tier
@pytest.mark.integration
def test_distill_and_explain_a_mixed_type_pipeline_from_csv(tmp_path):
    """Strings with missing values, skewed numbers, a ColumnTransformer in the pipeline:
    the file a user has, through the command line, explained into CSV, Parquet and JSON
    alike (the CSV had no prediction nor probability, the Parquet files of the Dask path
    had them)."""
    X, _, pipe = _credit_files(tmp_path, n_rows=400, n_estimators=30, n_explained=6)
    home = tmp_path / "home"
    built = run_cli("distill", "--model", str(tmp_path / "credit.joblib"), "--data",
                    str(tmp_path / "train.csv"), "--target", "default", "--method",
                    "permutation", "--dashboard-rows", "50", home=home)
    assert built.returncode == 0, built.stderr
    tag = built.stdout.strip().splitlines()[-1]

    def explain(data: str, output: str) -> list[str]:
        return cli("explain", "--bundle", tag, "--data", str(tmp_path / data), "--output",
                   str(tmp_path / output))

    # the bundle stores 50 explained training rows for its dashboard
    report, *written = run_side_by_side(
        [cli("report", "--bundle", tag, "--output", str(tmp_path / "report.html")),
         explain("rows.csv", "values.csv"), explain("rows.csv", "values.parquet"),
         explain("rows.csv", "values.json")],
        timeout=600, env=in_home(home))
    assert report.returncode == 0 and "from 50 explained rows" in report.stderr, report.stderr
    for out in written:
        assert out.returncode == 0, out.stderr
    assert "wrote 6 explained rows to" in written[0].stderr

    # one line per row and class: the same columns, the same values, in CSV and Parquet
    values = pd.read_csv(tmp_path / "values.csv")
    assert list(values.columns) == ["row", "class", "prediction", "probability",
                                    *X.columns, "expected_value"]  # one value per raw column
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "values.parquet"), values,
                                  check_exact=False, rtol=1e-15)
    # JSON: the explanation (what the dashboard reads), with the rows' predictions and
    # probabilities, holding the same lines
    explanation = Explanation.from_json((tmp_path / "values.json").read_text())
    assert explanation.data is not None and explanation.features == list(X.columns)
    pd.testing.assert_frame_equal(
        scored_table(explanation, np.asarray(explanation.extra["predictions"]),
                     np.asarray(explanation.extra["probabilities"])), values,
        check_exact=False, rtol=1e-15, check_dtype=False)  # CSV reads the classes as ints

    rows = pd.read_csv(tmp_path / "rows.csv")  # NaN where the CSV cell is empty
    assert values["row"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    np.testing.assert_array_equal(values["prediction"].to_numpy()[::2], pipe.predict(rows))
    np.testing.assert_allclose(values["probability"], pipe.predict_proba(rows).reshape(-1),
                               rtol=1e-12)
    positive = values[values["class"] == 1]
    total = positive[list(X.columns)].sum(axis=1) + positive["expected_value"]
    np.testing.assert_allclose(total.to_numpy(), pipe.predict_proba(rows)[:, 1], atol=1e-10)


# -- distilled on the command line, served, asked with nulls ------------------------------
@dataclass(frozen=True)
class Scenario:
    make_data: Callable  # a scoring.datasets maker: strings and numbers with missing values
    estimator: Callable[[], object]
    method: str  # scoring distill --method
    params: dict  # what the report's params of the shipped explainer hold
    nulls: tuple[str, ...]  # columns the first row sends as JSON null: a number, a string


SCENARIOS = {
    # a forest: exact values per raw column from the tree path engine
    "forest": Scenario(make_credit, lambda: RandomForestClassifier(
        n_estimators=30, max_depth=6, random_state=0), "tree", {"engine": "paths"},
        ("income", "employment")),
    # 3-class histogram boosting: amortized networks on the exact margin base, whose path
    # engine the served process rebuilds from the bundle
    "boosting": Scenario(make_triage, lambda: HistGradientBoostingClassifier(
        max_iter=40, random_state=0), "amortized", {"margin_link": "softmax"},
        ("heart_rate", "symptom")),
}


@pytest.mark.integration
@pytest.mark.parametrize("name", SCENARIOS)
def test_a_pipeline_distilled_from_csv_is_served_with_the_models_answers(name, tmp_path,
                                                                          servers):
    """A user's pipeline on a CSV with empty cells: `scoring distill`, then `bentoml serve`
    of the bundle; a JSON null gets the model's own answer for NaN and values adding up to
    it exactly."""
    case = SCENARIOS[name]
    X, y = case.make_data(n_rows=500)
    pipe = Pipeline([("prep", preprocessor()), ("model", case.estimator())]).fit(X, y)
    joblib.dump(pipe, tmp_path / "model.joblib")
    X.assign(**{y.name: y}).to_csv(tmp_path / "train.csv", index=False)
    home = tmp_path / "home"
    built = run_cli("distill", "--model", str(tmp_path / "model.joblib"), "--data",
                    str(tmp_path / "train.csv"), "--target", str(y.name), "--method",
                    case.method, "--dashboard-rows", "20", "--name", name, "--report",
                    str(tmp_path / "report.json"), home=home)
    assert built.returncode == 0, built.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["method"] == case.method
    assert case.params.items() <= report["params"].items(), report["params"]
    server = servers.start(None, home, tmp_path / "serve.log",
                           bundle=built.stdout.strip().splitlines()[-1])
    try:
        records = json.loads(X.iloc[:3].to_json(orient="records"))
        records[0].update(dict.fromkeys(case.nulls))
        reply = requests.post(server.url + "/predict", json={"rows": records}, timeout=60)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["feature_names"] == list(X.columns)  # raw columns
        rows = X.iloc[:3].copy()
        rows.loc[rows.index[0], list(case.nulls)] = np.nan
        expected = pipe.predict_proba(rows)
        np.testing.assert_allclose(body["probabilities"], expected, atol=1e-12)
        values = np.asarray(body["local_importance_values"])
        np.testing.assert_allclose(values.sum(-1).T + body["expected_values"], expected,
                                   atol=1e-9)
        bad = requests.post(server.url + "/predict", json={"rows": [{"age": "old"}]},
                            timeout=60)
        assert bad.status_code == 400 and bad.json()["reason"]
        assert requests.post(server.url + "/predict", json={"rows": records[1:]},
                             timeout=60).status_code == 200
    finally:
        servers.stop(server)


# a long run (distill end to end): the integration tier
@pytest.mark.integration
def test_a_boosted_classifiers_margin_is_explained_exactly_from_the_command_line(tmp_path):
    """``--model-output decision_function``: the log-odds of a boosted classifier, which
    the tree path engine explains exactly (shap's TreeExplainer's own default for boosted
    trees); an output the model lacks is refused in one line."""
    X, y, pipe = _credit_files(tmp_path, n_rows=300, n_estimators=20, n_explained=5)
    home = tmp_path / "home"
    built = run_cli("distill", "--model", str(tmp_path / "credit.joblib"), "--data",
                    str(tmp_path / "train.csv"), "--target", "default", "--model-output",
                    "decision_function", "--dashboard-rows", "0", home=home)
    assert built.returncode == 0, built.stderr
    assert "(tree explainer" in built.stderr, built.stderr
    tag = built.stdout.strip().splitlines()[-1]
    out = run_cli("explain", "--bundle", tag, "--data", str(tmp_path / "rows.csv"),
                  "--output", str(tmp_path / "values.csv"), home=home)
    assert out.returncode == 0, out.stderr
    values = pd.read_csv(tmp_path / "values.csv")
    positive = values[values["class"] == 1]  # the margin is the positive class's log-odds
    total = positive[list(X.columns)].sum(axis=1) + positive["expected_value"]
    rows = pd.read_csv(tmp_path / "rows.csv")
    np.testing.assert_allclose(total.to_numpy(), pipe.decision_function(rows), atol=1e-9)

    ridge = Pipeline([("prep", preprocessor()), ("model", Ridge())]).fit(X, y)
    joblib.dump(ridge, tmp_path / "ridge.joblib")
    refused = run_cli("distill", "--model", str(tmp_path / "ridge.joblib"), "--data",
                      str(tmp_path / "train.csv"), "--target", "default", "--model-output",
                      "predict_proba", home=home)
    assert refused.returncode != 0
    assert refused.stderr.strip().splitlines()[-1].startswith("error: "), refused.stderr
    assert "predict_proba" in refused.stderr and "Traceback" not in refused.stderr
