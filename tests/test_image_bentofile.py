"""deploy/image/bentofile.py: the image's bentofile pins the bundle's library versions and
sets SCORING_BUNDLE (no container engine needed; tests/test_image.py builds and runs it)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("image_bentofile",
                                               ROOT / "deploy" / "image" / "bentofile.py")
bentofile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bentofile)


def test_pins_recorded_versions_then_installed_ones():
    recorded = {"scikit-learn": "0.0.1", "scipy": "0.0.2"}
    pins = bentofile.pinned(["scikit_learn>=1.4", "bentoml>=1.4,<1.5", "numpy"], recorded)
    assert pins == ["scikit-learn==0.0.1",
                    f"bentoml=={importlib.metadata.version('bentoml')}",
                    f"numpy=={importlib.metadata.version('numpy')}",
                    "scipy==0.0.2"]


def test_refuses_packages_not_installed():
    with pytest.raises(SystemExit, match="not installed"):
        bentofile.pinned(["surely-not-installed-here>=1"], {})


def test_image_bentofile_from_the_projects(tmp_path):
    (tmp_path / "bundle.json").write_text(json.dumps(
        {"versions": {"scikit-learn": "1.2.3", "shap": "0.1", "numpy": "2.0.0",
                      "scipy": "1.0.0"}}))
    base = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    config = bentofile.image_bentofile(base, "localhost/base:x", "bundle:abc",
                                       bentofile.bundle_versions(tmp_path))
    assert config["service"] == base["service"] and config["include"] == base["include"]
    assert config["docker"]["base_image"] == "localhost/base:x"
    assert (ROOT / config["docker"]["dockerfile_template"]).is_file()
    assert config["envs"] == [{"name": "SCORING_BUNDLE", "value": "bundle:abc"}]
    packages = config["python"]["packages"]
    assert {"scikit-learn==1.2.3", "shap==0.1", "numpy==2.0.0", "scipy==1.0.0"} <= set(packages)
    assert all("==" in p for p in packages)
    assert len(packages) == len(base["python"]["packages"]) + 1  # + scipy
