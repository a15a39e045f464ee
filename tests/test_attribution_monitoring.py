"""Attribution monitoring: per-row shares and their reference, the counters a real
`bentoml serve` exports, the generated drift rules, and a real Prometheus turning the drift
alert's expression true on shifted traffic only."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from scoring import Explanation, LinearScoringExplainer
from scoring.artifacts.bundle import ExplanationBundle
from scoring.monitoring.attribution import (
    OTHER,
    REFERENCE_KEY,
    AttributionMonitor,
    mean_row_shares,
    with_reference,
)

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
sys.path.insert(0, str(DEPLOY))
import attribution_rules  # noqa: E402  (deploy/ holds scripts, not a package)

sys.path.remove(str(DEPLOY))


@pytest.fixture(scope="module")
def cancer() -> tuple[LinearScoringExplainer, np.ndarray, list[str]]:
    data = load_breast_cancer()
    model = LogisticRegression(max_iter=5000).fit(data.data, data.target)
    explainer = LinearScoringExplainer().fit(model, data.data, features=list(data.feature_names),
                                             classes=list(data.target_names))
    return explainer, data.data, list(data.feature_names)


# -- the maths: shares per row, their reference, the monitored features -------------------
def test_mean_row_shares_is_the_mean_of_each_rows_shares():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(3, 6, 4)) * rng.uniform(0.01, 100, size=(1, 6, 1))
    values[:, 2] = 0.0  # a row without attribution is left out
    expected = np.array([np.mean([np.abs(r) / np.abs(r).sum() for i, r in enumerate(out)
                                  if i != 2], axis=0) for out in values])
    np.testing.assert_allclose(mean_row_shares(values), expected)
    np.testing.assert_allclose(mean_row_shares(values[1]), expected[1])  # regression layout
    # the mean of per-row shares is not the normalised mean |importance| the rows add up to
    normalised = np.abs(values).mean(1) / np.abs(values).mean(1).sum(-1, keepdims=True)
    assert np.abs(mean_row_shares(values) - normalised).max() > 0.01


def test_the_rows_of_the_global_explanation_give_back_its_reference(cancer):
    explainer, X, features = cancer
    local = explainer.explain_local(X[:40])
    monitor = AttributionMonitor(with_reference(local), top_n=5)
    top = local.get_ranked_global_names()[:5]
    assert monitor.labels == [f for f in features if f in top] + [OTHER]
    assert monitor.outputs == ["malignant", "benign"]
    np.testing.assert_allclose(monitor.reference_shares.sum(-1), 1.0)
    rows, sums = monitor.share_sums(local)
    assert rows.tolist() == [40, 40]
    # one definition for live and reference: the same rows give the same shares
    np.testing.assert_allclose(sums / rows[:, None], monitor.reference_shares, atol=1e-12)
    assert monitor.exact_reference


def test_all_features_monitored_leave_no_other_bucket(cancer):
    explainer, X, features = cancer
    monitor = AttributionMonitor(explainer.explain_global(X), top_n=len(features))
    assert monitor.labels == features


def test_regressors_are_monitored_on_their_one_output():
    X, y = load_breast_cancer(return_X_y=True)
    explainer = LinearScoringExplainer().fit(LinearRegression().fit(X, y), X)
    monitor = AttributionMonitor(explainer.explain_global(X), top_n=3)
    assert monitor.outputs == ["predict"] and len(monitor.labels) == 4
    rows, sums = monitor.share_sums(explainer.explain_local(X[:7]))
    assert rows.tolist() == [7] and sums.shape == (1, 4)
    np.testing.assert_allclose(sums.sum(-1), 7.0)


def test_without_recorded_shares_the_reference_is_the_normalised_global_importance(cancer):
    explainer, X, _ = cancer
    glob = explainer.explain_global(X)
    old = Explanation(glob.features, global_importance_values=glob.global_importance_values,
                      classes=glob.classes, extra={"n_rows": 50})
    monitor = AttributionMonitor(old, top_n=30)
    assert not monitor.exact_reference
    normalised = glob.global_importance_values / glob.global_importance_values.sum()
    np.testing.assert_allclose(monitor.reference_shares, [normalised, normalised])


def test_the_reference_is_saved_with_the_global_explanation(cancer):
    explainer, X, features = cancer
    glob = explainer.explain_global(X)
    loaded = Explanation.from_json(glob.to_json())
    np.testing.assert_array_equal(loaded.extra[REFERENCE_KEY], glob.extra[REFERENCE_KEY])
    assert np.shape(loaded.extra[REFERENCE_KEY]) == (2, len(features))
    top = glob.select_features(features[:3])
    np.testing.assert_array_equal(top.extra[REFERENCE_KEY],
                                  np.asarray(glob.extra[REFERENCE_KEY])[:, :3])


def test_engineered_explanations_are_not_counted():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"age": rng.normal(40, 10, 80), "city": rng.choice(["a", "b"], 80)})
    columns = ColumnTransformer([("num", StandardScaler(), ["age"]),
                                 ("cat", OneHotEncoder(), ["city"])]).fit(frame)
    model = LogisticRegression().fit(columns.transform(frame), frame["age"] > 40)
    explainer = LinearScoringExplainer().fit(model, frame, transformations=columns)
    monitor = AttributionMonitor(explainer.explain_global(frame), top_n=10)
    assert monitor.labels == ["age", "city"]
    assert monitor.share_sums(explainer.explain_local(frame[:3], get_raw=False)) is None
    assert monitor.share_sums(explainer.explain_local(frame[:3]))[0].tolist() == [3, 3]
    # a bundle whose global explanation is over the engineered columns is not monitored
    from service.lifecycle import attribution_monitor

    engineered = explainer.explain_local(frame, get_raw=False).without_local()
    assert attribution_monitor(ExplanationBundle(model, explainer,
                                                 global_explanation=engineered)) is None


def test_the_service_settings_choose_the_features_or_turn_monitoring_off(cancer, monkeypatch,
                                                                        caplog):
    from service.lifecycle import attribution_monitor

    explainer, X, _ = cancer
    model = explainer.spec_.function.model
    bundle = ExplanationBundle(model, explainer,
                               global_explanation=explainer.explain_global(X))
    monkeypatch.setenv("SCORING_DRIFT_TOP_FEATURES", "3")
    assert len(attribution_monitor(bundle).labels) == 4
    monkeypatch.delenv("SCORING_DRIFT_TOP_FEATURES")
    assert len(attribution_monitor(bundle).labels) == 11  # the default, 10, and other
    for bad in ("0", "-2", "ten", "", "³", "３"):  # ASCII digits only
        monkeypatch.setenv("SCORING_DRIFT_TOP_FEATURES", bad)
        caplog.clear()
        with pytest.raises(SystemExit) as stopped:
            attribution_monitor(bundle)
        assert stopped.value.code == 1 and "SCORING_DRIFT_TOP_FEATURES" in caplog.text
    monkeypatch.setenv("SCORING_DRIFT_MONITORING", "0")
    assert attribution_monitor(bundle) is None
    monkeypatch.delenv("SCORING_DRIFT_MONITORING")
    monkeypatch.setenv("SCORING_DRIFT_TOP_FEATURES", "10")
    assert attribution_monitor(ExplanationBundle(model, explainer)) is None


# -- the service: counters of what it served, the reference as a gauge ---------------------
def _scrape(url: str) -> dict[tuple, float]:
    """``/metrics``' scoring_attribution_* samples as {(name, output, feature): value}."""
    text = requests.get(url + "/metrics", timeout=10).text
    return {(s.name, s.labels.get("output"), s.labels.get("feature")): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.name.startswith("scoring_attribution_")}


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as JSON carries them: missing values as null."""
    return [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()}
            for r in frame.to_dict("records")]


def _served_bundle(bundle, bento_home: Path) -> ExplanationBundle:
    name, version = bundle.tag.split(":")
    return ExplanationBundle.read(bento_home / "models" / name / version, tag=bundle.tag)


def test_served_explanations_add_their_shares(credit_server, bundles, bento_home):
    monitor = AttributionMonitor(
        _served_bundle(bundles["credit"], bento_home).global_explanation, top_n=10)
    before = _scrape(credit_server.url)
    for (name, output, feature), value in before.items():
        if name == "scoring_attribution_reference_share":
            i, j = monitor.outputs.index(output), monitor.labels.index(feature)
            assert value == pytest.approx(monitor.reference_shares[i, j], abs=1e-12)
    assert {k[2] for k in before if k[0] == "scoring_attribution_share_total"} \
        == set(monitor.labels)

    frame = bundles["credit"].X.iloc[10:16]
    reply = requests.post(credit_server.url + "/predict", json={"rows": _records(frame)},
                          timeout=60)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    served = Explanation(body["feature_names"], classes=body["class_names"],
                         local_importance_values=body["local_importance_values"])
    rows, sums = monitor.share_sums(served)
    after = _scrape(credit_server.url)
    for i, output in enumerate(monitor.outputs):
        key = ("scoring_attribution_rows_total", output, None)
        assert after[key] - before.get(key, 0) == rows[i] == len(frame)
        for j, feature in enumerate(monitor.labels):
            key = ("scoring_attribution_share_total", output, feature)
            assert after[key] - before[key] == pytest.approx(sums[i, j], abs=1e-9)


def test_engineered_explanations_leave_the_counters_alone(tabular_server, bundles):
    rows = _records(bundles["tabular"].X.iloc[:3])
    before = _scrape(tabular_server.url)
    reply = requests.post(tabular_server.url + "/predict", json={"rows": rows,
                                                                 "get_raw": False}, timeout=60)
    assert reply.status_code == 200, reply.text
    assert _scrape(tabular_server.url) == before
    reply = requests.post(tabular_server.url + "/predict", json={"rows": rows}, timeout=60)
    assert reply.status_code == 200, reply.text
    after = _scrape(tabular_server.url)
    assert {after[k] - before.get(k, 0) for k in after
            if k[0] == "scoring_attribution_rows_total"} == {3}


# -- the rules: generated, and true on shifted traffic only --------------------------------
def test_the_rule_file_is_what_its_recorded_command_writes():
    text = (DEPLOY / "prometheus" / "attribution.yml").read_text()
    options = attribution_rules.recorded_options(text)
    assert text == attribution_rules.render(**options), \
        "deploy/prometheus/attribution.yml was edited: regenerate it with the command it names"
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert "attribution.yml" in config["rule_files"]


@pytest.mark.parametrize("options", [{"threshold": 1.5}, {"window": "an hour"},
                                     {"min_rows": 0}, {"for_": "15"}])
def test_bad_rule_options_are_refused(options):
    with pytest.raises(ValueError, match=next(iter(options)).rstrip("_")):
        attribution_rules.rule_group(**options)


# short enough for a test: the live shares over 20 s of traffic scraped every second
WINDOW, MIN_ROWS, THRESHOLD = "20s", 40, 0.2


@pytest.fixture
def drift_prometheus(credit_server, servers, tmp_path):
    """A real Prometheus with the drift rules over ``WINDOW`` scraping the credit server
    every second; yields ``query(expr, by)``: the result now as {label ``by``: value}."""
    rules = tmp_path / "attribution.yml"
    rules.write_text(attribution_rules.render(THRESHOLD, WINDOW, MIN_ROWS, "0s"))
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
              "rule_files": [str(rules)],
              "scrape_configs": [{"job_name": "scoring", "static_configs": [
                  {"targets": [urlsplit(credit_server.url).netloc]}]}]}
    url, proc = servers.start_prometheus(config, tmp_path)

    def query(expr: str, by: str = "output") -> dict[str, float]:
        body = requests.get(url + "/api/v1/query", params={"query": expr}, timeout=10).json()
        assert body["status"] == "success", (expr, body)
        return {s["metric"][by]: float(s["value"][1]) for s in body["data"]["result"]}

    try:
        yield query
    finally:
        servers.stop_process(proc, 15)


def _send_for(url: str, frame: pd.DataFrame, seconds: float) -> int:
    """POST ``frame``'s rows 20 at a time for ``seconds``; the rows sent."""
    sent, deadline = 0, time.monotonic() + seconds
    rng = np.random.default_rng(0)
    while time.monotonic() < deadline:
        batch = frame.iloc[rng.choice(len(frame), 20, replace=False)]
        reply = requests.post(url + "/predict", json={"rows": _records(batch)}, timeout=60)
        assert reply.status_code == 200, reply.text
        sent += len(batch)
        time.sleep(0.1)  # a steady trickle, not a CPU hog on a shared machine
    return sent


@pytest.mark.integration
def test_shifted_traffic_turns_the_drift_alert_true(drift_prometheus, credit_server,
                                                    bundles):
    query = drift_prometheus
    names = attribution_rules.rule_names(WINDOW)
    (alert,) = [r["expr"] for r in attribution_rules.rule_group(
        THRESHOLD, WINDOW, MIN_ROWS, "0s")["rules"] if r.get("alert")]
    X = bundles["credit"].X  # the training rows: strings, missing values, skewed numbers
    window = float(WINDOW.removesuffix("s"))

    # the training distribution for a whole window: counted, close to the reference
    _send_for(credit_server.url, X, window + 5)
    rows = query(names["rows"])
    assert set(rows) == {"0", "1"} and min(rows.values()) >= MIN_ROWS, rows
    distance = query(names["distance"])
    assert set(distance) == {"0", "1"} and max(distance.values()) < THRESHOLD, distance
    assert query(alert) == {}

    # one feature far off its training range: its share grows and the alert turns true
    shifted = X.assign(debt_ratio=X["debt_ratio"].max() * 20)
    _send_for(credit_server.url, shifted, window + 5)
    fired = query(alert)
    assert set(fired) == {"0", "1"} and min(fired.values()) > THRESHOLD, fired
    shift = query(f'{names["share"]}{{output="1"}} - on (output, feature) '
                  f'{names["reference"]}', by="feature")
    assert max(shift, key=shift.get) == "debt_ratio", shift
