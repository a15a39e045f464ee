"""Hostile input against a real `bentoml serve`: no body or header gets a 5xx. Every case of
the table below is answered with a 4xx in the service's error shape (``error`` and
``reason``), and the server answers a good request correctly afterwards.

Extend the table: add a ``Case`` (an id, the body as a JSON-ready object, a raw ``str``
sent as it is, or ``bytes``; optionally the route, method, headers, the expected status and
``reason``, and the server: ``svc`` (30 numeric columns), ``tabular`` (age, income and a
categorical city) or ``credit`` (a pipeline with the dashboard's explained rows)). Also
here: the bearer token, the body limit with the worker's memory, unknown paths and metric
series, ``/score`` orientations, and what one client must not do to the service (stall its
event loop, bloat its worker, add metric series, hold its connections, fill its log): each
class with a test, and a short flood of each kind (``tests/support/flood.py``, marked
``integration``).
"""

from __future__ import annotations

import ast
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import bentoml
import numpy as np
import pandas as pd
import psutil
import pytest
import requests
from sklearn.datasets import load_breast_cancer

from tests.support.servers import API_TOKEN, BODY_TIMEOUT, HEADER_TIMEOUT

NAMES = [str(n) for n in load_breast_cancer().feature_names]
GOOD = [1.0] * 30


def _record(**changes: Any) -> dict:
    return {**dict(zip(NAMES, GOOD, strict=True)), **changes}


def _json(value: Any) -> str:
    """A raw JSON text (for bodies ``json.dumps`` cannot make: huge ints, NaN...)."""
    return json.dumps(value)


def _first(raw: str, others: str = ", 1.0" * 29) -> str:
    """``{"rows": [[raw, 1.0, ...]]}`` with ``raw`` as written."""
    return '{"rows": [[' + raw + others + "]]}"


def _in_record(raw: str, name: str = "mean radius") -> str:
    record = _json(_record())
    return '{"rows": [' + record.replace(f'"{name}": 1.0', f'"{name}": {raw}') + "]}"


BIG_INT = "9" * 400
DEEP = 990


@dataclass
class Case:
    id: str
    body: Any
    path: str = "/predict"
    status: int | None = None  # None: any 4xx
    reason: str | None = None  # None: any reason
    headers: dict = field(default_factory=dict)
    method: str = "POST"
    server: str = "svc"


CASES = [
    # -- JSON nesting ---------------------------------------------------------------------
    Case("deep-array-body", "[" * DEEP + "]" * DEEP, reason="json_too_deep"),
    Case("deep-object-body", '{"a":' * DEEP + "1" + "}" * DEEP, reason="json_too_deep"),
    Case("deep-rows", '{"rows": ' + "[" * DEEP + "]" * DEEP + "}", reason="json_too_deep"),
    # 100,000 '[' are more JSON values than 1000 rows of 30 columns hold: refused unparsed
    Case("deep-rows-100k", '{"rows": ' + "[" * 100_000 + "]" * 100_000 + "}", status=413,
         reason="too_many_values"),
    Case("nested-150-rows", '{"rows": ' + "[" * 150 + "1" + "]" * 150 + "}"),
    Case("nested-70-rows", '{"rows": ' + "[" * 70 + "1" + "]" * 70 + "}"),
    Case("nested-value-in-list", _first("[" * 150 + "1" + "]" * 150), reason="not_a_number"),
    Case("nested-value-in-record", _in_record('{"a":' * 150 + "1" + "}" * 150),
         reason="not_a_number"),
    Case("deep-score-body", '{"a":' * DEEP + "1" + "}" * DEEP, path="/score",
         reason="json_too_deep"),
    Case("deep-score-array", "[" * DEEP + "]" * DEEP, path="/score", reason="json_too_deep"),
    Case("nested-150-score", '{"mean radius": ' + '{"a":' * 150 + "1" + "}" * 150 + "}",
         path="/score"),
    # -- text that cannot be encoded as it came --------------------------------------------
    Case("surrogate-record-key", '{"rows": [{"\\ud800": 1}]}', reason="invalid_json"),
    Case("surrogate-extra-key", _in_record("1.0").replace('{"mean radius"',
                                                          '{"\\udfff": 2, "mean radius"'),
         reason="invalid_json"),
    Case("surrogate-body-field", '{"rows": [[1]], "\\ud800": 1}', reason="invalid_json"),
    Case("surrogate-string-value", _in_record('"\\ud800"'), reason="invalid_json"),
    Case("surrogate-in-list", _first('"\\ud800"'), reason="invalid_json"),
    Case("surrogate-list-value", _in_record('["\\ud800"]'), reason="invalid_json"),
    Case("list-value-in-record", _in_record("[1, 2]"), reason="not_a_number"),
    Case("object-value-in-record", _in_record('{"x": 1}'), reason="not_a_number"),
    Case("surrogate-top_k", '{"rows": [[1]], "top_k": "\\ud800"}', reason="invalid_json"),
    Case("surrogate-get_raw", '{"rows": [[1]], "get_raw": "\\ud800"}', reason="invalid_json"),
    Case("surrogate-score-key", '{"\\ud800": {"0": 1}}', path="/score",
         reason="invalid_json"),
    Case("surrogate-score-value", _json(pd.DataFrame([_record()]).to_dict()).replace(
        '{"0": 1.0}', '{"0": "\\ud800"}', 1), path="/score", reason="invalid_json"),
    Case("surrogate-category", '{"rows": [{"age": 1, "income": 2, "city": "\\ud800"}]}',
         reason="invalid_json", server="tabular"),
    Case("list-category", '{"rows": [{"age": 1, "income": 2, "city": ["x"]}]}',
         reason="bad_value", server="tabular"),
    Case("object-category", '{"rows": [{"age": 1, "income": 2, "city": {"a": 1}}]}',
         reason="bad_value", server="tabular"),
    Case("surrogate-tabular-key", '{"rows": [{"age": 1, "income": 2, "\\ud800": "x"}]}',
         reason="invalid_json", server="tabular"),
    Case("long-unknown-key", {"rows": [{**_record(), "k" * 1_000_000: 1}]},
         reason="unknown_column"),
    Case("many-unknown-keys", {"rows": [{**_record(), **{f"k{i}": 1 for i in range(20000)}}]},
         reason="unknown_column"),
    Case("long-string-value", {"rows": [_record(**{"mean radius": "x" * 1_000_000})]},
         reason="not_a_number"),
    Case("invalid-utf8", b'{"rows": [["\xff\xfe", 1]]}', reason="invalid_json"),
    Case("utf16-body", _json({"rows": [GOOD]}).encode("utf-16"), reason="invalid_json"),
    Case("nul-bytes", b'{"rows": [[1\x00]]}', reason="invalid_json"),
    # -- numbers ----------------------------------------------------------------------------
    Case("int-400-digits", _first(BIG_INT), reason="not_finite"),
    Case("negative-int-400-digits", _first("-" + BIG_INT), reason="not_finite"),
    Case("int-400-digits-record", _in_record(BIG_INT), reason="not_finite"),
    Case("int-400-digits-mixed", _first(BIG_INT, ", 1" * 29), reason="not_finite"),
    Case("int-400-digits-score", pd.DataFrame([_record()]).to_json().replace(
        '{"0":1.0}', '{"0":' + BIG_INT + "}", 1), path="/score", reason="not_finite"),
    Case("int-5000-digits", _first("9" * 5000)),
    Case("int-5000-digits-top_k", '{"rows": [[1]], "top_k": ' + "9" * 5000 + "}"),
    Case("int-400-digits-tabular", '{"rows": [{"age": ' + BIG_INT
         + ', "income": 2, "city": "nice"}]}', reason="not_finite", server="tabular"),
    Case("int-400-digits-top_k", '{"rows": [[1]], "top_k": -' + BIG_INT + "}",
         reason="bad_top_k"),
    Case("1e400", _first("1e400"), reason="not_finite"),
    Case("-1e400", _first("-1e400"), reason="not_finite"),
    Case("NaN", _first("NaN"), reason="missing_value"),
    Case("Infinity", _first("Infinity"), reason="not_finite"),
    Case("-Infinity", _first("-Infinity"), reason="not_finite"),
    Case("bool-value", {"rows": [[True] + GOOD[1:]]}, reason="not_a_number"),
    Case("string-NaN", {"rows": [["NaN"] + GOOD[1:]]}, reason="not_a_number"),
    Case("hex-number", _first("0x10"), reason="invalid_json"),
    Case("top_k-1e308", {"rows": [GOOD], "top_k": 1e308}, reason="bad_top_k"),
    Case("top_k-null-string", {"rows": [GOOD], "top_k": "null"}, reason="bad_top_k"),
    # -- shapes ------------------------------------------------------------------------------
    Case("record-then-list", {"rows": [_record(), GOOD]}, reason="bad_row_type"),
    Case("list-then-record", {"rows": [GOOD, _record()]}, reason="bad_row_type"),
    Case("record-then-list-score", [_record(), GOOD], path="/score", reason="bad_row_type"),
    Case("list-then-record-score", [GOOD, _record()], path="/score", reason="bad_row_type"),
    Case("rows-null", {"rows": None}, reason="bad_body"),
    Case("rows-number", {"rows": 5}, reason="bad_body"),
    Case("rows-empty-record", {"rows": {}}, reason="missing_column"),
    Case("rows-empty-list", {"rows": [[]]}),
    Case("rows-list-of-empty-lists", {"rows": [[[]]]}),
    Case("rows-of-null", {"rows": [None]}),
    Case("rows-all-null", {"rows": [[None] * 30]}, reason="missing_value"),
    Case("31-columns", {"rows": [GOOD + [1.0]]}, reason="wrong_column_count"),
    Case("explain-null", {"rows": [GOOD], "explain": None}, reason="bad_body"),
    Case("body-a-number", "5", reason="bad_body"),
    Case("body-a-string", '"rows"', reason="bad_body"),
    Case("body-null", "null", reason="bad_body"),
    Case("trailing-garbage", _json({"rows": [GOOD]}) + " x", reason="invalid_json"),
    Case("too-many-rows-score", pd.DataFrame([GOOD] * 1001, columns=NAMES).to_json(),
         path="/score", status=413, reason="too_many_rows"),
    Case("score-scalar", "5", path="/score", reason="bad_body"),
    Case("score-string", '"x"', path="/score", reason="bad_body"),
    Case("score-null", "null", path="/score", reason="bad_body"),
    Case("score-empty-list", "[]", path="/score", reason="empty_input"),
    Case("score-split-ragged", {"columns": NAMES, "index": [0], "data": [[1.0]]},
         path="/score", reason="wrong_column_count"),
    Case("score-split-columns-not-list", {"columns": 5, "data": [[1.0]]}, path="/score"),
    Case("score-table-bad-data", {"schema": {"fields": []}, "data": 5}, path="/score"),
    Case("score-index-unknown-column", {"0": {"colour": 1.0}}, path="/score"),
    Case("score-columns-missing", {"mean radius": {"0": 1.0}}, path="/score",
         reason="missing_column"),
    Case("score-columns-scalar-list-mix", {"mean radius": [1.0], "mean texture": 5},
         path="/score"),
    # -- headers, methods, routes --------------------------------------------------------
    Case("pickle-content-type", "x", headers={
        "Content-Type": "application/vnd.bentoml+pickle"}, status=415,
         reason="unsupported_media_type"),
    Case("text-plain-garbage", "rows=1", headers={"Content-Type": "text/plain"}),
    Case("form-urlencoded", "rows=1&top_k=2", headers={
        "Content-Type": "application/x-www-form-urlencoded"}, status=415,
         reason="unsupported_media_type"),
    Case("form-deep-json", "rows=" + "[" * DEEP + "]" * DEEP, headers={
        "Content-Type": "application/x-www-form-urlencoded"}, status=415,
         reason="unsupported_media_type"),
    Case("form-surrogate", 'rows=[{"\\ud800": 1}]', headers={
        "Content-Type": "Application/X-WWW-Form-Urlencoded; charset=utf-8"}, status=415,
         reason="unsupported_media_type"),
    Case("multipart-garbage", b"--xx\r\nContent-Disposition: form-data; name=\"rows\"\r\n\r\n"
         + b"[" * DEEP + b"\r\n--xx--\r\n", headers={
             "Content-Type": "multipart/form-data; boundary=xx"}, status=415,
         reason="unsupported_media_type"),
    Case("multipart-no-boundary", "x", headers={"Content-Type": "multipart/form-data"},
         path="/score", status=415, reason="unsupported_media_type"),
    Case("octet-stream", b"\x00\x01", headers={"Content-Type": "application/octet-stream"}),
    Case("gzip-encoding-garbage", b"not gzip", headers={"Content-Encoding": "gzip"}),
    Case("latin1-charset", '{"rows": [["\xe9"]]}'.encode("latin-1"),
         headers={"Content-Type": "application/json; charset=latin-1"}),
    Case("get-predict", None, method="GET"),
    Case("put-score", "{}", path="/score", method="PUT"),
    Case("post-global-explanation", "{}", path="/explanation/global"),
    Case("global-top_k-superscript", None, path="/explanation/global?top_k=%C2%B2",
         method="GET", reason="bad_top_k"),
    Case("global-top_k-surrogate", None, path="/explanation/global?top_k=%ED%A0%80",
         method="GET", reason="bad_top_k"),
    Case("global-top_k-huge", None, path="/explanation/global?top_k=" + "9" * 5000,
         method="GET", reason="bad_top_k"),
    Case("unknown-path", "{}", path="/predictx", status=404, reason="not_found"),
    Case("surrogate-path", "{}", path="/%ED%A0%80", status=404, reason="not_found"),
    Case("long-path", None, path="/" + "a" * 4000, method="GET", status=404,
         reason="not_found"),
    # -- integer query parameters: ASCII digits only ([0-9]{1,9}) ----------------------------
    Case("dashboard-row-superscript", None, path="/dashboard/api/row?row=%C2%B9", method="GET",
         status=400, reason="bad_query", server="credit"),
    Case("dashboard-row-circled", None, path="/dashboard/api/row?row=%E2%91%A0", method="GET",
         status=400, reason="bad_query", server="credit"),
    Case("dashboard-row-fullwidth", None, path="/dashboard/api/row?row=%EF%BC%93",
         method="GET", status=400, reason="bad_query", server="credit"),
    Case("dashboard-top_k-fullwidth", None, path="/dashboard/api/importance?top_k=%EF%BC%92",
         method="GET", status=400, reason="bad_query", server="credit"),
    Case("dashboard-row-superscript-no-data", None, path="/dashboard/api/row?row=1%C2%B9",
         method="GET", status=400, reason="bad_query"),
    Case("global-top_k-fullwidth", None, path="/explanation/global?top_k=%EF%BC%93",
         method="GET", status=400, reason="bad_top_k"),
    # -- one depth limit for every JSON body -------------------------------------------------
    Case("deep-ice-row", '{"row": ' + '{"a":' * 1000 + "1" + "}" * 1000 + ', "feature": "age"}',
         path="/dashboard/api/ice", status=400, reason="json_too_deep", server="credit"),
    Case("deep-ice-body", "[" * 1000 + "]" * 1000, path="/dashboard/api/ice", status=400,
         reason="json_too_deep", server="credit"),
    Case("ice-201-deep", '{"row": {"age": ' + "[" * 201 + "]" * 201 + '}, "feature": "age"}',
         path="/dashboard/api/ice", status=400, reason="json_too_deep", server="credit"),
]


def send(server, case: Case) -> requests.Response:
    body = case.body
    if body is not None and not isinstance(body, (str, bytes)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode("utf-8")
    headers = {"Content-Type": "application/json", **case.headers}
    return requests.request(case.method, server.url + case.path, data=body, headers=headers,
                            timeout=120)


@pytest.fixture(scope="module")
def hostile_servers(svc_server, tabular_server, credit_server):
    return {"svc": svc_server, "tabular": tabular_server, "credit": credit_server}


def check_good_answer(server, bundles, name: str) -> None:
    b = bundles[name]
    if name == "credit":  # a pipeline on raw rows
        rows = b.X.dropna().iloc[:2]
        r = requests.post(server.url + "/predict", json={"rows": rows.to_dict("records")},
                          timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == b.model.predict(rows).tolist()
        return
    rows = b.X.iloc[:2]
    r = requests.post(server.url + "/predict", json={"rows": rows.to_dict("records")},
                      timeout=60)
    assert r.status_code == 200, r.text
    out = r.json()
    X = rows.to_numpy() if name == "svc" else b.explainer.spec_.transform(rows)
    assert out["predictions"] == b.model.predict(X).tolist()
    np.testing.assert_allclose(out["local_importance_values"], b.explainer.explain(
        rows.to_numpy() if name == "svc" else rows), rtol=1e-9, atol=1e-12)


def test_the_table_has_distinct_cases():
    ids = [c.id for c in CASES]
    assert len(set(ids)) == len(ids) >= 60
    bodies = [(c.path, c.method, repr(c.body), repr(c.headers)) for c in CASES]
    assert len(set(bodies)) == len(bodies)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_gets_a_4xx_in_the_error_shape(hostile_servers, bundles, case):
    server = hostile_servers[case.server]
    r = send(server, case)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith("application/json"), r.headers
    out = r.json()
    assert isinstance(out.get("error"), str) and isinstance(out.get("reason"), str), out
    assert len(r.content) < 10_000, "error bodies are short, whatever the input held"
    if case.status is not None:
        assert r.status_code == case.status, r.text[:500]
    if case.reason is not None:
        assert out["reason"] == case.reason, r.text[:500]
    assert "Traceback" not in r.text
    check_good_answer(server, bundles, case.server)


# -- finite inputs far outside the training range --------------------------------------------
HUGE = [1e308, -1e308, 1.7976931348623157e308, 1e300, 1e200, 1e154, 1e50]


def _huge_rows(name: str, value: float) -> list:
    if name == "svc":
        return [[value] * 30, GOOD]
    return [{"age": value, "income": -value, "city": "nice"},
            {"age": 40.0, "income": 50.0, "city": "lyon"}]


def _finite_or_refused(r: requests.Response) -> None:
    assert r.status_code in (200, 400), r.text[:300]
    if r.status_code == 400:
        assert r.json()["reason"] == "not_finite" and r.json()["row"] == 0, r.text
    else:
        assert "null" not in r.text and "NaN" not in r.text, r.text[:300]
        assert np.isfinite(np.asarray(r.json()["local_importance_values"])).all()


@pytest.mark.parametrize("value", HUGE)
@pytest.mark.parametrize("name", ["svc", "tabular"])
def test_huge_finite_inputs_never_answer_null(hostile_servers, bundles, name, value):
    """Refused as ``not_finite``, or answered with finite numbers; never ``null``."""
    server = hostile_servers[name]
    rows = _huge_rows(name, value)
    for route, top_k in (("/predict", None), ("/predict", 3), ("/explain", 2)):
        _finite_or_refused(requests.post(server.url + route, json={"rows": rows,
                                                                   "top_k": top_k},
                                         timeout=60))
    columns = NAMES if name == "svc" else None
    frame = pd.DataFrame(rows, columns=columns)
    _finite_or_refused(requests.post(server.url + "/score", frame.to_json(), timeout=60))
    check_good_answer(server, bundles, name)


@pytest.mark.parametrize("name", ["svc", "svc_permutation", "svc_amortized", "tabular",
                                  "credit"])
def test_every_explainer_refuses_or_answers_finite_values(bundles, name):
    from scoring import ExplanationBundle
    from scoring.model.schema import InputError

    b = bundles[name]
    bundle = ExplanationBundle(b.model, b.explainer)
    for value in (1e308, -1e308, 1e200):
        rows = b.X.iloc[:2].copy()
        numeric = [c for c in rows.columns if pd.api.types.is_numeric_dtype(rows[c])]
        rows[numeric] = rows[numeric].astype(float)
        rows.loc[rows.index[1], numeric] = value
        try:
            scored = bundle.score(rows.to_dict("records"), explain=True)
        except InputError as exc:
            # row: None when a step of the model refused what the step before gave
            assert exc.reason == "not_finite" and exc.row in (1, None), exc
            continue
        assert np.isfinite(scored.explanation.local_importance_values).all()
        if scored.probabilities is not None:
            assert np.isfinite(scored.probabilities).all()


def test_non_finite_model_outputs_are_refused(bundles, monkeypatch):
    from scoring import ExplanationBundle
    from scoring.model.schema import InputError
    from scoring.model.spec import ModelSpec

    b = bundles["svc"]
    bundle = ExplanationBundle(b.model, b.explainer)
    predict = ModelSpec.predict

    def overflowing(self, X):
        predictions, probabilities = predict(self, X)
        probabilities = probabilities.copy()
        probabilities[2, 1] = np.nan
        return predictions, probabilities

    monkeypatch.setattr(ModelSpec, "predict", overflowing)
    with pytest.raises(InputError) as caught:
        bundle.score(b.X.iloc[:3].to_numpy())
    assert caught.value.reason == "not_finite" and caught.value.row == 2


def test_error_bodies_are_safe_to_encode():
    from service.errors import RequestError

    error = RequestError("unknown field '\ud800' " + "x" * 50_000, reason="bad_body",
                         field="\udfff" * 1000)
    body = json.loads(error.response().body)
    assert body["error"].startswith("unknown field '\\ud800' xxx")
    assert len(body["error"]) < 2100 and len(body["field"]) < 300


# -- /score orientations --------------------------------------------------------------------
ORIENTS = ["columns", "index", "records", "split", "values", "table"]


@pytest.mark.parametrize("orient", ORIENTS)
@pytest.mark.parametrize("n_rows", [1, 4, 30])
def test_score_reads_every_orient_by_the_column_names(svc_server, bundles, orient, n_rows):
    """``index`` with exactly as many rows as features was once scored transposed."""
    b = bundles["svc"]
    frame = b.X.iloc[10:10 + n_rows]
    r = requests.post(svc_server.url + "/score", frame.to_json(orient=orient),
                      headers={"Content-Type": "application/json"}, timeout=60)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["predictions"] == b.model.predict(frame.to_numpy()).tolist()
    np.testing.assert_allclose(out["local_importance_values"],
                               b.explainer.explain(frame.to_numpy()), rtol=1e-9, atol=1e-12)


def test_score_unnamed_frames_are_positional(svc_server, bundles):
    b = bundles["svc"]
    frame = b.X.iloc[:30]
    named = requests.post(svc_server.url + "/score", frame.to_json(), timeout=60).json()
    unnamed = requests.post(svc_server.url + "/score",
                            pd.DataFrame(frame.to_numpy()).to_json(), timeout=60)
    assert unnamed.status_code == 200, unnamed.text
    assert unnamed.json() == named


# -- the bearer token ---------------------------------------------------------------------
@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", f"Bearer {API_TOKEN}x",
                                    f"Bearer {API_TOKEN[:-1]}", f"Basic {API_TOKEN}", API_TOKEN,
                                    f"Token {API_TOKEN}", "Bearer \u00e9t\u00e9"])
@pytest.mark.parametrize("method,path", [("POST", "/predict"), ("POST", "/explain"),
                                         ("POST", "/score"), ("GET", "/metadata"),
                                         ("GET", "/explanation/global"), ("GET", "/docs.json"),
                                         ("GET", "/")])
def test_every_route_needs_the_token(auth_server, header, method, path):
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Authorization"] = header
    r = requests.request(method, auth_server.url + path, headers=headers,
                         data=json.dumps({"rows": [GOOD]}).encode(), timeout=30)
    assert r.status_code == 401, r.text
    assert r.json()["reason"] == "unauthorized" and r.json()["error"]


def test_the_token_opens_every_route(auth_server):
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    for scheme in ("Bearer", "bearer"):
        r = requests.post(auth_server.url + "/predict", json={"rows": [GOOD]}, timeout=60,
                          headers={"Authorization": f"{scheme} {API_TOKEN}"})
        assert r.status_code == 200, r.text
    assert requests.get(auth_server.url + "/metadata", headers=auth, timeout=10).ok
    frame = pd.DataFrame([GOOD], columns=NAMES)
    assert requests.post(auth_server.url + "/score", frame.to_json(), headers=auth,
                         timeout=60).ok
    for path in ("/livez", "/readyz", "/metrics"):  # probes and Prometheus need none
        assert requests.get(auth_server.url + path, timeout=10).status_code == 200, path
    with bentoml.SyncHTTPClient(auth_server.url, token=API_TOKEN) as client:
        assert client.predict(rows=[GOOD])["predictions"] == [1]
    # bad input with the token: the usual 4xx
    r = requests.post(auth_server.url + "/predict", json={"rows": [[1.0]]}, headers=auth,
                      timeout=30)
    assert r.status_code == 400 and r.json()["reason"] == "wrong_column_count"


def test_the_token_from_a_mounted_secret_file(tmp_path, monkeypatch):
    from service.guard import api_token

    monkeypatch.delenv("SCORING_API_TOKEN", raising=False)
    monkeypatch.delenv("SCORING_API_TOKEN_FILE", raising=False)
    assert api_token() is None
    secret = tmp_path / "token"
    secret.write_text("from-file\n")
    monkeypatch.setenv("SCORING_API_TOKEN_FILE", str(secret))
    assert api_token() == b"from-file"
    monkeypatch.setenv("SCORING_API_TOKEN", "from-env")
    assert api_token() == b"from-env"
    # a token file named but absent or empty: refuse to start rather than serve openly
    monkeypatch.delenv("SCORING_API_TOKEN")
    for absent in (tmp_path / "absent", tmp_path / "empty"):
        (tmp_path / "empty").write_text("\n")
        monkeypatch.setenv("SCORING_API_TOKEN_FILE", str(absent))
        with pytest.raises(RuntimeError, match="SCORING_API_TOKEN_FILE"):
            api_token()


# -- unknown paths and metric series ------------------------------------------------------
def test_unknown_paths_create_no_metric_series(svc_server):
    paths = [f"/probe-{i}-{'x' * (i % 7)}" for i in range(200)] + [
        "/predict/extra", "/metrics/x", "/%ED%A0%80-probe", "/livez-probe"]
    for path in paths:
        r = requests.get(svc_server.url + path, timeout=10)
        assert r.status_code == 404 and r.json()["reason"] == "not_found", path
    text = requests.get(svc_server.url + "/metrics", timeout=10).text
    assert "probe" not in text and "/predict/extra" not in text
    assert 'endpoint="/metrics/x"' not in text
    assert 'scoring_rejected_requests_total{endpoint="other",reason="not_found"}' in text


# -- the body limit and the worker's memory --------------------------------------------------
def _worker(server) -> psutil.Process:
    children = psutil.Process(server.proc.pid).children(recursive=True)
    workers = [c for c in children if "_bentoml_impl.worker.service" in " ".join(c.cmdline())]
    assert len(workers) == 1, [c.cmdline() for c in children]
    return workers[0]


def _status_kib(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/status") as f:
        return {k: int(v.split()[0]) for k, _, v in (line.partition(":") for line in f)
                if k in ("VmRSS", "VmHWM")}


@pytest.mark.parametrize("announced", [False, True], ids=["chunked", "content-length"])
def test_a_200_mb_body_is_refused_without_growing_the_worker(svc_server, announced):
    total, chunk = 200 * 2**20, 2**20
    worker = _worker(svc_server)
    before = _status_kib(worker.pid)
    peak = {"rss": before["VmRSS"]}
    sent = {"n": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak["rss"] = max(peak["rss"], _status_kib(worker.pid)["VmRSS"])
            time.sleep(0.01)

    class Body:  # an iterable: chunked transfer; with __len__: Content-Length
        def __iter__(self):
            block = b" " * chunk
            while sent["n"] < total:
                sent["n"] += chunk
                yield block

    class Announced(Body):
        def __len__(self) -> int:
            return total

    errors = _server_errors(svc_server)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        r = requests.post(svc_server.url + "/predict", data=Announced() if announced
                          else Body(), headers={"Content-Type": "application/json"},
                          timeout=120)
    finally:
        time.sleep(0.3)
        done.set()
        sampler.join()
    after = _status_kib(worker.pid)
    assert r.status_code == 413, r.text
    assert r.json()["reason"] == "too_large"
    if announced:
        assert r.request.headers["Content-Length"] == str(total)
    else:
        assert "Content-Length" not in r.request.headers
    grown_mib = (max(peak["rss"], after["VmHWM"]) - before["VmRSS"]) / 1024
    print(f"\n200 MiB {'announced' if announced else 'chunked'}: client sent "
          f"{sent['n'] / 2**20:.0f} MiB; worker {worker.pid} VmRSS {before['VmRSS'] / 1024:.1f}"
          f" -> peak {peak['rss'] / 1024:.1f} MiB, VmHWM {before['VmHWM'] / 1024:.1f} -> "
          f"{after['VmHWM'] / 1024:.1f} MiB")
    assert (peak["rss"] - before["VmRSS"]) / 1024 < 50
    assert (after["VmHWM"] - before["VmHWM"]) / 1024 < 50, grown_mib
    assert sent["n"] < total, "refused before the whole body was read"
    # the app never saw the body: BentoML's metrics count no 500 for it (the error budget's)
    assert _server_errors(svc_server) == errors
    good = requests.post(svc_server.url + "/predict", json={"rows": [GOOD]}, timeout=60)
    assert good.status_code == 200, good.text


# -- the README names every reason ---------------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]


def _reasons_in_code() -> set[str]:
    """String constants given as ``reason`` (keyword, ``_body``'s second argument, a
    ``reason = ...`` assignment, ``_STATUS_REASONS``) in scoring/ and service/."""
    found: set[str] = set()

    def strings(node: ast.AST) -> set[str]:
        """The reason constants an expression can give: a constant, either branch of a
        conditional, the values of a dict (not the text inside f-strings or calls)."""
        if isinstance(node, ast.Constant):
            is_reason = isinstance(node.value, str) and re.fullmatch(r"[a-z_]+", node.value)
            return {node.value} if is_reason else set()
        if isinstance(node, ast.IfExp):
            return strings(node.body) | strings(node.orelse)
        if isinstance(node, ast.Dict):
            return set().union(*(strings(v) for v in node.values))
        return set()

    for path in [*ROOT.joinpath("scoring").rglob("*.py"), *ROOT.joinpath("service").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "reason":
                found |= strings(node.value)
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "_body" \
                    and len(node.args) > 1:
                found |= strings(node.args[1])
            elif isinstance(node, ast.Assign) and any(
                    getattr(t, "id", "") in ("reason", "_STATUS_REASONS") for t in node.targets):
                found |= strings(node.value)
    return found


def test_the_readme_error_table_lists_every_reason():
    readme = ROOT.joinpath("README.md").read_text()
    table = readme[readme.index("### Errors"):readme.index("### Limits")]
    listed = set(re.findall(r"`([a-z_]+)`", "\n".join(
        line.split("|")[2] for line in table.splitlines() if line.startswith("| 4"))))
    reasons = _reasons_in_code()
    assert {"not_finite", "json_too_deep", "method_not_allowed", "unauthorized"} <= reasons
    assert reasons - {"invalid_input"} <= listed, reasons - listed


# -- one client cannot stall, bloat or blind the service ------------------------------------
class Watch:
    """While a block runs: ``/livez`` answered every 50 ms from another thread (latencies)
    and the worker's resident memory sampled every 10 ms (peak growth, ``VmHWM`` growth)."""

    def __init__(self, server) -> None:
        self.server, self.worker = server, _worker(server)
        self.latencies: list[float] = []
        self._done = threading.Event()

    def __enter__(self) -> Watch:
        self.before = _status_kib(self.worker.pid)
        self.peak = self.before["VmRSS"]
        self._threads = [threading.Thread(target=f, daemon=True)
                         for f in (self._probe, self._sample)]
        for thread in self._threads:
            thread.start()
        time.sleep(0.2)
        return self

    def __exit__(self, *exc) -> None:
        time.sleep(0.3)
        self._done.set()
        for thread in self._threads:
            thread.join()
        self.after = _status_kib(self.worker.pid)

    def _probe(self) -> None:
        while not self._done.is_set():
            started = time.perf_counter()
            assert requests.get(self.server.url + "/livez", timeout=60).status_code == 200
            self.latencies.append(time.perf_counter() - started)
            time.sleep(0.05)

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, _status_kib(self.worker.pid)["VmRSS"])
            time.sleep(0.01)

    @property
    def grown_mib(self) -> float:
        return max(self.peak - self.before["VmRSS"],
                   self.after["VmHWM"] - self.before["VmHWM"]) / 1024

    def report(self, what: str) -> str:
        return (f"{what}: /livez max {max(self.latencies) * 1000:.0f} ms over "
                f"{len(self.latencies)} probes; worker grew {self.grown_mib:.1f} MiB")


def _series(server) -> list[str]:
    text = requests.get(server.url + "/metrics", timeout=60).text
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_paths_under_served_prefixes_create_no_metric_series(svc_server, auth_server, bundles):
    """BentoML labels its request metrics with the path and the guard let every path under
    the Swagger UI's prefixes through; with a token, refusals were labelled by path too."""
    from service.guard import KNOWN_PATHS
    from service.metrics import endpoint_label
    from service.v2_routes import ROUTE_LABELS

    # BentoML labels its APIs' series with their routes (the V2 inference's are templates)
    # and its requests' with their paths (the V2 ones: the served model's only)
    name, _, version = bundles["svc"].tag.partition(":")
    routes = KNOWN_PATHS | {endpoint_label(p) for p in KNOWN_PATHS} | {"static_content",
                                                                         "other"} | {
        *ROUTE_LABELS, *ROUTE_LABELS.values(),
        *(route.format(name=name, version=version) for route in ROUTE_LABELS)}
    before = {s.url: len(_series(s)) for s in (svc_server, auth_server)}
    for i in range(150):
        for prefix in ("/static_content/", "/assets/", "/static_content/../"):
            assert requests.get(f"{svc_server.url}{prefix}probe-{i}.js",
                                timeout=10).status_code == 404
            assert requests.get(f"{auth_server.url}{prefix}probe-{i}.js",
                                timeout=10).status_code in (401, 404)
    for server in (svc_server, auth_server):
        lines = _series(server)
        assert not [line for line in lines if "probe" in line][:3]
        grown = len(lines) - before[server.url]
        print(f"\n{server.url}: {before[server.url]} -> {len(lines)} series")
        assert grown <= 40, grown
        endpoints = set(re.findall(r'endpoint="([^"]*)"', "\n".join(lines)))
        assert not {e for e in endpoints - routes if not e.startswith("/static_content/")}
    # the Swagger UI's own files are still served (behind the token when one is set)
    css = "/static_content/swagger-ui.css"
    assert requests.get(svc_server.url + css, timeout=10).status_code == 200
    assert requests.get(auth_server.url + css, timeout=10).status_code == 401
    assert requests.get(auth_server.url + css, timeout=10,
                        headers={"Authorization": f"Bearer {API_TOKEN}"}).status_code == 200


def _server_errors(server) -> float:
    """The 5xx answers BentoML's request metrics count (what the error budget burns)."""
    return sum(float(line.rpartition(" ")[2]) for line in _series(server)
               if line.startswith("bentoml_service_request_total")
               and 'http_response_code="5' in line)


def _empty_rows(n: int) -> bytes:
    """``{"rows": [[], [], ...]}``: ``n`` rows, two JSON values (``[`` and ``,``) each."""
    return b'{"rows": [' + b",".join([b"[]"] * n) + b"]}"


def test_a_body_of_empty_rows_is_refused_without_stalling_the_worker(svc_server):
    """8 MB of ``[],`` is 2.7 million rows: parsed whole on the event loop before the row
    limit applied (seconds, hundreds of MiB, /livez unanswered meanwhile)."""
    body = _empty_rows((8 * 2**20 - 100) // 3)
    errors = _server_errors(svc_server)
    with Watch(svc_server) as watch:
        started = time.perf_counter()
        r = requests.post(svc_server.url + "/predict", data=body, timeout=120,
                          headers={"Content-Type": "application/json"})
        took = time.perf_counter() - started
    print("\n" + watch.report(f"8 MB of empty rows: {r.status_code} in {took:.2f} s"))
    assert r.status_code == 413, r.text[:300]
    assert r.json()["reason"] == "too_many_values" and "1000 rows" in r.json()["error"]
    assert max(watch.latencies) < 0.5 and watch.grown_mib < 50
    # refused bodies are no server errors: BentoML's metrics counted the app's answer to
    # the body it never received in full (a 500) against the error budget
    assert _server_errors(svc_server) == errors
    # just under the bound: parsed, refused by the row limit, cheaply
    containers = int(re.search(r"or ([0-9]+) arrays", r.json()["error"]).group(1))
    with Watch(svc_server) as watch:
        r = requests.post(svc_server.url + "/predict", data=_empty_rows(containers - 10),
                          timeout=120, headers={"Content-Type": "application/json"})
    print(watch.report("empty rows under the bound"))
    assert r.status_code == 413 and r.json()["reason"] == "too_many_rows", r.text[:300]
    assert max(watch.latencies) < 0.5 and watch.grown_mib < 50


@pytest.mark.parametrize("route", ["/predict-records", "/predict-lists", *(
    f"/score-{orient}" for orient in ORIENTS)])
def test_the_largest_valid_bodies_are_answered(tabular_server, svc_server, bundles, route):
    """The value bound leaves room for 1000 rows in every accepted layout."""
    path, _, layout = route.partition("-")
    name = "svc" if path == "/predict" else "tabular"  # /score explains: the fast one
    b = bundles[name]
    frame = b.X.sample(1000, replace=True, random_state=0).reset_index(drop=True)
    if path == "/predict":
        rows = frame.to_dict("records") if layout == "records" else frame.to_numpy().tolist()
        data = json.dumps({"rows": rows, "explain": False})
    else:
        data = frame.to_json(orient=layout)
    server = svc_server if name == "svc" else tabular_server
    r = requests.post(server.url + path, data=data, timeout=120,
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text[:300]
    X = frame.to_numpy() if name == "svc" else b.explainer.spec_.transform(frame)
    assert r.json()["predictions"] == b.model.predict(X).tolist()


def test_ice_validates_the_row_once(credit_server):
    """ICE copied the submitted row once per grid point before validating it: extra keys
    cost their size times the grid."""
    row = requests.get(credit_server.url + "/dashboard/api/row?row=3", timeout=30).json()
    # as many keys as the JSON budget lets through: 11,079 values for the credit model
    extra = {f"extra-{i:05d}-" + "x" * 100: 1 for i in range(11_000)}
    body = {"row": {**row["values"], **extra}, "feature": "age", "n_points": 200}
    answers = []

    def post() -> None:
        answers.append(requests.post(credit_server.url + "/dashboard/api/ice", json=body,
                                     timeout=120))

    with Watch(credit_server) as watch:
        clients = [threading.Thread(target=post) for _ in range(4)]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
    print("\n" + watch.report(f"4 ICE rows with {len(extra)} extra keys at once"))
    for r in answers:
        assert r.status_code == 400 and r.json()["reason"] == "unknown_column", r.text[:300]
    assert watch.grown_mib < 30
    # the same row without them: its curve, the varied column only
    r = requests.post(credit_server.url + "/dashboard/api/ice", timeout=60, json={
        "row": {**row["values"], "age": "not a number"}, "feature": "age", "n_points": 5})
    assert r.status_code == 200, r.text
    assert len(r.json()["grid"]) == len(r.json()["predictions"]) >= 2


def _raw(server, request: bytes, timeout: float = 60) -> tuple[int, str, str]:
    """Send ``request`` as it is; ``(status, content type, body)`` of the answer."""
    url = urlsplit(server.url)
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers.get("content-type", ""), body.decode(
        "utf-8", "replace")


def _request(path: str, headers: list[str], body: bytes) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


DEEP_FORM = (b'--xx\r\nContent-Disposition: form-data; name="rows"\r\n\r\n' + b"[" * 100_000
             + b"\r\n--xx--\r\n")
DUPLICATES = {
    "content-type-form-then-json": (["Content-Type: multipart/form-data; boundary=xx",
                                     "Content-Type: application/json",
                                     f"Content-Length: {len(DEEP_FORM)}"], DEEP_FORM),
    "content-type-json-then-form": (["Content-Type: application/json",
                                     "Content-Type: multipart/form-data; boundary=xx",
                                     f"Content-Length: {len(DEEP_FORM)}"], DEEP_FORM),
    "content-length-conflicting": (["Content-Type: application/json", "Content-Length: 2",
                                    "Content-Length: 3"], b"{}"),
    "transfer-encoding-twice": (["Content-Type: application/json",
                                 "Transfer-Encoding: chunked", "Transfer-Encoding: chunked"],
                                b"2\r\n{}\r\n0\r\n\r\n"),
    "authorization-twice": (["Content-Type: application/json", "Content-Length: 2",
                             f"Authorization: Bearer {API_TOKEN}",
                             f"Authorization: Bearer {API_TOKEN}"], b"{}"),
}


@pytest.mark.parametrize("name", DUPLICATES)
@pytest.mark.parametrize("path", ["/predict", "/score", "/dashboard/api/ice"])
def test_duplicated_framing_headers_are_refused(svc_server, auth_server, name, path):
    headers, body = DUPLICATES[name]
    server = auth_server if name.startswith("authorization") else svc_server
    status, content_type, text = _raw(server, _request(path, headers, body))
    assert status == 400, (status, text[:300])
    assert content_type.startswith("application/json"), (content_type, text[:300])
    assert json.loads(text)["reason"] in ("duplicate_header", "malformed_request"), text
    check = requests.post(server.url + "/predict", json={"rows": [GOOD]}, timeout=60,
                          headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert check.status_code == 200, check.text


# -- slow clients, logs, the documentation page ---------------------------------------------
def _closed(s: socket.socket, answers: dict) -> bool:
    """Whether the server closed ``s`` (what it answered, if anything, kept in
    ``answers``)."""
    try:
        while chunk := s.recv(65536):
            answers[s] = answers.get(s, b"") + chunk
        return True
    except (BlockingIOError, TimeoutError):
        return False
    except ConnectionError:
        return True


def _slow_clients(server, head: bytes, trickle: bytes, n: int,
                  seconds: float) -> tuple[list, dict]:
    """``n`` connections that send ``head``, then one byte of ``trickle`` each every 0.5 s
    for ``seconds`` or until the server closes them (``/livez`` answered meanwhile): the
    connections still open at the end, and what the server answered on each."""
    url = urlsplit(server.url)
    sockets, answers = [], {}
    for _ in range(n):
        s = socket.create_connection((url.hostname, url.port), timeout=10)
        s.sendall(head)
        s.setblocking(False)
        sockets.append(s)
    still_open = list(sockets)
    deadline = time.monotonic() + seconds
    sent = 0
    while still_open and time.monotonic() < deadline:
        time.sleep(0.5)
        for s in list(still_open):
            if _closed(s, answers):
                still_open.remove(s)
                continue
            try:
                s.send(trickle[sent % len(trickle):][:1])
            except OSError:
                still_open.remove(s)
        sent += 1
        assert requests.get(server.url + "/livez", timeout=5).status_code == 200
    for s in sockets:
        s.close()
    return still_open, [answers.get(s, b"") for s in sockets]


def test_slow_headers_are_cut_off(timeout_server):
    """uvicorn has no deadline for a request's headers: a client trickling them held the
    connection for as long as it liked (32 held for 40 s)."""
    head = b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    still_open, _ = _slow_clients(timeout_server, head, b"X-Slow: 1\r\n", 32,
                                  HEADER_TIMEOUT + 6)
    assert not still_open, f"{len(still_open)} of 32 slow connections still open"


def test_slow_bodies_are_answered_408(timeout_server):
    head = (b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n")
    still_open, answers = _slow_clients(timeout_server, head, b" ", 8, BODY_TIMEOUT + 6)
    assert not still_open, f"{len(still_open)} of 8 slow bodies still open"
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["reason"] == "body_timeout"
    good = requests.post(timeout_server.url + "/predict", json={"rows": [GOOD]}, timeout=60)
    assert good.status_code == 200, good.text


def test_a_refused_body_is_one_log_line_without_the_input(timeout_server):
    """BentoML logged every pydantic refusal as an ERROR with its traceback and pydantic's
    excerpt of the input."""
    marker = "secret-looking-input-" + "z" * 20
    time.sleep(1.1)  # the refusal lines of earlier tests' second (service.logs.RefusalLog)
    offset = len(timeout_server.output())
    bodies = [{"rows": [[marker]], "top_k": marker}, {"rows": [GOOD], marker: 1},
              {"rows": [[1.0]] * 1001}]
    for body in bodies:
        r = requests.post(timeout_server.url + "/predict", json=body, timeout=60)
        assert 400 <= r.status_code < 500, r.text
    for path in ("/predict", "/dashboard/api/ice"):
        r = requests.post(timeout_server.url + path, data=_empty_rows(300_000), timeout=60,
                          headers={"Content-Type": "application/json"})
        assert r.status_code == 413
    time.sleep(1)
    log = timeout_server.output()[offset:]
    assert "Traceback" not in log and marker not in log and "[[]" not in log, log[-3000:]
    assert "ERROR" not in log, log[-3000:]
    refused = [line for line in log.splitlines() if "refused" in line]
    assert len(refused) >= len(bodies), log[-3000:]


def test_a_flood_of_refusals_writes_a_few_lines_a_second(timeout_server):
    """A client sending only bad requests wrote a log line per request (as fast as it
    sent them): now at most ten a second per worker, the next line counting the rest."""
    time.sleep(1.1)
    offset = len(timeout_server.output())
    started = time.monotonic()
    with requests.Session() as session:
        for _ in range(60):
            r = session.post(timeout_server.url + "/predict", json={"rows": []}, timeout=60)
            assert r.status_code == 400
    elapsed = time.monotonic() - started
    time.sleep(1.1)
    r = requests.post(timeout_server.url + "/predict", json={"rows": []}, timeout=60)
    assert r.status_code == 400
    log = timeout_server.output_with(offset, "more refused before it")
    refused = [line for line in log.splitlines() if "refused /predict" in line]
    assert len(refused) <= 10 * (int(elapsed) + 2), (elapsed, log[-3000:])
    unlogged = [int(m) for m in re.findall(r"\((\d+) more refused before it", log)]
    assert len(refused) + sum(unlogged) == 61, log[-3000:]  # every refusal accounted for


def test_the_uvicorn_hook_fails_loudly_when_uvicorn_changed(monkeypatch):
    """service.connections rebinds uvicorn's automatic HTTP protocol, BentoML offering no
    option: a uvicorn that names it otherwise stops the worker with the reason."""
    from uvicorn import config

    from service import connections

    monkeypatch.setitem(config.HTTP_PROTOCOLS, "auto", "uvicorn.protocols.http.other:X")
    with pytest.raises(RuntimeError, match="header deadline"):
        connections.install(10)
    monkeypatch.setitem(config.HTTP_PROTOCOLS, "auto", connections._UVICORN_AUTO)
    connections.install(7)
    assert config.HTTP_PROTOCOLS["auto"] == "service.connections:DeadlineH11Protocol"
    assert connections.DeadlineH11Protocol.header_timeout == 7


def test_docs_answers_the_swagger_ui(svc_server, auth_server):
    r = requests.get(svc_server.url + "/docs", timeout=30)
    assert r.status_code == 200 and "swagger" in r.text.lower(), (r.status_code, r.text[:300])
    assert r.url == svc_server.url + "/"
    assert requests.get(svc_server.url + "/docs.json", timeout=30).json()["paths"]["/predict"]
    # the texts that point to /docs
    r = requests.get(svc_server.url + "/nope", timeout=30)
    assert "see /docs" in r.json()["error"]
    assert requests.get(auth_server.url + "/docs", timeout=30).status_code == 401


@pytest.mark.integration
def test_a_short_flood_of_each_kind(servers, bundles, bento_home, tmp_path_factory):
    """``python -m bench.flood``'s client for a few seconds per kind, with its checks:
    ``/livez`` under 1 s, the worker under 300 MiB more, no metric series per request."""
    from tests.support.flood import KINDS, Requests, flood, worker_pid  # imports the service

    server = servers.start(None, bento_home, tmp_path_factory.mktemp("logs") / "flood.log",
                           bundle=bundles["credit"].tag, env={"SCORING_API_TOKEN": API_TOKEN})
    try:
        make = Requests(server.url, API_TOKEN)
        for kind in KINDS:
            result = flood(server.url, worker_pid(server.proc.pid), make, kind, 4, 4)
            print(f"\n{kind}: {result['requests']} requests {result['answers']}, /livez max "
                  f"{result['livez_max_s'] * 1000:.0f} ms, worker +{result['rss_growth_mib']:.0f}"
                  f" MiB, series {result['series_before']} -> {result['series_after']}")
            assert result["requests"] >= 4 and all(result["checks"].values()), result
    finally:
        servers.stop(server)


# -- the Open Inference Protocol (KServe V2): hostile tensors --------------------------------
V2_SVC = "/v2/models/breast_cancer_svc/infer"
V2_CREDIT = "/v2/models/credit_mlp/infer"


def _v2(data: Any = GOOD, shape: list | None = None, datatype: str = "FP64",
        name: str = "x", **body: Any) -> dict:
    """A V2 body of one 2-D tensor for the svc (``shape`` [1, 30] by default)."""
    tensor = {"name": name, "shape": shape or [1, 30], "datatype": datatype, "data": data}
    return {"inputs": [tensor], **body}


def _v2_credit(**changes: dict) -> dict:
    """A V2 body of one tensor per credit column, one row; ``changes``: fields of some."""
    row = {"age": ("INT64", 40), "income": ("FP64", 50_000.0), "debt_ratio": ("FP64", 0.3),
           "employment": ("BYTES", "salaried"), "home": ("BYTES", "rent"),
           "purpose": ("BYTES", "car"), "n_late_payments": ("INT64", 0),
           "years_at_job": ("FP64", 4.0)}
    return {"inputs": [{"name": n, "shape": [1], "datatype": d, "data": [v],
                        **changes.get(n, {})} for n, (d, v) in row.items()]}


V2_CASES = [
    Case("v2-wrong-datatype", _v2(datatype="FLOAT64"), V2_SVC, 400, "bad_body"),
    Case("v2-datatype-lowercase", _v2(datatype="fp64"), V2_SVC, 400, "bad_body"),
    Case("v2-string-in-fp64", _v2(["x"] + GOOD[1:]), V2_SVC, 400, "not_a_number"),
    Case("v2-bool-in-fp64", _v2([True] + GOOD[1:]), V2_SVC, 400, "not_a_number"),
    Case("v2-object-in-fp64", _v2([{"a": 1}] + GOOD[1:]), V2_SVC, 400, "not_a_number"),
    Case("v2-bytes-for-numbers", _v2(["1.0"] * 30, datatype="BYTES"), V2_SVC, 400,
         "not_a_number"),
    Case("v2-bytes-for-a-number-column", _v2_credit(income={"datatype": "BYTES",
                                                            "data": ["50000"]}),
         V2_CREDIT, 400, "not_a_number", server="credit"),
    Case("v2-float-in-int64", _v2([1.5] * 30, datatype="INT64"), V2_SVC, 400, "bad_value"),
    Case("v2-uint8-300", _v2([300] * 30, datatype="UINT8"), V2_SVC, 400, "bad_value"),
    Case("v2-int-400-digits-int64", '{"inputs": [{"name": "x", "shape": [1, 30], "datatype": '
         '"INT64", "data": [' + BIG_INT + ", 1" * 29 + "]}]}", V2_SVC, 400, "bad_value"),
    Case("v2-int-400-digits-fp64", '{"inputs": [{"name": "x", "shape": [1, 30], "datatype": '
         '"FP64", "data": [' + BIG_INT + ", 1" * 29 + "]}]}", V2_SVC, 400, "not_finite"),
    Case("v2-infinity", '{"inputs": [{"name": "x", "shape": [1, 30], "datatype": "FP64", '
         '"data": [Infinity' + ", 1" * 29 + "]}]}", V2_SVC, 400, "not_finite"),
    Case("v2-nan-without-missing-values", _json(_v2([float("nan")] + GOOD[1:])), V2_SVC, 400,
         "missing_value"),
    Case("v2-null-without-missing-values", _v2([None] + GOOD[1:]), V2_SVC, 400,
         "missing_value"),
    Case("v2-data-longer-than-shape", _v2(GOOD + [1.0]), V2_SVC, 400, "bad_shape"),
    Case("v2-data-shorter-than-shape", _v2(GOOD, shape=[2, 30]), V2_SVC, 400, "bad_shape"),
    Case("v2-ragged-nested-data", _v2([GOOD, GOOD[:29]], shape=[2, 30]), V2_SVC, 400,
         "bad_shape"),
    Case("v2-negative-shape", _v2(shape=[-1, 30]), V2_SVC, 400, "bad_shape"),
    Case("v2-shape-of-strings", _v2(shape=["1", "30"]), V2_SVC, 400, "bad_shape"),
    Case("v2-3d-shape", _v2(shape=[1, 30, 1]), V2_SVC, 400, "unknown_column"),
    Case("v2-columns-of-other-lengths", _v2_credit(age={"shape": [2], "data": [40, 41]}),
         V2_CREDIT, 400, "bad_shape", server="credit"),
    Case("v2-column-shape-2-wide", _v2_credit(age={"shape": [1, 2], "data": [40, 41]}),
         V2_CREDIT, 400, "bad_shape", server="credit"),
    Case("v2-matrix-too-narrow", _v2([1.0] * 29, shape=[1, 29]), V2_SVC, 400,
         "wrong_column_count"),
    Case("v2-matrix-for-a-mixed-model", _v2(shape=[1, 30]), V2_CREDIT, 400, "bad_shape",
         server="credit"),
    Case("v2-unknown-input", _v2([1.0], shape=[1], name="colour"), V2_SVC, 400,
         "unknown_column"),
    Case("v2-unknown-input-credit", {"inputs": [*_v2_credit()["inputs"], {
        "name": "colour", "shape": [1], "datatype": "BYTES", "data": ["red"]}]}, V2_CREDIT,
         400, "unknown_column", server="credit"),
    Case("v2-missing-input", {"inputs": _v2_credit()["inputs"][1:]}, V2_CREDIT, 400,
         "missing_column", server="credit"),
    Case("v2-input-twice", {"inputs": [*_v2_credit()["inputs"], _v2_credit()["inputs"][0]]},
         V2_CREDIT, 400, "bad_body", server="credit"),
    Case("v2-number-in-bytes", _v2_credit(home={"data": [5]}), V2_CREDIT, 400, "bad_value",
         server="credit"),
    Case("v2-1001-rows", _v2([1.0] * 30_030, shape=[1001, 30]), V2_SVC, 413,
         "too_many_rows"),
    Case("v2-1001-rows-columns", _v2_credit(**{n: {"shape": [1001]} for n in ("age",)}),
         V2_CREDIT, 413, "too_many_rows", server="credit"),
    Case("v2-100k-values", _v2([1.0] * 100_000), V2_SVC, 413, "too_many_values"),
    Case("v2-deep-json", '{"inputs": ' + "[" * DEEP + "]" * DEEP + "}", V2_SVC, 400,
         "json_too_deep"),
    Case("v2-deep-data", '{"inputs": [{"name": "x", "shape": [1, 30], "datatype": "FP64", '
         '"data": ' + "[" * DEEP + "]" * DEEP + "}]}", V2_SVC, 400, "json_too_deep"),
    Case("v2-nested-150-data", '{"inputs": [{"name": "x", "shape": [1, 30], "datatype": '
         '"FP64", "data": ' + "[" * 150 + "1" + "]" * 150 + "}]}", V2_SVC, 400, "bad_shape"),
    Case("v2-no-inputs", {"outputs": []}, V2_SVC, 400, "bad_body"),
    Case("v2-inputs-null", {"inputs": None}, V2_SVC, 400, "bad_body"),
    Case("v2-inputs-empty", {"inputs": []}, V2_SVC, 400, "missing_column"),
    Case("v2-data-not-a-list", _v2("1.0"), V2_SVC, 400, "bad_body"),
    Case("v2-binary-data-size-no-data", {"inputs": [{
        "name": "x", "shape": [1, 30], "datatype": "FP64",
        "parameters": {"binary_data_size": 240}}]}, V2_SVC, 400, "bad_body"),
    Case("v2-binary-tensor-header", _json(_v2()) + "\x00" * 240, V2_SVC, 415,
         "unsupported_media_type", headers={"Inference-Header-Content-Length": "200"}),
    Case("v2-unknown-body-field", _v2(extra=1), V2_SVC, 400, "bad_body"),
    Case("v2-unknown-tensor-field", {"inputs": [{**_v2()["inputs"][0], "dtype": "FP64"}]},
         V2_SVC, 400, "bad_body"),
    Case("v2-unknown-parameter", _v2(parameters={"topk": 3}), V2_SVC, 400, "bad_body"),
    Case("v2-top_k-zero", _v2(parameters={"top_k": 0}), V2_SVC, 400, "bad_top_k"),
    Case("v2-top_k-string", _v2(parameters={"top_k": "3"}), V2_SVC, 400, "bad_top_k"),
    Case("v2-explain-string", _v2(parameters={"explain": "no"}), V2_SVC, 400, "bad_body"),
    Case("v2-unknown-output", _v2(outputs=[{"name": "shap_values"}]), V2_SVC, 400,
         "bad_output"),
    Case("v2-ranked-output-without-top_k", _v2(outputs=[{"name": "top_feature_names"}]),
         V2_SVC, 400, "bad_output"),
    Case("v2-explanation-output-explain-false", _v2(outputs=[{
        "name": "local_importance_values"}], parameters={"explain": False}), V2_SVC, 400,
         "bad_output"),
    Case("v2-classification-output", _v2(outputs=[{"name": "predict", "parameters": {
        "classification": 2}}]), V2_SVC, 400, "bad_body"),
    Case("v2-other-model-in-body", _v2(model_name="other"), V2_SVC, 400, "bad_body"),
    Case("v2-surrogate-name", '{"inputs": [{"name": "\\ud800", "shape": [1], "datatype": '
         '"FP64", "data": [1]}]}', V2_SVC, 400, "invalid_json"),
    Case("v2-empty-body", "", V2_SVC, 400, "invalid_json"),
    Case("v2-other-model", _v2(), "/v2/models/other/infer", 404, "not_found"),
    Case("v2-other-version", _v2(), "/v2/models/breast_cancer_svc/versions/0/infer", 404,
         "not_found"),
    Case("v2-get-infer", None, V2_SVC, 405, "method_not_allowed", method="GET"),
    Case("v2-post-metadata", "{}", "/v2/models/breast_cancer_svc", 405,
         "method_not_allowed"),
    Case("v2-form-body", "inputs=1", V2_SVC, 415, "unsupported_media_type",
         headers={"Content-Type": "application/x-www-form-urlencoded"}),
]


@pytest.mark.parametrize("case", V2_CASES, ids=[c.id for c in V2_CASES])
def test_hostile_v2_input_gets_a_4xx_in_the_error_shape(hostile_servers, bundles, case):
    """The same checks as the table above: a 4xx in the error shape, the server still
    answering; the protocol's clients read ``error``, ``reason`` rides beside it."""
    test_hostile_input_gets_a_4xx_in_the_error_shape(hostile_servers, bundles, case)


def test_the_v2_table_has_distinct_cases():
    ids = [c.id for c in CASES + V2_CASES]
    assert len(set(ids)) == len(ids)
    bodies = [(c.path, c.method, repr(c.body), repr(c.headers)) for c in V2_CASES]
    assert len(set(bodies)) == len(bodies) >= 50


def test_v2_routes_need_the_token_but_health(auth_server, bundles):
    name, _, version = bundles["svc"].tag.partition(":")
    private = [("GET", "/v2"), ("GET", f"/v2/models/{name}"),
               ("GET", f"/v2/models/{name}/ready"), ("POST", f"/v2/models/{name}/infer"),
               ("GET", f"/v2/models/{name}/versions/{version}/ready"),
               ("POST", f"/v2/models/{name}/versions/{version}/infer")]
    for method, path in private:
        r = requests.request(method, auth_server.url + path, json=_v2(), timeout=30)
        assert r.status_code == 401 and r.json()["reason"] == "unauthorized", path
        r = requests.request(method, auth_server.url + path, json=_v2(), timeout=60,
                             headers={"Authorization": f"Bearer {API_TOKEN}"})
        assert r.status_code == 200, (path, r.text[:300])
    for path in ("/v2/health/live", "/v2/health/ready"):  # probes need none
        assert requests.get(auth_server.url + path, timeout=10).status_code == 200, path
