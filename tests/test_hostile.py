"""Hostile input against a real `bentoml serve`: no body or header gets a 5xx. Every case of
the table below is answered with a 4xx in the service's error shape (``error`` and
``reason``), and the server answers a good request correctly afterwards.

Extend the table: add a ``Case`` (an id, the body as a JSON-ready object, a raw ``str``
sent as it is, or ``bytes``; optionally the route, method, headers, the expected status and
``reason``, and the server: ``svc`` (30 numeric columns) or ``tabular`` (age, income and a
categorical city)). Also here: the bearer token, the body limit with the worker's memory,
unknown paths and metric series, and ``/score`` orientations.
"""

from __future__ import annotations

import ast
import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bentoml
import numpy as np
import pandas as pd
import psutil
import pytest
import requests
from sklearn.datasets import load_breast_cancer

NAMES = [str(n) for n in load_breast_cancer().feature_names]
GOOD = [1.0] * 30
TOKEN = "s3cret-token-for-tests"


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
    Case("deep-rows-100k", '{"rows": ' + "[" * 100_000 + "]" * 100_000 + "}",
         reason="json_too_deep"),
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
def hostile_servers(svc_server, tabular_server):
    return {"svc": svc_server, "tabular": tabular_server}


def check_good_answer(server, bundles, name: str) -> None:
    b = bundles[name]
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
@pytest.fixture(scope="module")
def auth_server(servers, bundles, bento_home, tmp_path_factory):
    server = servers.start(None, bento_home, tmp_path_factory.mktemp("logs") / "auth.log",
                           bundle=bundles["svc"].tag, env={"SCORING_API_TOKEN": TOKEN})
    yield server
    servers.stop(server)


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", f"Bearer {TOKEN}x",
                                    f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN,
                                    f"Token {TOKEN}", "Bearer \u00e9t\u00e9"])
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
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for scheme in ("Bearer", "bearer"):
        r = requests.post(auth_server.url + "/predict", json={"rows": [GOOD]}, timeout=60,
                          headers={"Authorization": f"{scheme} {TOKEN}"})
        assert r.status_code == 200, r.text
    assert requests.get(auth_server.url + "/metadata", headers=auth, timeout=10).ok
    frame = pd.DataFrame([GOOD], columns=NAMES)
    assert requests.post(auth_server.url + "/score", frame.to_json(), headers=auth,
                         timeout=60).ok
    for path in ("/livez", "/readyz", "/metrics"):  # probes and Prometheus need none
        assert requests.get(auth_server.url + path, timeout=10).status_code == 200, path
    with bentoml.SyncHTTPClient(auth_server.url, token=TOKEN) as client:
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
    assert 'scoring_rejected_requests_total{endpoint="unknown",reason="not_found"}' in text


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
    good = requests.post(svc_server.url + "/predict", json={"rows": [GOOD]}, timeout=60)
    assert good.status_code == 200, good.text


# -- the README names every reason ---------------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]


def _reasons_in_code() -> set[str]:
    """String constants given as ``reason`` (keyword, ``_body``'s second argument, a
    ``reason = ...`` assignment, ``_STATUS_REASONS``) in scoring/ and service/."""
    found: set[str] = set()

    def strings(node: ast.AST) -> set[str]:
        return {c.value for c in ast.walk(node) if isinstance(c, ast.Constant)
                and isinstance(c.value, str) and re.fullmatch(r"[a-z_]+", c.value)}

    for path in [*ROOT.joinpath("scoring").rglob("*.py"), *ROOT.joinpath("service").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "reason":
                found |= strings(node.value)
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "_body" \
                    and len(node.args) > 1:
                found |= strings(node.args[1])
            elif isinstance(node, ast.Assign) and any(
                    getattr(t, "id", "") in ("reason", "_STATUS_REASONS") for t in node.targets):
                found |= strings(node.value) - {"recursion"}
    return found


def test_the_readme_error_table_lists_every_reason():
    readme = ROOT.joinpath("README.md").read_text()
    table = readme[readme.index("### Errors"):readme.index("### Limits")]
    listed = set(re.findall(r"`([a-z_]+)`", "\n".join(
        line.split("|")[2] for line in table.splitlines() if line.startswith("| 4"))))
    reasons = _reasons_in_code()
    assert {"not_finite", "json_too_deep", "method_not_allowed", "unauthorized"} <= reasons
    assert reasons - {"invalid_input"} <= listed, reasons - listed
