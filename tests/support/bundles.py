"""Bundles saved into a test BentoML home (in a subprocess, so that the test process's own
BentoML configuration is left alone), and where the store keeps their files."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import joblib

from tests.support.servers import ROOT

# training rows of a bundle explained and stored for its dashboard, when it has rows
DASHBOARD_ROWS = 300

# saves bundles into the BentoML home of its environment; prints one tag per line
_SAVE_SCRIPT = f"""
import sys, joblib
from pathlib import Path
from scoring.artifacts.bundle import ExplanationBundle
from scoring.dashboard import explain_dataset
for name, (model, explainer, glob, damage, rows) in joblib.load(sys.argv[1]).items():
    bundle = ExplanationBundle(model, explainer, global_explanation=glob)
    if rows is not None:  # training rows explained for the dashboard, as distill stores them
        bundle.dataset_explanation = explain_dataset(bundle, rows, {DASHBOARD_ROWS})
    tag = bundle.save(name)
    if damage:
        import bentoml
        path = Path(bentoml.models.get(tag).path) / "model.skops"
        path.write_bytes(path.read_bytes()[:100])
    print(tag)
"""


@dataclass
class Bundle:
    """What was saved: the objects themselves, for comparisons in the tests."""

    tag: str
    model: object
    explainer: object
    global_explanation: object
    X: object


def save_bundles(objects: dict, home: Path, work: Path, env: dict | None = None) -> list[str]:
    """Save ``{name: (model, explainer, global explanation, damage, dashboard rows)}`` as
    bundles in the BentoML home ``home`` (``env``: more environment variables, say a
    signing key); their tags, in order."""
    path = work / "objects.joblib"
    joblib.dump(objects, path)
    out = subprocess.run([sys.executable, "-c", _SAVE_SCRIPT, str(path)], cwd=ROOT,
                         env={**os.environ, "BENTOML_HOME": str(home), **(env or {})},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def bundle_directory(home: Path, tag: str) -> Path:
    """Where the BentoML home ``home`` keeps the files of bundle ``tag``."""
    name, version = tag.split(":")
    return home / "models" / name / version


class BundleStore:
    """The session's BentoML model store, for tests that save their own bundles and then
    rewrite their files as an attacker would (the ``bundle_store`` fixture)."""

    def __init__(self, home: Path, work: Path) -> None:
        self.home = home
        self.work = work

    def save(self, objects: dict, env: dict | None = None) -> list[str]:
        """:func:`save_bundles` into this store."""
        return save_bundles(objects, self.home, self.work, env)

    def directory(self, tag: str) -> Path:
        return bundle_directory(self.home, tag)
