"""One request path: the service's typed API seen by BentoML's own clients, and rows
validated and transformed once per request."""

import asyncio

import bentoml
import numpy as np
import pytest
import requests

from scoring.dashboard import explain_dataset
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


def _bundle(b):
    from scoring import ExplanationBundle

    return ExplanationBundle(b.model, b.explainer)


# every caller that explains rows, and what it runs on 5 records of the tabular bundle
CALLERS = {
    "bundle.score (the service, Dask partitions)":
        lambda b, rows: _bundle(b).score(rows, get_raw=True).explanation,
    "explain_local": lambda b, rows: b.explainer.explain_local(rows, get_raw=True),
    "explain_global": lambda b, rows: b.explainer.explain_global(rows, max_rows=3),
    "explain_dataset (the dashboard's rows)":
        lambda b, rows: explain_dataset(_bundle(b), rows, 4),
}


@pytest.mark.parametrize("caller", CALLERS)
def test_one_validation_and_one_transformation_per_call(bundles, monkeypatch, caller):
    """Rows are validated (the schema) and transformed (the ColumnTransformer) once per
    call, whoever explains them: every caller goes through ScoringExplainer.score."""
    b = bundles["tabular"]
    records = b.X.iloc[:5].to_dict("records")
    expected = b.explainer.explain(b.X.iloc[:5], get_raw=True)
    calls = {"validate": 0, "transform": 0}
    for cls, name in ((InputSchema, "validate"), (RawFeatureMap, "transform")):
        original = getattr(cls, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            calls[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, counted)
    explanation = CALLERS[caller](b, records)
    assert calls == {"validate": 1, "transform": 1}
    assert explanation.features == ["age", "income", "city"]
    if explanation.has_local:  # a sample keeps its rows: find them among the records
        shown = [list(r.values()) for r in records] if explanation.data is None \
            else explanation.data.tolist()
        index = [[list(r.values()) for r in records].index(row) for row in shown]
        np.testing.assert_allclose(explanation.local_importance_values, expected[:, index],
                                   atol=1e-12)


def test_the_answer_computes_only_what_is_returned(bundles):
    """No rows copied into the service's explanation, no global importances derived."""
    b = bundles["tabular"]
    scored = _bundle(b).score(b.X.iloc[:5].to_dict("records"))
    assert scored.explanation.data is None
    assert scored.explanation._global is None
    kept = b.explainer.explain_local(b.X.iloc[:2])
    assert kept.data.tolist() == b.X.iloc[:2].to_numpy().tolist()
