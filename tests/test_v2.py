"""The Open Inference Protocol (KServe V2 REST) against a real `bentoml serve`, through
clients nobody here wrote: tritonclient's ``InferenceServerClient`` and the KServe SDK's
``InferenceRESTClient``. Their predictions and importances equal ``/predict``'s for the
same rows, bit for bit, on the breast-cancer SVC and on the mixed-type credit pipeline
with missing values in string and number columns. Hostile V2 bodies are in
``tests/test_hostile.py``."""

from __future__ import annotations

import asyncio
import json
import re

import numpy as np
import pandas as pd
import pytest
import requests
import tritonclient.http as triton
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from prometheus_client.parser import text_string_to_metric_families

EXPLANATION_OUTPUTS = ("local_importance_values", "expected_values", "feature_names",
                       "class_names")


def model_of(bundle) -> tuple[str, str]:
    name, _, version = bundle.tag.partition(":")
    return name, version


def predict(server, rows, **parameters) -> dict:
    r = requests.post(server.url + "/predict", json={"rows": rows, **parameters}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def infer(server, name: str, body, path: str = "") -> requests.Response:
    return requests.post(f"{server.url}/v2/models/{name}{path}/infer", timeout=60,
                         data=body if isinstance(body, str) else json.dumps(body),
                         headers={"Content-Type": "application/json"})


def records(frame: pd.DataFrame) -> list[dict]:
    """Rows as /predict takes them: a missing value is JSON null."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def column_tensors(frame: pd.DataFrame) -> list[dict]:
    """One V2 tensor per column: INT64 for integers, FP64 for floats, BYTES for strings;
    a missing value is JSON null."""
    tensors = []
    for name in frame.columns:
        column = frame[name]
        datatype = ("INT64" if pd.api.types.is_integer_dtype(column) else "FP64"
                    if pd.api.types.is_float_dtype(column) else "BYTES")
        data = column.astype(object).where(column.notna(), None).tolist()
        tensors.append({"name": name, "shape": [len(frame)], "datatype": datatype,
                        "data": data})
    return tensors


def outputs_of(answer: dict) -> dict[str, np.ndarray]:
    return {o["name"]: np.asarray(o["data"], dtype=object if o["datatype"] == "BYTES"
                                  else None).reshape(o["shape"]) for o in answer["outputs"]}


def assert_equals_predict(outputs: dict[str, np.ndarray], expected: dict) -> None:
    """V2 outputs (numpy arrays, any client's) against /predict's answer, bit for bit."""
    assert outputs["predict"].tolist() == expected["predictions"]
    if "probabilities" in expected:
        assert np.array_equal(outputs["predict_proba"], np.asarray(expected["probabilities"]))
    values = np.asarray(expected["local_importance_values"])
    assert outputs["local_importance_values"].dtype == np.float64
    assert np.array_equal(outputs["local_importance_values"], values)
    assert np.array_equal(outputs["expected_values"],
                          np.atleast_1d(np.asarray(expected["expected_values"])))
    assert [_text(f) for f in outputs["feature_names"]] == expected["feature_names"]
    if expected.get("class_names") is not None:
        assert [_text(c) if isinstance(c, bytes) else c for c in
                outputs["class_names"].tolist()] == expected["class_names"]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


@pytest.fixture(scope="module")
def credit_rows(bundles) -> pd.DataFrame:
    """Rows of the credit data with missing values in a string column (employment) and in
    number columns (income, years_at_job), and complete rows."""
    X = bundles["credit"].X
    picked = [X[X["employment"].isna()].index[:2], X[X["income"].isna()].index[:2],
              X[X["years_at_job"].isna()].index[:2], X.dropna().index[:2]]
    return X.loc[[i for index in picked for i in index]].reset_index(drop=True)


# -- metadata and health --------------------------------------------------------------------
def test_health_and_server_metadata(svc_server):
    assert requests.get(svc_server.url + "/v2/health/live", timeout=10).json() == {
        "live": True}
    assert requests.get(svc_server.url + "/v2/health/ready", timeout=10).json() == {
        "ready": True}
    server = requests.get(svc_server.url + "/v2", timeout=10).json()
    assert server["name"] == "explained_model" and server["extensions"] == []
    assert re.fullmatch(r"1\.4\.\d+.*", server["version"]), server


def test_model_metadata_lists_every_input_and_output(svc_server, credit_server, bundles):
    name, version = model_of(bundles["svc"])
    meta = requests.get(f"{svc_server.url}/v2/models/{name}", timeout=10).json()
    assert meta == requests.get(f"{svc_server.url}/v2/models/{name}/versions/{version}",
                                timeout=10).json()
    assert (meta["name"], meta["versions"], meta["platform"]) == (name, [version],
                                                                  "scikit-learn")
    assert meta["inputs"] == [{"name": c, "datatype": "FP64", "shape": [-1]}
                              for c in bundles["svc"].X.columns]
    assert meta["outputs"] == [
        {"name": "predict", "datatype": "INT64", "shape": [-1]},
        {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 2]},
        {"name": "local_importance_values", "datatype": "FP64", "shape": [2, -1, 30]},
        {"name": "expected_values", "datatype": "FP64", "shape": [2]},
        {"name": "feature_names", "datatype": "BYTES", "shape": [30]},
        {"name": "class_names", "datatype": "BYTES", "shape": [2]},
        {"name": "top_feature_names", "datatype": "BYTES", "shape": [2, -1, -1]},
        {"name": "top_feature_values", "datatype": "FP64", "shape": [2, -1, -1]}]
    name, _ = model_of(bundles["credit"])
    meta = requests.get(f"{credit_server.url}/v2/models/{name}", timeout=10).json()
    X = bundles["credit"].X
    assert meta["inputs"] == [{"name": c, "datatype": "BYTES" if X[c].dtype == "str"
                               else "FP64", "shape": [-1]} for c in X.columns]
    # the pipeline's raw columns by default; engineered ones with get_raw: false
    assert {"name": "local_importance_values", "datatype": "FP64",
            "shape": [2, -1, -1]} in meta["outputs"]
    assert {"name": "class_names", "datatype": "INT64", "shape": [2]} in meta["outputs"]
    assert meta["outputs"][-1] == {"name": "warnings", "datatype": "BYTES", "shape": [-1]}


def test_docs_json_documents_the_v2_routes(svc_server):
    spec = requests.get(svc_server.url + "/docs.json", timeout=30).json()
    paths = spec["paths"]
    for path in ("/v2", "/v2/health/live", "/v2/health/ready", "/v2/models/{name}",
                 "/v2/models/{name}/ready", "/v2/models/{name}/versions/{version}",
                 "/v2/models/{name}/versions/{version}/ready"):
        schema = paths[path]["get"]["responses"]["200"]["content"]["application/json"]
        assert schema["schema"]["$ref"].rsplit("/", 1)[1] in spec["components"]["schemas"]
    for path in ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"):
        post = paths[path]["post"]
        names = [p["name"] for p in post["parameters"] if p["in"] == "path"]
        assert names == re.findall(r"{(\w+)}", path)
        body = post["requestBody"]["content"]["application/json"]["schema"]
        assert body["required"] == ["inputs"]
        assert "BYTES" in json.dumps(spec["components"]["schemas"]["RequestInput"])
    assert "/predict" in paths  # beside the existing routes


# -- tritonclient ---------------------------------------------------------------------------
def test_tritonclient_on_the_svc_with_one_2d_tensor(svc_server, bundles):
    b = bundles["svc"]
    name, version = model_of(b)
    rows = b.X.iloc[20:25].to_numpy()
    client = triton.InferenceServerClient(svc_server.url.removeprefix("http://"))
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready(name) and client.is_model_ready(name, version)
        assert not client.is_model_ready("no_such_model")
        meta = client.get_model_metadata(name)
        assert [i["name"] for i in meta["inputs"]] == list(b.X.columns)
        tensor = triton.InferInput("input-0", list(rows.shape), "FP64")
        tensor.set_data_from_numpy(rows, binary_data=False)
        # outputs asked as binary data, tritonclient's default: answered as JSON, read alike
        wanted = [triton.InferRequestedOutput(n) for n in ("predict", "predict_proba",
                                                           *EXPLANATION_OUTPUTS)]
        result = client.infer(name, [tensor], outputs=wanted, request_id="r-1")
        outputs = {n: result.as_numpy(n) for n in ("predict", "predict_proba",
                                                   *EXPLANATION_OUTPUTS)}
        by_version = client.infer(name, [tensor], model_version=version)
        assert by_version.get_response()["model_version"] == version
        top = client.infer(name, [tensor], parameters={"top_k": 3},
                           outputs=[triton.InferRequestedOutput("top_feature_names")])
    finally:
        client.close()
    assert result.get_response()["id"] == "r-1"
    assert result.get_response()["parameters"] == {"model_output": "predict_proba"}
    assert_equals_predict(outputs, predict(svc_server, rows.tolist()))
    assert np.array_equal(by_version.as_numpy("local_importance_values"),
                          outputs["local_importance_values"])
    ranked = predict(svc_server, rows.tolist(), top_k=3)["top_features"]
    assert top.as_numpy("top_feature_names").shape == (2, 5, 3)
    assert [[[_text(n) for n in r] for r in c] for c in top.as_numpy(
        "top_feature_names").tolist()] == [[[t["feature"] for t in r] for r in c]
                                           for c in ranked]


def test_tritonclient_on_the_credit_pipeline_with_missing_numbers(credit_server, bundles,
                                                                   credit_rows):
    """One tensor per raw column: INT64, FP64 with NaN for missing numbers, BYTES for
    strings (tritonclient writes a missing string as the text 'None': rows without them)."""
    name, _ = model_of(bundles["credit"])
    rows = credit_rows[credit_rows["employment"].notna()].reset_index(drop=True)
    assert rows["income"].isna().any() and rows["years_at_job"].isna().any()
    tensors = []
    for column in rows.columns:
        values = rows[column].to_numpy(dtype=object if rows[column].dtype == "str" else None)
        datatype = triton.np_to_triton_dtype(values.dtype)
        tensor = triton.InferInput(column, [len(rows)], datatype)
        tensor.set_data_from_numpy(values, binary_data=False)
        tensors.append(tensor)
    client = triton.InferenceServerClient(credit_server.url.removeprefix("http://"))
    try:
        result = client.infer(name, tensors)
    finally:
        client.close()
    assert {t.datatype() for t in tensors} == {"INT64", "FP64", "BYTES"}
    outputs = {o["name"]: result.as_numpy(o["name"]) for o in
               result.get_response()["outputs"]}
    assert_equals_predict(outputs, predict(credit_server, records(rows)))


# -- the KServe SDK's REST client -----------------------------------------------------------
def _kserve(server, name: str, request: InferRequest):
    async def run():
        client = InferenceRESTClient(RESTConfig(protocol="v2", retries=1, timeout=60))
        try:
            states = (await client.is_server_live(server.url),
                      await client.is_server_ready(server.url),
                      await client.is_model_ready(server.url, name))
            return states, await client.infer(server.url, request, model_name=name)
        finally:
            await client.close()

    return asyncio.run(run())


def test_kserve_client_on_the_credit_pipeline_with_missing_values(credit_server, bundles,
                                                                  credit_rows):
    """Nulls in string and number columns (the KServe client writes NaN as null too)."""
    name, _ = model_of(bundles["credit"])
    inputs = [InferInput(t["name"], t["shape"], t["datatype"], data=t["data"])
              for t in column_tensors(credit_rows)]
    request = InferRequest(model_name=name, infer_inputs=inputs, request_id="k-1",
                           parameters={"top_k": 2})
    states, response = _kserve(credit_server, name, request)
    assert states == (True, True, True)
    assert response.id == "k-1" and response.model_name == name
    outputs = {o.name: o.as_numpy() for o in response.outputs}
    expected = predict(credit_server, records(credit_rows), top_k=2)
    assert_equals_predict(outputs, expected)
    assert outputs["top_feature_values"].tolist() == [[[t["value"] for t in r] for r in c]
                                                      for c in expected["top_features"]]


def test_kserve_client_on_the_svc_with_columns(svc_server, bundles):
    b = bundles["svc"]
    name, _ = model_of(b)
    frame = b.X.iloc[40:43]
    inputs = [InferInput(t["name"], t["shape"], t["datatype"], data=t["data"])
              for t in column_tensors(frame)]
    _, response = _kserve(svc_server, name, InferRequest(model_name=name,
                                                         infer_inputs=inputs))
    outputs = {o.name: o.as_numpy() for o in response.outputs}
    assert_equals_predict(outputs, predict(svc_server, records(frame)))


# -- layouts, parameters, outputs ----------------------------------------------------------
def test_every_layout_gives_the_same_answer(svc_server, bundles):
    """Columns ([n] or [n, 1], flat or nested), one 2-D tensor (flat or nested, FP64 or
    FP32-exact values), as /predict."""
    b = bundles["svc"]
    name, _ = model_of(b)
    frame = b.X.iloc[50:53]
    rows = frame.to_numpy()
    expected = predict(svc_server, rows.tolist())
    flat = {"name": "x", "shape": [3, 30], "datatype": "FP64",
            "data": rows.ravel().tolist()}
    nested = {**flat, "data": rows.tolist()}
    columns = column_tensors(frame)
    columns_2d = [{**t, "shape": [3, 1], "data": [[v] for v in t["data"]]} for t in columns]
    answers = [infer(svc_server, name, {"inputs": inputs}) for inputs in (
        [flat], [nested], columns, columns_2d, list(reversed(columns)))]
    for r in answers:
        assert r.status_code == 200, r.text
        assert_equals_predict(outputs_of(r.json()), expected)
    single = rows.astype(np.float32)
    r = infer(svc_server, name, {"inputs": [{**flat, "datatype": "FP32",
                                             "data": single.ravel().tolist()}]})
    assert_equals_predict(outputs_of(r.json()), predict(svc_server, single.tolist()))


def test_parameters_and_requested_outputs(svc_server, tabular_server, bundles):
    b = bundles["svc"]
    name, _ = model_of(b)
    rows = b.X.iloc[:2].to_numpy()
    tensor = {"name": "x", "shape": [2, 30], "datatype": "FP64", "data": rows.tolist()}
    no_explanation = infer(svc_server, name, {"inputs": [tensor],
                                              "parameters": {"explain": False}}).json()
    assert [o["name"] for o in no_explanation["outputs"]] == ["predict", "predict_proba"]
    assert "parameters" not in no_explanation and "id" not in no_explanation
    chosen = infer(svc_server, name, {"inputs": [tensor], "outputs": [
        {"name": "feature_names"}, {"name": "predict", "parameters": {"binary_data": True}}]})
    assert [o["name"] for o in chosen.json()["outputs"]] == ["feature_names", "predict"]
    explained_only = outputs_of(infer(svc_server, name, {"inputs": [tensor], "outputs": [
        {"name": "local_importance_values"}]}).json())
    assert np.array_equal(explained_only["local_importance_values"], np.asarray(
        predict(svc_server, rows.tolist())["local_importance_values"]))
    # get_raw: false, per engineered column, as /predict
    t = bundles["tabular"]
    frame = t.X.iloc[:3]
    answer = infer(tabular_server, model_of(t)[0], {"inputs": column_tensors(frame),
                                                    "parameters": {"get_raw": False}})
    assert answer.status_code == 200, answer.text
    assert_equals_predict(outputs_of(answer.json()),
                          predict(tabular_server, records(frame), get_raw=False))


def test_missing_values_as_null_and_nan(credit_server, bundles, credit_rows):
    """null in any tensor and NaN in an FP64 tensor both mean a missing value."""
    name, _ = model_of(bundles["credit"])
    tensors = column_tensors(credit_rows)
    with_nan = [{**t, "data": [np.nan if v is None else v for v in t["data"]]}
                if t["datatype"] == "FP64" else t for t in tensors]
    body = json.dumps({"inputs": with_nan})  # Python's json writes NaN, as tritonclient's
    assert "NaN" in body and "null" in body
    expected = predict(credit_server, records(credit_rows))
    for r in (infer(credit_server, name, {"inputs": tensors}), infer(credit_server, name, body)):
        assert r.status_code == 200, r.text
        assert_equals_predict(outputs_of(r.json()), expected)
    # NaN in a BYTES tensor is a number where strings are declared
    strings = [{**t, "data": [np.nan if v is None else v for v in t["data"]]}
               if t["name"] == "employment" else t for t in tensors]
    r = infer(credit_server, name, json.dumps({"inputs": strings}))
    assert r.status_code == 400 and r.json()["reason"] == "bad_value", r.text
    assert r.json()["field"] == "employment"


def test_unseen_categories_are_answered_with_warnings(credit_server, bundles, credit_rows):
    name, _ = model_of(bundles["credit"])
    frame = credit_rows.iloc[:2].copy()
    frame.loc[1, "purpose"] = "space travel"
    expected = predict(credit_server, records(frame))
    answer = infer(credit_server, name, {"inputs": column_tensors(frame)}).json()
    warnings = [json.loads(w) for w in outputs_of(answer)["warnings"]]
    assert warnings == expected["warnings"] and warnings[0]["field"] == "purpose"


# -- paths, errors and metrics -------------------------------------------------------------
def test_other_models_and_versions_are_404(svc_server, bundles):
    name, version = model_of(bundles["svc"])
    for path in (f"/v2/models/{name}x/infer", f"/v2/models/{name}/versions/{version}x/infer",
                 f"/v2/models/{name}/versions/{version}/infer/x", "/v2/models/x/ready",
                 f"/v2/models/{name}/versions/x"):
        r = requests.request("POST" if path.endswith("infer") else "GET", svc_server.url + path,
                             json={"inputs": []}, timeout=10)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["reason"] == "not_found" and f"model '{name}'" in r.json()["error"]


def test_errors_in_the_protocols_shape_are_read_by_the_clients(svc_server, bundles):
    """The protocol's error is {"error": ...}: tritonclient raises it as it came, our
    ``reason`` beside it; the KServe client raises the HTTP status."""
    name, _ = model_of(bundles["svc"])
    tensor = triton.InferInput("x", [1, 3], "FP64")
    tensor.set_data_from_numpy(np.ones((1, 3)), binary_data=False)
    client = triton.InferenceServerClient(svc_server.url.removeprefix("http://"))
    try:
        with pytest.raises(triton.InferenceServerException) as caught:
            client.infer(name, [tensor])
        assert caught.value.status() == "400"
        assert "has 3 columns; the model takes 30" in caught.value.message()
        binary = triton.InferInput("x", [1, 30], "FP64")
        binary.set_data_from_numpy(np.ones((1, 30)))  # tritonclient's default: binary data
        with pytest.raises(triton.InferenceServerException, match="binary_data=False"):
            client.infer(name, [binary])
    finally:
        client.close()
    request = InferRequest(model_name=name, infer_inputs=[
        InferInput("x", [1, 3], "FP64", data=[1.0, 2.0, 3.0])])
    import httpx

    with pytest.raises(httpx.HTTPStatusError) as caught:
        _kserve(svc_server, name, request)
    assert caught.value.response.status_code == 400
    assert caught.value.response.json()["reason"] == "wrong_column_count"


def _samples(server) -> dict[tuple, float]:
    text = requests.get(server.url + "/metrics", timeout=30).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_label_v2_requests_with_fixed_values(svc_server, bundles):
    name, _ = model_of(bundles["svc"])
    tensor = {"name": "x", "shape": [2, 30], "datatype": "FP64", "data": [1.0] * 60}

    def count(samples, metric, **labels) -> float:
        return sum(v for (n, ls), v in samples.items() if n == metric
                   and labels.items() <= dict(ls).items())

    before = _samples(svc_server)
    assert infer(svc_server, name, {"inputs": [tensor]}).status_code == 200
    assert infer(svc_server, name, {"inputs": [{**tensor, "shape": [3, 30]}]}).status_code == 400
    for i in range(30):
        assert infer(svc_server, f"probe-{i}", {"inputs": [tensor]}).status_code == 404
    after = _samples(svc_server)
    assert count(after, "scoring_request_rows_count", endpoint="v2_infer") - count(
        before, "scoring_request_rows_count", endpoint="v2_infer") == 1
    assert count(after, "scoring_explain_seconds_count", endpoint="v2_infer") > 0
    assert count(after, "scoring_rejected_requests_total", endpoint="v2_infer",
                 reason="bad_shape") - count(before, "scoring_rejected_requests_total",
                                             endpoint="v2_infer", reason="bad_shape") == 1
    assert count(after, "scoring_rejected_requests_total", endpoint="other",
                 reason="not_found") - count(before, "scoring_rejected_requests_total",
                                             endpoint="other", reason="not_found") == 30
    endpoints = {dict(ls).get("endpoint") for _, ls in after}
    assert not [e for e in endpoints if e and "probe" in e]
    assert f"/v2/models/{name}/infer" in endpoints  # BentoML's label: the served path
