"""The HTTP service against a real `bentoml serve`: outputs equal the library's own, bad
input gets a 4xx naming the problem, metrics count what was sent, bad bundles stop start-up."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_breast_cancer


def post(server, route, payload=None, data=None):
    if payload is not None:
        data = json.dumps(payload)
    return requests.post(server.url + route, data=data, timeout=60,
                         headers={"Content-Type": "application/json"})


# -- predictions and importances ----------------------------------------------------------
def test_predict_equals_the_model_and_the_scoring_explainer(svc_server, bundles):
    b = bundles["svc"]
    rows = b.X.iloc[:3].to_numpy()
    r = post(svc_server, "/predict", {"rows": rows.tolist()})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["predictions"] == b.model.predict(rows).tolist()
    np.testing.assert_allclose(out["probabilities"], b.model.predict_proba(rows), rtol=1e-9)
    values = np.asarray(out["local_importance_values"])
    assert values.shape == (2, 3, 30)  # (n_classes, n_rows, n_features)
    np.testing.assert_allclose(values, b.explainer.explain(rows), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(out["expected_values"], b.explainer.expected_values)
    assert out["feature_names"] == list(b.X.columns)
    assert out["class_names"] == ["malignant", "benign"]
    assert out["model_output"] == "predict_proba"
    # additivity: expected value + sum of importances = the explained probability
    recon = values.sum(-1) + np.asarray(out["expected_values"])[:, None]
    np.testing.assert_allclose(recon.T, out["probabilities"], atol=1e-8)
    assert "top_features" not in out


def test_records_give_the_same_answer_as_lists(svc_server, bundles):
    frame = bundles["svc"].X.iloc[3:5]
    by_list = post(svc_server, "/predict", {"rows": frame.to_numpy().tolist()}).json()
    by_record = post(svc_server, "/predict", {"rows": frame.to_dict("records")}).json()
    assert by_list == by_record
    one = post(svc_server, "/predict", {"rows": frame.to_dict("records")[0]}).json()
    assert one["predictions"] == by_list["predictions"][:1]


def test_top_k_ranks_features_per_class_and_row(svc_server):
    out = post(svc_server, "/predict", {"rows": [[1.0] * 30, [2.0] * 30], "top_k": 3}).json()
    values = np.asarray(out["local_importance_values"])
    top = out["top_features"]
    assert len(top) == 2 and all(len(per_class) == 2 for per_class in top)
    for c in range(2):
        for i in range(2):
            ranked = top[c][i]
            assert len(ranked) == 3
            expected = np.argsort(-np.abs(values[c, i]), kind="stable")[:3]
            assert [t["feature"] for t in ranked] == [out["feature_names"][j] for j in expected]
            np.testing.assert_allclose([t["value"] for t in ranked], values[c, i, expected])


def test_explain_false_and_the_explain_endpoint(svc_server, bundles):
    rows = bundles["svc"].X.iloc[:2].to_numpy().tolist()
    out = post(svc_server, "/predict", {"rows": rows, "explain": False}).json()
    assert set(out) == {"predictions", "probabilities"}
    only = post(svc_server, "/explain", {"rows": rows, "top_k": 2}).json()
    assert "predictions" not in only and "probabilities" not in only
    full = post(svc_server, "/predict", {"rows": rows}).json()
    assert only["local_importance_values"] == full["local_importance_values"]
    assert len(only["top_features"][0][0]) == 2


def test_get_raw_sums_onto_raw_columns(tabular_server, bundles):
    b = bundles["tabular"]
    frame = b.X.iloc[:4]
    records = frame.to_dict("records")
    raw = post(tabular_server, "/predict", {"rows": records, "get_raw": True, "top_k": 1})
    assert raw.status_code == 200, raw.text
    raw = raw.json()
    assert raw["feature_names"] == ["age", "income", "city"]
    # a binary decision function keeps both classes: the first is the negated second
    assert raw["class_names"] == [0, 1]
    assert raw["model_output"] == "decision_function"
    values = np.asarray(raw["local_importance_values"])
    assert values.shape == (2, 4, 3)
    np.testing.assert_allclose(values, b.explainer.explain(frame, get_raw=True), atol=1e-12)
    np.testing.assert_allclose(values[0], -values[1], atol=1e-12)
    engineered_rows = b.explainer.spec_.transform(frame)
    assert raw["predictions"] == b.model.predict(engineered_rows).tolist()
    decision = b.model.decision_function(engineered_rows)
    np.testing.assert_allclose(values[1].sum(-1) + raw["expected_values"][1], decision,
                               atol=1e-8)
    assert [[len(r) for r in per_class] for per_class in raw["top_features"]] == [[1] * 4] * 2

    # raw columns unless asked otherwise: the rows sent are raw
    default = post(tabular_server, "/predict", {"rows": records}).json()
    assert default["feature_names"] == raw["feature_names"]
    engineered = post(tabular_server, "/predict", {"rows": records, "get_raw": False}).json()
    assert engineered["feature_names"] == b.explainer.spec_.engineered_features
    np.testing.assert_allclose(np.asarray(engineered["local_importance_values"]).sum(-1),
                               values.sum(-1), atol=1e-10)


def test_rows_the_model_refuses_get_a_400(tabular_server):
    bad = {"age": 30.0, "income": 40.0, "city": "marseille"}  # unseen category
    r = post(tabular_server, "/predict", {"rows": [bad]})
    assert r.status_code == 400, r.text
    assert r.json()["reason"] == "model_rejected_input" and "marseille" in r.json()["error"]
    good = post(tabular_server, "/predict", {"rows": [{**bad, "city": "nice"}]})
    assert good.status_code == 200, good.text


def test_get_raw_without_transformations_is_refused(svc_server):
    r = post(svc_server, "/predict", {"rows": [[1.0] * 30], "get_raw": True})
    assert r.status_code == 400
    assert r.json()["reason"] == "get_raw_unavailable" and "transformations" in r.text


def test_score_takes_the_seed_clients_dataframe_json(svc_server, bundles):
    b = bundles["svc"]
    examples = b.X.iloc[:4]
    r = requests.post(svc_server.url + "/score", examples.to_json(),
                      headers={"Content-Type": "application/json"}, timeout=60)
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out) == {"predictions", "local_importance_values"}
    assert out["predictions"] == b.model.predict(examples.to_numpy()).tolist()
    np.testing.assert_allclose(out["local_importance_values"],
                               b.explainer.explain(examples.to_numpy()), rtol=1e-9, atol=1e-12)
    # an unnamed frame (built from an array) is read in training column order
    unnamed = requests.post(svc_server.url + "/score", pd.DataFrame(examples.to_numpy()).to_json(),
                            timeout=60).json()
    assert unnamed == out


def test_metadata(svc_server, bundles):
    meta = requests.get(svc_server.url + "/metadata", timeout=10).json()
    assert meta["tag"] == bundles["svc"].tag
    assert meta["feature_names"] == list(bundles["svc"].X.columns)
    assert meta["class_names"] == ["malignant", "benign"]
    assert meta["explainer"]["method"] == "kernel"
    assert meta["model_class"] == "sklearn.svm._classes.SVC"


def test_global_explanation_ranked(svc_server, bundles):
    stored = bundles["svc"].global_explanation
    out = requests.get(svc_server.url + "/explanation/global", params={"top_k": 5},
                       timeout=10).json()
    expected = stored.get_feature_importance_dict(5)
    assert out["feature_names"] == list(expected)
    np.testing.assert_allclose(out["global_importance_values"], list(expected.values()))
    assert out["class_names"] == ["malignant", "benign"]
    full = requests.get(svc_server.url + "/explanation/global", timeout=10).json()
    assert len(full["feature_names"]) == 30
    values = full["global_importance_values"]
    assert values == sorted(values, reverse=True)
    for bad in ("0", "x", "-2", "1.5"):
        r = requests.get(svc_server.url + "/explanation/global", params={"top_k": bad},
                         timeout=10)
        assert r.status_code == 400 and r.json()["reason"] == "bad_top_k", r.text


# -- bad input --------------------------------------------------------------------------
NAMES = [str(n) for n in load_breast_cancer().feature_names]
GOOD = [1.0] * 30


def _record(**changes):
    record = dict(zip(NAMES, GOOD, strict=True))
    record.update(changes)
    return record


def _without(name):
    record = _record()
    del record[name]
    return record


BAD = [
    # (id, body (str or object), status, reason, text in the message, row, field)
    ("not-json", "rows: 1,2", 400, "invalid_json", "not valid JSON", None, None),
    ("empty-body", "", 400, "invalid_json", "empty request body", None, None),
    ("body-a-list", [GOOD], 400, "bad_body", "JSON object", None, None),
    ("no-rows", {"row": [GOOD]}, 400, "bad_body", "unknown field", None, "row"),
    ("rows-a-string", {"rows": "1,2"}, 400, "bad_body", "list of records", None, "rows"),
    ("wrong-column-count", {"rows": [[1.0, 2.0, 3.0]]}, 400, "wrong_column_count",
     "3 columns; the model takes 30", None, None),
    ("ragged-rows", {"rows": [GOOD, GOOD[:5]]}, 400, "wrong_column_count", "row 1 has 5",
     1, None),
    ("unknown-column", {"rows": [_record(colour=1.0)]}, 400, "unknown_column", "colour",
     0, "colour"),
    ("missing-feature", {"rows": [_record(), _without("mean texture")]}, 400,
     "missing_column", "missing field(s) ['mean texture']", 1, "mean texture"),
    ("string-for-number", {"rows": [_record(), _record(**{"mean area": "big"})]}, 400,
     "not_a_number", "expected a number, got 'big'", 1, "mean area"),
    ("numeric-string", {"rows": [["12.5", *GOOD[1:]]]}, 400, "not_a_number",
     "expected a number", 0, "mean radius"),
    ("nan", '{"rows": [[NaN' + ", 1.0" * 29 + "]]}", 400, "missing_value", "NaN", 0,
     "mean radius"),
    ("infinity", '{"rows": [[1.0, Infinity' + ", 1.0" * 28 + "]]}", 400, "not_finite",
     "infinite", 0, "mean texture"),
    ("null", {"rows": [_record(**{"worst area": None})]}, 400, "missing_value", "missing",
     0, "worst area"),
    ("empty-rows", {"rows": []}, 400, "empty_input", "no rows", None, None),
    ("too-many-rows", {"rows": [GOOD] * 1001}, 413, "too_many_rows", "limit is 1000",
     None, "rows"),
    ("top_k-zero", {"rows": [GOOD], "top_k": 0}, 400, "bad_top_k", "positive integer",
     None, "top_k"),
    ("top_k-negative", {"rows": [GOOD], "top_k": -3}, 400, "bad_top_k", "positive integer", None,
     "top_k"),
    ("top_k-string", {"rows": [GOOD], "top_k": "3"}, 400, "bad_top_k", "positive integer", None,
     "top_k"),
    ("top_k-float", {"rows": [GOOD], "top_k": 2.5}, 400, "bad_top_k", "positive integer", None,
     "top_k"),
    ("top_k-bool", {"rows": [GOOD], "top_k": True}, 400, "bad_top_k", "positive integer", None,
     "top_k"),
    ("get_raw-string", {"rows": [GOOD], "get_raw": "yes"}, 400, "bad_body",
     "get_raw must be true or false", None, "get_raw"),
]


@pytest.mark.parametrize("body,status,reason,text,row,field", [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])
def test_bad_input_gets_a_4xx_naming_the_problem(svc_server, body, status, reason, text, row,
                                                  field):
    data = body if isinstance(body, str) else json.dumps(body)
    r = post(svc_server, "/predict", data=data)
    assert r.status_code == status, r.text
    out = r.json()
    assert out["reason"] == reason
    assert text in out["error"]
    assert out.get("row") == row and out.get("field") == field
    assert "Traceback" not in r.text
    # the server keeps serving
    good = post(svc_server, "/predict", {"rows": [GOOD]})
    assert good.status_code == 200, good.text


def test_unknown_field_lists_the_fields_of_that_route(svc_server):
    on_predict = post(svc_server, "/predict", {"rows": [GOOD], "explian": False}).json()
    assert on_predict["field"] == "explian"
    assert "['rows', 'top_k', 'get_raw', 'explain']" in on_predict["error"]
    on_explain = post(svc_server, "/explain", {"rows": [GOOD], "explain": True}).json()
    assert on_explain["field"] == "explain"
    assert on_explain["error"].endswith("accepted fields are ['rows', 'top_k', 'get_raw']")


def test_oversized_body_is_refused(svc_server):
    r = post(svc_server, "/explain", data='{"rows": [' + " " * (9 * 1024 * 1024) + "]}")
    assert r.status_code == 413 and r.json()["reason"] == "too_large"
    assert "the limit is 8388608 bytes" in r.json()["error"]
    # announced with chunked transfer (no Content-Length): read, then refused
    chunks = iter([b'{"rows": [', b" " * (9 * 1024 * 1024), b"]}"])
    r = requests.post(svc_server.url + "/explain", data=chunks, timeout=60)
    assert r.status_code == 413 and r.json()["reason"] == "too_large"
    assert post(svc_server, "/explain", {"rows": [GOOD]}).status_code == 200


@pytest.mark.parametrize("data,reason", [
    ("{not json", "invalid_json"),
    ("{}", "empty_input"),
    (pd.DataFrame({n: ["x"] for n in NAMES}).to_json(), "not_a_number"),
    (pd.DataFrame({"a": [1.0]}).to_json(), "unknown_column"),
    ('{"rows": [[1]]}', "bad_body"),
])
def test_score_bad_input(svc_server, data, reason):
    r = post(svc_server, "/score", data=data)
    assert r.status_code == 400, r.text
    assert r.json()["reason"] == reason


# -- metrics -------------------------------------------------------------------------------
def _samples(server) -> dict:
    text = requests.get(server.url + "/metrics", timeout=10).text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            out[key] = out.get(key, 0.0) + s.value
    return out


def _delta(before, after, name, **labels):
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_metrics_count_the_requests_sent(svc_server):
    before = _samples(svc_server)
    for n in (1, 2, 3):
        assert post(svc_server, "/predict", {"rows": [GOOD] * n}).status_code == 200
    assert post(svc_server, "/predict", {"rows": [GOOD], "explain": False}).status_code == 200
    assert post(svc_server, "/explain", {"rows": [GOOD] * 2}).status_code == 200
    frame = pd.DataFrame([GOOD], columns=NAMES)
    assert post(svc_server, "/score", data=frame.to_json()).status_code == 200
    assert post(svc_server, "/predict", data="nope").status_code == 400
    assert post(svc_server, "/predict", {"rows": [GOOD], "top_k": 0}).status_code == 400
    assert post(svc_server, "/predict", {"rows": [GOOD[:3]]}).status_code == 400
    assert post(svc_server, "/explain", {"rows": []}).status_code == 400
    after = _samples(svc_server)

    kernel = {"explainer": "kernel"}
    assert _delta(before, after, "scoring_predict_seconds_count", endpoint="predict",
                  **kernel) == 4
    assert _delta(before, after, "scoring_explain_seconds_count", endpoint="predict",
                  **kernel) == 3
    assert _delta(before, after, "scoring_explain_seconds_count", endpoint="explain",
                  **kernel) == 1
    assert _delta(before, after, "scoring_predict_seconds_count", endpoint="explain",
                  **kernel) == 0
    assert _delta(before, after, "scoring_predict_seconds_count", endpoint="score",
                  **kernel) == 1
    assert _delta(before, after, "scoring_explain_seconds_count", endpoint="score",
                  **kernel) == 1
    assert _delta(before, after, "scoring_request_rows_count", endpoint="predict") == 4
    assert _delta(before, after, "scoring_request_rows_sum", endpoint="predict") == 7
    assert _delta(before, after, "scoring_request_rows_sum", endpoint="explain") == 2
    assert _delta(before, after, "scoring_request_rows_count", endpoint="score") == 1
    for endpoint, reason in (("predict", "invalid_json"), ("predict", "bad_top_k"),
                             ("predict", "wrong_column_count"), ("explain", "empty_input")):
        assert _delta(before, after, "scoring_rejected_requests_total", endpoint=endpoint,
                      reason=reason) == 1, (endpoint, reason)
    # latency histograms use the agreed buckets
    assert ("scoring_explain_seconds_bucket",
            tuple(sorted({"endpoint": "predict", "le": "0.0005", **kernel}.items()))) in after


def test_readyz_and_livez(svc_server):
    assert requests.get(svc_server.url + "/readyz", timeout=10).status_code == 200
    assert requests.get(svc_server.url + "/livez", timeout=10).status_code == 200


# -- logs ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "access_lines"), [("svc", 0), ("timeout", 1)])
def test_access_log_is_off_unless_switched_on(served, name, access_lines):
    """BentoML logged every request at INFO; SCORING_ACCESS_LOG=1 (the `timeout` server)
    turns its access log back on. Refusals are one WARNING line each, either way."""
    server = served[name]
    offset = len(server.output())
    time.sleep(1.1)  # the refusal lines of earlier tests' second (service.logs.RefusalLog)
    assert requests.get(server.url + "/metadata", timeout=30).status_code == 200
    assert post(server, "/predict", {"rows": []}).status_code == 400
    log = server.output_with(offset, "refused /predict: 400 empty_input")
    lines = log.splitlines()
    assert sum("path=/metadata" in line for line in lines) == access_lines, log[-3000:]
    assert [line for line in lines if "refused" in line and "[WARNING]" in line], log[-3000:]
    start = [line for line in server.output().splitlines() if "serving scoring bundle" in line]
    assert len(start) == 1 and "[WARNING]" in start[0], start
    assert ("access log on" if access_lines else "access log off") in start[0], start


# -- bundles that must not be served ------------------------------------------------------
REFUSED = {"mismatched": "built for a different model", "damaged": "is damaged"}


@pytest.fixture(scope="module")
def refused_starts(servers, bundles, bento_home, tmp_path_factory):
    """`bentoml serve` of each ``REFUSED`` bundle, side by side."""
    logs = tmp_path_factory.mktemp("refused")
    started = {name: servers.start(None, bento_home, logs / f"{name}.log",
                                   bundle=bundles[name].tag, wait=False) for name in REFUSED}
    try:
        yield started
    finally:
        for server in started.values():
            servers.stop(server)


@pytest.mark.parametrize("name", REFUSED)
def test_bad_bundle_stops_start_up(refused_starts, bundles, name):
    server = refused_starts[name]
    code = server.proc.wait(120)
    output = server.output()
    assert code != 0, output[-2000:]
    assert "failed its checks; not serving" in output and REFUSED[name] in output, \
        output[-2000:]
    assert bundles[name].tag in output
