"""One request path: the service's typed API seen by BentoML's own clients, and rows
validated and transformed once per request."""

import asyncio

import bentoml
import numpy as np
import pytest
import requests

from scoring.model.schema import InputSchema
from scoring.model.transformations import RawFeatureMap


def test_docs_name_the_typed_request_fields(svc_server):
    docs = requests.get(svc_server.url + "/docs.json", timeout=10).json()
    body = docs["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    schema = body["schema"]
    if "$ref" in schema:
        schema = docs["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    assert {"rows", "top_k", "get_raw", "explain"} <= set(schema["properties"])
    assert schema.get("required") == ["rows"]


def test_bentoml_clients_get_what_curl_gets(svc_server, tabular_server, bundles):
    for server, b in ((svc_server, bundles["svc"]), (tabular_server, bundles["tabular"])):
        rows = b.X.iloc[:3].to_dict("records")
        plain = requests.post(server.url + "/predict", json={"rows": rows, "top_k": 3},
                              timeout=30).json()
        with bentoml.SyncHTTPClient(server.url) as client:
            typed = client.predict(rows=rows, top_k=3)
            explained = client.explain(rows=rows)
        assert typed == plain
        np.testing.assert_allclose(explained["local_importance_values"],
                                   plain["local_importance_values"], atol=1e-12)

        async def call(url=server.url, rows=rows):
            async with bentoml.AsyncHTTPClient(url) as client:
                return await client.predict(rows=rows, top_k=3)

        assert asyncio.run(call()) == plain


def test_client_sees_the_error_shape(svc_server):
    with bentoml.SyncHTTPClient(svc_server.url) as client:
        with pytest.raises(bentoml.exceptions.BentoMLException, match="bad_top_k"):
            client.predict(rows=[[1.0] * 30], top_k=0)


def test_one_validation_and_one_transformation_per_request(bundles, monkeypatch):
    """What /predict runs (ExplanationBundle.score): the schema check and the
    ColumnTransformer once each, the model once for predictions and probabilities."""
    b = bundles["tabular"]
    from scoring import ExplanationBundle

    bundle = ExplanationBundle(b.model, b.explainer)
    calls = {"validate": 0, "transform": 0}
    for cls, name in ((InputSchema, "validate"), (RawFeatureMap, "transform")):
        original = getattr(cls, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            calls[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, counted)
    scored = bundle.score(b.X.iloc[:5].to_dict("records"), get_raw=True, explain=True)
    assert calls == {"validate": 1, "transform": 1}
    assert scored.explanation.features == ["age", "income", "city"]
    np.testing.assert_allclose(scored.explanation.local_importance_values,
                               b.explainer.explain(b.X.iloc[:5], get_raw=True), atol=1e-12)
