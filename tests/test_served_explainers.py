"""The service serves whatever scoring explainer its bundle holds: the permutation and
amortized explainers distill ships, behind a real `bentoml serve`, answer as the library
does (the amortized one reusing the probabilities the service computed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import requests


@pytest.fixture(scope="module")
def explainer_servers(credit_server, svc_amortized_server):
    """The credit pipeline's permutation explainer, the breast-cancer SVC's amortized one."""
    return {"credit": credit_server, "svc_amortized": svc_amortized_server}


@pytest.mark.parametrize("name", ["credit", "svc_amortized"])
def test_served_values_equal_the_library(name, explainer_servers, bundles):
    b = bundles[name]
    server = explainer_servers[name]
    rows = b.X.iloc[:4]
    records = json.loads(rows.to_json(orient="records"))  # missing values as null
    r = requests.post(server.url + "/predict", json={"rows": records, "top_k": 3}, timeout=60)
    assert r.status_code == 200, r.text
    out = r.json()
    np.testing.assert_allclose(out["probabilities"], b.model.predict_proba(rows), rtol=1e-9)
    values = np.asarray(out["local_importance_values"])
    np.testing.assert_allclose(values, b.explainer.explain(rows), rtol=1e-9, atol=1e-12)
    recon = values.sum(-1) + np.asarray(out["expected_values"])[:, None]
    np.testing.assert_allclose(recon.T, out["probabilities"], atol=1e-9)
    meta = requests.get(server.url + "/metadata", timeout=10).json()
    assert meta["explainer"]["method"] == b.explainer.method
    n_columns = b.X.shape[1]
    bad = requests.post(server.url + "/predict", json={"rows": [[1.0] * (n_columns - 1)]},
                        timeout=10)
    assert bad.status_code == 400 and str(n_columns) in bad.json()["error"]
