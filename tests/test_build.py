"""`bentoml build` packs the service with its bundle, and `bentoml serve <bento>` serves it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
BENTOML = str(Path(sys.executable).with_name("bentoml"))


pytestmark = pytest.mark.integration

def test_build_then_serve_the_bento(servers, bundles, bento_home, tmp_path):
    tag = bundles["svc"].tag
    env = {**os.environ, "BENTOML_HOME": str(bento_home), "SCORING_BUNDLE": tag,
           "BENTOML_DO_NOT_TRACK": "True"}
    out = subprocess.run([BENTOML, "build", "--output", "tag"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    bento = out.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    assert bento.startswith("explained_model:")

    name, version = bento.split(":")
    manifest = yaml.safe_load((bento_home / "bentos" / name / version / "bento.yaml")
                              .read_text())
    assert manifest["services"][0]["models"][0]["tag"] == tag  # the bundle is packed
    src = bento_home / "bentos" / name / version / "src"
    assert (src / "service" / "service.py").exists()
    assert (src / "scoring" / "artifacts" / "bundle.py").exists()
    assert (src / "scoring" / "dashboard" / "static" / "dashboard.js").exists()

    # serve the bento itself, away from the project sources
    server = servers.start(bento, bento_home, tmp_path / "bento.log", bundle=tag,
                           cwd=tmp_path)
    try:
        rows = bundles["svc"].X.iloc[:2].to_numpy()
        r = requests.post(server.url + "/predict", json={"rows": rows.tolist()}, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == bundles["svc"].model.predict(rows).tolist()
    finally:
        servers.stop(server)
