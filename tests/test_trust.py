"""Saved explainers and bundles are data: loading never unpickles, every file is hashed
(and signed with a key), and whatever was tampered with is refused before it runs."""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import requests
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from scoring import (
    AmortizedScoringExplainer,
    Explanation,
    KernelScoringExplainer,
    LinearScoringExplainer,
    PermutationScoringExplainer,
    TreeScoringExplainer,
    load,
    save,
)
from scoring.artifacts.bundle import BundleError, ExplanationBundle
from scoring.artifacts.migrate import migrate
from scoring.artifacts.state import sha256_file
from scoring.datasets import make_credit, preprocessor
from tests.support.processes import run_side_by_side

ROOT = Path(__file__).resolve().parents[1]
X, Y = make_classification(n_samples=120, n_features=5, n_informative=3, random_state=0)
CREDIT_X, CREDIT_Y = make_credit(n_rows=300)


class Evil:
    """Runs a command when unpickled: the marker file proves it ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class Scaled(LogisticRegression):
    """A custom model class: skops stores it, but only loads it when trusted."""


class Phased(LogisticRegression):
    """A model holding a complex number, which skops cannot store."""

    def fit(self, X, y):
        self.phase_ = 1j
        return super().fit(X, y)


def _black_box():
    """A pipeline that is not split (two steps before the estimator): the permutation
    explainer's background is the raw mixed-type DataFrame."""
    prep = ("prep", preprocessor())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Pipeline([prep, ("scale", StandardScaler()),
                         ("model", LogisticRegression(max_iter=500))]).fit(CREDIT_X, CREDIT_Y)


@pytest.fixture(scope="module")
def explainers():
    svc = SVC(probability=True, random_state=0).fit(X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = Pipeline([("prep", preprocessor()),
                        ("model", MLPClassifier((8,), max_iter=50, random_state=0))]).fit(
            CREDIT_X, CREDIT_Y)
    black_box = _black_box()
    out = {
        "linear": (LinearScoringExplainer().fit(LogisticRegression().fit(X, Y), X), X),
        "tree": (TreeScoringExplainer(n_background=10).fit(
            GradientBoostingClassifier(n_estimators=5, random_state=0).fit(X, Y), X), X),
        "kernel": (KernelScoringExplainer(nsamples=30).fit(svc, X), X),
        "permutation": (PermutationScoringExplainer(n_background=10).fit(svc, X), X),
        "permutation_split": (PermutationScoringExplainer(n_background=10).fit(
            mlp, CREDIT_X), CREDIT_X),
        "permutation_dataframe": (PermutationScoringExplainer(n_background=10).fit(
            black_box, CREDIT_X), CREDIT_X),
        "amortized": (AmortizedScoringExplainer(
            hidden_layer_sizes=(8,), max_iter=5, n_networks=2, n_permutations=4,
            max_label_rows=100).fit(svc, X), X),
    }
    assert isinstance(out["permutation_dataframe"][0].background_, pd.DataFrame)
    return {**out, "credit_model": mlp}


@pytest.fixture
def no_pickle(monkeypatch):
    """``pickle.load(s)`` and ``joblib.load`` fail while the test loads."""
    def refuse(*args, **kwargs):
        raise AssertionError("bundle content was unpickled")

    for target, name in ((pickle, "loads"), (pickle, "load"), (joblib, "load")):
        monkeypatch.setattr(target, name, refuse)


@pytest.fixture
def bundle_dir(tmp_path):
    model = LogisticRegression().fit(X, Y)
    explainer = LinearScoringExplainer().fit(model, X)
    ExplanationBundle(model, explainer).write(tmp_path / "bundle")
    return tmp_path / "bundle"


def _rehash(directory: Path) -> None:
    """What a writer of the store without the signing key can do: fix the hashes."""
    manifest = json.loads((directory / "bundle.json").read_text())
    manifest["files"] = {name: sha256_file(directory / name) for name in manifest["files"]}
    (directory / "bundle.json").write_text(json.dumps(manifest))
    inner = json.loads((directory / "scoring_explainer.json").read_text())
    inner["files"] = {name: sha256_file(directory / name) for name in inner["files"]}
    (directory / "scoring_explainer.json").write_text(json.dumps(inner))
    manifest["files"]["scoring_explainer.json"] = sha256_file(
        directory / "scoring_explainer.json")
    (directory / "bundle.json").write_text(json.dumps(manifest))


def _edit(path: Path, change) -> None:
    content = json.loads(path.read_text())
    change(content)
    path.write_text(json.dumps(content))


# -- every kind loads without pickle, bit for bit ----------------------------------------
@pytest.mark.parametrize("kind", ["linear", "tree", "kernel", "permutation",
                                  "permutation_split", "permutation_dataframe", "amortized"])
def test_every_explainer_loads_without_pickle_and_explains_identically(
        explainers, kind, tmp_path, no_pickle):
    explainer, data = explainers[kind]
    save(explainer, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model.skops", "scoring_explainer.json", "scoring_explainer.npz"]
    loaded = load(tmp_path)
    assert type(loaded) is type(explainer)
    rows = data[:6] if isinstance(data, np.ndarray) else data.iloc[:6]
    np.testing.assert_array_equal(loaded.explain(rows), explainer.explain(rows))
    np.testing.assert_array_equal(loaded.expected_values, explainer.expected_values)
    assert loaded.get_params() == explainer.get_params()
    if isinstance(explainer.spec_.probe_rows, pd.DataFrame):
        pd.testing.assert_frame_equal(loaded.spec_.probe_rows, explainer.spec_.probe_rows)
    if isinstance(getattr(explainer, "background_", None), pd.DataFrame):
        pd.testing.assert_frame_equal(loaded.background_, explainer.background_)


def test_bundle_reads_without_pickle(tmp_path, explainers, no_pickle):
    explainer, _ = explainers["permutation_split"]
    model = explainers["credit_model"]
    ExplanationBundle(model, explainer).write(tmp_path)
    manifest = json.loads((tmp_path / "bundle.json").read_text())
    assert sorted(manifest["files"]) == ["model.skops", "scoring_explainer.json",
                                         "scoring_explainer.npz"]
    bundle = ExplanationBundle.read(tmp_path)
    assert bundle.spec.split_pipeline and bundle.spec.model is bundle.model.steps[-1][1]
    scored = bundle.score(CREDIT_X.iloc[:4])
    np.testing.assert_array_equal(scored.probabilities, model.predict_proba(CREDIT_X.iloc[:4]))
    trust = bundle.metadata()["trust"]
    assert trust == {"model_format": "skops", "allow_pickle": False, "signature": "absent",
                     "trusted_types": []}


# -- tampering ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["model.skops", "scoring_explainer.npz",
                                  "scoring_explainer.json"])
def test_flipped_byte_is_refused(bundle_dir, name):
    path = bundle_dir / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=f"is damaged or was altered: the SHA-256 of {name}"):
        ExplanationBundle.read(bundle_dir)


@pytest.mark.parametrize("name", ["model.skops", "scoring_explainer.npz"])
@pytest.mark.parametrize("rehash", [False, True])
def test_malicious_pickle_in_either_file_never_runs(bundle_dir, tmp_path, name, rehash):
    marker = tmp_path / "marker"
    if name.endswith(".npz"):  # an object array, pickled inside the .npz
        buffer = io.BytesIO()
        np.savez(buffer, a0=np.array([Evil(marker)], dtype=object))
        (bundle_dir / name).write_bytes(buffer.getvalue())
    else:
        (bundle_dir / name).write_bytes(pickle.dumps(Evil(marker)))
    if rehash:
        _rehash(bundle_dir)
    with pytest.raises(BundleError, match="altered" if not rehash else
                       "not a readable skops file|holds pickled objects"):
        ExplanationBundle.read(bundle_dir)
    with pytest.raises(ValueError):
        load(bundle_dir)
    assert not marker.exists()


def test_foreign_type_in_the_model_file_is_refused_by_name(bundle_dir, tmp_path):
    import skops.io as sio

    marker = tmp_path / "marker"
    (bundle_dir / "model.skops").write_bytes(sio.dumps({"explained_model": Evil(marker),
                                                        "model": Evil(marker)}))
    _rehash(bundle_dir)
    name = f"{Evil.__module__}.Evil"
    with pytest.raises(BundleError, match=rf"holds type\(s\) \['{name}'\]"):
        ExplanationBundle.read(bundle_dir)
    assert not marker.exists()


def test_old_pickle_bundles_and_explainers_are_refused_unread(tmp_path):
    marker = tmp_path / "marker"
    bundle = tmp_path / "old_bundle"
    bundle.mkdir()
    joblib.dump(Evil(marker), bundle / "model.pkl")
    joblib.dump(Evil(marker), bundle / "scoring_explainer.pkl")
    (bundle / "bundle.json").write_text(json.dumps({"format": "scoring.ExplanationBundle",
                                                    "format_version": 1}))
    with pytest.raises(BundleError, match=r"older version of scoring as pickles.*"
                                          r"`scoring distill` again.*`scoring migrate"):
        ExplanationBundle.read(bundle)
    with pytest.raises(ValueError, match=r"older version of scoring as a pickle.*"
                                         r"`scoring migrate"):
        load(bundle / "scoring_explainer.pkl")
    with pytest.raises(ValueError, match="`scoring migrate"):
        load(bundle)
    assert not marker.exists()


def test_edited_manifest_is_refused(bundle_dir):
    _edit(bundle_dir / "bundle.json",
          lambda m: m.update(model_fingerprint="0" * 64))
    with pytest.raises(BundleError, match="its explainer was built for model"):
        ExplanationBundle.read(bundle_dir)


def test_edited_trusted_types_are_refused(bundle_dir):
    # adding a file that is not listed does not get it read; editing the inner manifest
    # breaks the outer hash
    _edit(bundle_dir / "scoring_explainer.json",
          lambda m: m["model"].update(trusted_types=["os.system"]))
    with pytest.raises(BundleError, match="SHA-256 of scoring_explainer.json"):
        ExplanationBundle.read(bundle_dir)


def test_foreign_library_version_is_refused(bundle_dir):
    _edit(bundle_dir / "bundle.json", lambda m: m["versions"].update({"scikit-learn": "0.1"}))
    with pytest.raises(BundleError, match=r"incompatible library versions \(scikit-learn "
                                          r"saved with 0\.1, running"):
        ExplanationBundle.read(bundle_dir)


def test_model_library_versions_are_checked(tmp_path):
    model = LogisticRegression().fit(X, Y)
    explainer = LinearScoringExplainer().fit(model, X)
    ExplanationBundle(model, explainer).write(tmp_path)
    # a model needing another library records its version: say lightgbm
    _edit(tmp_path / "bundle.json", lambda m: m["versions"].update({"lightgbm": "0.0.1"}))
    with pytest.raises(BundleError, match=r"lightgbm saved with 0\.0\.1, running"):
        ExplanationBundle.read(tmp_path)


# -- signatures -------------------------------------------------------------------------
def test_signed_bundles(tmp_path, monkeypatch):
    model = LogisticRegression().fit(X, Y)
    explainer = LinearScoringExplainer().fit(model, X)
    monkeypatch.setenv("SCORING_SIGNING_KEY", "secret one")
    ExplanationBundle(model, explainer).write(tmp_path / "signed")
    bundle = ExplanationBundle.read(tmp_path / "signed")
    assert bundle.metadata()["trust"]["signature"] == "verified"

    edited = tmp_path / "edited"
    shutil.copytree(tmp_path / "signed", edited)
    _edit(edited / "bundle.json", lambda m: m.update(report={"method": "forged"}))
    with pytest.raises(BundleError, match="wrong signature"):
        ExplanationBundle.read(edited)

    monkeypatch.setenv("SCORING_SIGNING_KEY", "another key")
    with pytest.raises(BundleError, match="wrong signature"):
        ExplanationBundle.read(tmp_path / "signed")

    monkeypatch.delenv("SCORING_SIGNING_KEY")
    ExplanationBundle(model, explainer).write(tmp_path / "unsigned")
    monkeypatch.setenv("SCORING_SIGNING_KEY", "secret one")
    with pytest.raises(BundleError, match="is not signed"):
        ExplanationBundle.read(tmp_path / "unsigned")
    save(explainer, tmp_path / "unsigned_explainer")
    monkeypatch.setenv("SCORING_SIGNING_KEY", "secret two")
    with pytest.raises(ValueError, match="wrong signature"):
        load(tmp_path / "unsigned_explainer")


# -- models outside scikit-learn -------------------------------------------------------------
def test_custom_model_classes_need_trusted_types(tmp_path):
    model = Scaled().fit(X, Y)
    explainer = LinearScoringExplainer().fit(model, X)
    name = f"{Scaled.__module__}.Scaled"
    with pytest.raises(TypeError, match=rf"\['{name}'\]; pass trusted_types"):
        save(explainer, tmp_path / "refused")
    ExplanationBundle(model, explainer, trusted_types=[name]).write(tmp_path / "trusted")
    bundle = ExplanationBundle.read(tmp_path / "trusted", trusted_types=[name])
    assert bundle.metadata()["trust"]["trusted_types"] == [name]
    np.testing.assert_array_equal(bundle.scoring_explainer.explain(X[:3]), explainer.explain(X[:3]))


def test_models_skops_cannot_store_need_allow_pickle(tmp_path):
    model = Phased().fit(X, Y)
    explainer = LinearScoringExplainer().fit(model, X)
    with pytest.raises(TypeError, match="skops cannot store this model.*allow_pickle=True"):
        ExplanationBundle(model, explainer).write(tmp_path / "refused")
    directory = tmp_path / "pickled"
    ExplanationBundle(model, explainer, allow_pickle=True).write(directory)
    assert (directory / "model.pickle").exists()
    with pytest.raises(BundleError, match="stores its model as a pickle"):
        ExplanationBundle.read(directory)
    bundle = ExplanationBundle.read(directory, allow_pickle=True)
    assert bundle.metadata()["trust"]["allow_pickle"] is True


# -- migration -----------------------------------------------------------------------------
def test_migrate_an_old_explainer(tmp_path, explainers):
    import zlib

    explainer, data = explainers["kernel"]
    payload = pickle.dumps(explainer)
    joblib.dump({"format": "scoring.ScoringExplainer", "format_version": 1,
                 "crc32": zlib.crc32(payload), "payload": payload},
                tmp_path / "scoring_explainer.pkl")
    with pytest.raises(ValueError, match="scoring migrate"):
        load(tmp_path)
    migrate(str(tmp_path))
    assert not (tmp_path / "scoring_explainer.pkl").exists()
    np.testing.assert_array_equal(load(tmp_path).explain(data[:3]), explainer.explain(data[:3]))


def test_lightgbm_models_load_once_their_types_are_named(tmp_path, no_pickle):
    lgb = pytest.importorskip("lightgbm")
    model = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, Y)
    explainer = TreeScoringExplainer(n_background=10).fit(model, X)
    with pytest.raises(TypeError, match=r"lightgbm.basic.Booster.*pass trusted_types"):
        save(explainer, tmp_path)
    types = ["lightgbm.basic.Booster", "lightgbm.sklearn.LGBMClassifier"]
    save(explainer, tmp_path, trusted_types=types)
    manifest = json.loads((tmp_path / "scoring_explainer.json").read_text())
    assert manifest["versions"]["lightgbm"] == lgb.__version__  # checked at load too
    np.testing.assert_array_equal(load(tmp_path, trusted_types=types).explain(X[:4]),
                                  explainer.explain(X[:4]))


# -- round 2: what a bundle file can make the loader do ------------------------------------
# Each test crafts the file an attacker with write access to the store (and no signing key)
# can write: any content, with the SHA-256 hashes recomputed (_rehash).
def _json_node(value) -> dict:
    return {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode",
            "content": json.dumps(value), "is_json": True}


def _call_node(module: str, name: str, *args: dict) -> dict:
    """skops' node for ``__reduce__``: loading it calls ``module.name(*args)``."""
    return {"__class__": name, "__module__": module, "__loader__": "ConstructorFromReduceNode",
            "content": {"__class__": "tuple", "__module__": "builtins",
                        "__loader__": "TupleNode", "content": list(args)}}


_EMPTY_DICT_NODE = {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode",
                    "content": {}, "key_types": {"__class__": "list", "__module__": "builtins",
                                                 "__loader__": "ListNode", "content": []}}


def _rewrite_model_file(directory: Path, schema=None, entry=None) -> None:
    """``model.skops`` rewritten: ``schema(dict)`` edits its schema, ``entry(name, array)``
    returns the replacement of an ``.npy`` entry's array (or ``None``: unchanged)."""
    path = directory / "model.skops"
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as source:
        files = {name: source.read(name) for name in source.namelist()}
    if schema is not None:
        content = json.loads(files["schema.json"])
        schema(content)
        files["schema.json"] = json.dumps(content).encode()
    for name, data in files.items():
        if entry is not None and name.endswith(".npy"):
            array = entry(name, np.load(io.BytesIO(data), allow_pickle=False))
            if array is not None:
                buffer = io.BytesIO()
                np.save(buffer, array, allow_pickle=False)
                files[name] = buffer.getvalue()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for name, data in files.items():
            out.writestr(name, data)
    path.write_bytes(buffer.getvalue())


def _add_to_model_file(directory: Path, node: dict) -> None:
    """One more entry in the dict the model file holds: built (and run) when it loads."""
    def add(schema):
        schema["content"]["extra"] = node
        schema["key_types"]["content"].append(
            {"__class__": "str", "__module__": "builtins", "__loader__": "TypeNode"})

    _rewrite_model_file(directory, schema=add)


def _write_python(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').write('ran')"


def _function_calls(marker: Path) -> dict:
    """Functions the old ``sklearn.*``/``scipy.*`` prefix trusted: one writes a file, one
    runs any Python."""
    return {
        "scipy.io.savemat": _call_node("scipy.io", "savemat", _json_node(str(marker)),
                                       _EMPTY_DICT_NODE),
        "sklearn.utils._testing.assert_run_python_script_without_output": _call_node(
            "sklearn.utils._testing", "assert_run_python_script_without_output",
            _json_node(_write_python(marker))),
    }


@pytest.mark.parametrize("function", ["scipy.io.savemat",
                                      "sklearn.utils._testing.assert_run_python_script_"
                                      "without_output"])
def test_a_function_named_in_the_model_file_never_runs(bundle_dir, tmp_path, function):
    marker = tmp_path / "marker.mat"
    _add_to_model_file(bundle_dir, _function_calls(marker)[function])
    _rehash(bundle_dir)
    with pytest.raises(BundleError, match=rf"holds type\(s\) \['{function}'\], which are not "
                                          "on the allow-list"):
        ExplanationBundle.read(bundle_dir)
    with pytest.raises(ValueError, match="not on the allow-list"):
        load(bundle_dir)
    assert not marker.exists()


def _credit_model(name: str):
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.neighbors import KNeighborsClassifier

    estimator = {"forest": RandomForestClassifier(n_estimators=5, random_state=0),
                 "extra_trees": ExtraTreesClassifier(n_estimators=5, random_state=0),
                 "boosting": GradientBoostingClassifier(n_estimators=5, random_state=0),
                 "hist_boosting": HistGradientBoostingClassifier(max_iter=5),
                 "mlp_sgd": MLPClassifier((8,), solver="sgd", max_iter=20, random_state=0),
                 "knn_brute": KNeighborsClassifier(algorithm="brute")}[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Pipeline([("prep", preprocessor()), ("model", estimator)]).fit(CREDIT_X,
                                                                              CREDIT_Y)


@pytest.mark.parametrize("name", ["forest", "extra_trees", "boosting", "hist_boosting",
                                  "mlp_sgd", "knn_brute"])
def test_the_models_we_save_load_with_the_allow_list_alone(tmp_path, name, no_pickle):
    model = _credit_model(name)
    ExplanationBundle(model, PermutationScoringExplainer(n_background=5).fit(
        model, CREDIT_X)).write(tmp_path)
    bundle = ExplanationBundle.read(tmp_path)
    np.testing.assert_array_equal(bundle.score(CREDIT_X.iloc[:5]).probabilities,
                                  model.predict_proba(CREDIT_X.iloc[:5]))


def test_the_allow_list_names_classes_only():
    """skops calls a trusted name to build some nodes: a function here would run."""
    import importlib

    from scoring.artifacts.trust import ALLOWED_TYPES

    for name in ALLOWED_TYPES:
        module, _, attribute = name.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), attribute), type), name


def _tree_model(kind: str):
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    if kind == "forest":
        return RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, Y)
    return HistGradientBoostingClassifier(max_iter=3, max_depth=3).fit(X, Y)


# run in a child process: a crafted tree that gets through crashes the process
_READ_SCRIPT = """
import sys
import numpy as np
from pathlib import Path
from scoring.artifacts.bundle import BundleError, ExplanationBundle
try:
    bundle = ExplanationBundle.read(Path(sys.argv[1]))
except BundleError as exc:
    print("refused:", exc)
    sys.exit(3)
print("served:", bundle.score(np.zeros((2, int(sys.argv[2])))).predictions)
"""


CRAFTED = [("forest", "left_child"), ("forest", "feature"), ("hgb", "right"),
           ("hgb", "feature_idx")]


def _crafted_bundle(directory: Path, kind: str, field: str) -> None:
    """A bundle whose model file's first tree node has ``field`` rewritten far outside the
    arrays (the root's child or column), rehashed as a writer of the store can."""
    model = _tree_model(kind)
    ExplanationBundle(model, PermutationScoringExplainer(n_background=5).fit(model, X)).write(
        directory)
    ExplanationBundle.read(directory)  # the real one loads

    def crafted(name, array):
        if array.dtype.names and field in array.dtype.names:
            array = array.copy()
            array[field][0] = 10 ** 6
            return array
        return None

    _rewrite_model_file(directory, entry=crafted)
    _rehash(directory)


@pytest.fixture(scope="module")
def crafted_reads(tmp_path_factory) -> dict[tuple[str, str], subprocess.CompletedProcess]:
    """Each ``CRAFTED`` bundle read and scored by a child process of its own (a crafted tree
    that gets through crashes it), the four side by side."""
    directories = [tmp_path_factory.mktemp(f"{kind}-{field}") for kind, field in CRAFTED]
    for directory, (kind, field) in zip(directories, CRAFTED, strict=True):
        _crafted_bundle(directory, kind, field)
    reads = run_side_by_side([[sys.executable, "-c", _READ_SCRIPT, str(directory),
                               str(X.shape[1])] for directory in directories],
                             timeout=120, cwd=ROOT)
    return dict(zip(CRAFTED, reads, strict=True))


@pytest.mark.parametrize("kind,field", CRAFTED)
def test_crafted_tree_indices_are_refused_before_the_model_runs(crafted_reads, kind, field):
    out = crafted_reads[kind, field]
    assert out.returncode == 3, (out.returncode, out.stdout, out.stderr[-2000:])
    assert "model.skops) is damaged or crafted" in out.stdout
    assert "whose children or column" in out.stdout


def test_the_manifest_cannot_trust_types_for_itself(bundle_dir, tmp_path):
    marker = tmp_path / "marker"
    _add_to_model_file(bundle_dir, _call_node("builtins", "exec",
                                              _json_node(_write_python(marker))))
    for name in ("scoring_explainer.json", "bundle.json"):
        _edit(bundle_dir / name, lambda m: m["model"].update(trusted_types=["builtins.exec"]))
    _rehash(bundle_dir)
    with pytest.raises(BundleError, match=r"holds type\(s\) \['builtins.exec'\], which are "
                                          "not on the allow-list"):
        ExplanationBundle.read(bundle_dir)
    assert not marker.exists()


def test_types_beyond_the_allow_list_come_from_the_operator(tmp_path, monkeypatch):
    model = Scaled().fit(X, Y)
    explainer = LinearScoringExplainer().fit(model, X)
    name = f"{Scaled.__module__}.Scaled"
    ExplanationBundle(model, explainer, trusted_types=[name]).write(tmp_path)
    # the saver's list is a record: without a verified signature it trusts nothing
    with pytest.raises(BundleError, match=rf"\['{name}'\], which are not on the allow-list.*"
                                          r"trusted_types=\[\.\.\.\], --trusted-types, "
                                          "SCORING_TRUSTED_TYPES"):
        ExplanationBundle.read(tmp_path)
    with pytest.raises(ValueError, match="not on the allow-list"):
        load(tmp_path)
    bundle = ExplanationBundle.read(tmp_path, trusted_types=[name])
    assert bundle.metadata()["trust"]["trusted_types"] == [name]
    np.testing.assert_array_equal(load(tmp_path, trusted_types=[name]).explain(X[:3]),
                                  explainer.explain(X[:3]))
    monkeypatch.setenv("SCORING_TRUSTED_TYPES", f"some.Other, {name}")
    assert ExplanationBundle.read(tmp_path).metadata()["trust"]["trusted_types"] == [name]


def test_a_verified_signature_vouches_for_the_saved_types(tmp_path, monkeypatch):
    model = Scaled().fit(X, Y)
    explainer = LinearScoringExplainer().fit(model, X)
    name = f"{Scaled.__module__}.Scaled"
    monkeypatch.setenv("SCORING_SIGNING_KEY", "operator key")
    ExplanationBundle(model, explainer, trusted_types=[name]).write(tmp_path / "signed")
    trust = ExplanationBundle.read(tmp_path / "signed").metadata()["trust"]
    assert trust["signature"] == "verified" and trust["trusted_types"] == [name]

    edited = tmp_path / "edited"
    shutil.copytree(tmp_path / "signed", edited)
    for manifest in ("scoring_explainer.json", "bundle.json"):
        _edit(edited / manifest, lambda m: m["model"]["trusted_types"].append("builtins.exec"))
    _rehash(edited)
    with pytest.raises(BundleError, match="wrong signature"):
        ExplanationBundle.read(edited)

    monkeypatch.delenv("SCORING_SIGNING_KEY")  # a signature nobody checks vouches for nothing
    with pytest.raises(BundleError, match=rf"\['{name}'\], which are not on the allow-list"):
        ExplanationBundle.read(tmp_path / "signed")
    trust = ExplanationBundle.read(tmp_path / "signed", trusted_types=[name]).metadata()["trust"]
    assert trust["signature"] == "unverified"


# -- the loader's bounds ---------------------------------------------------------------------
def _npy_header(shape: tuple, dtype=np.float64) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                 "fortran_order": False, "shape": shape})
    return buffer.getvalue()


_RSS_SCRIPT = """
import resource, sys
from pathlib import Path
from scoring.artifacts.bundle import ExplanationBundle
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
ExplanationBundle.read(Path(sys.argv[1]))
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_an_unused_array_entry_is_never_decompressed(bundle_dir):
    """512 MiB of zeros deflate to half a megabyte: an entry nothing refers to costs
    nothing."""
    with zipfile.ZipFile(bundle_dir / "scoring_explainer.npz", "a",
                         compression=zipfile.ZIP_DEFLATED) as npz:
        with npz.open("unused.npy", "w", force_zip64=True) as entry:
            entry.write(_npy_header((64 << 20,)))
            for _ in range(512):
                entry.write(bytes(1 << 20))
    assert (bundle_dir / "scoring_explainer.npz").stat().st_size < 4 << 20
    _rehash(bundle_dir)
    out = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, str(bundle_dir)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.split()[-1]) < 100, f"the read grew by {out.stdout.split()[-1]} MiB"


def test_array_sizes_are_checked_before_reading(bundle_dir, monkeypatch):
    path = bundle_dir / "scoring_explainer.npz"
    with zipfile.ZipFile(path) as npz:
        files = {name: npz.read(name) for name in npz.namelist()}
    # a header that declares 8 TiB over 16 bytes of data
    files["a0.npy"] = _npy_header((1 << 40,)) + bytes(16)
    with zipfile.ZipFile(path, "w") as npz:
        for name, data in files.items():
            npz.writestr(name, data)
    _rehash(bundle_dir)
    with pytest.raises(BundleError, match=r"scoring_explainer.npz is not readable: entry "
                                          r"'a0.npy' declares an array of shape "
                                          r"\(1099511627776,\)"):
        ExplanationBundle.read(bundle_dir)

    # the operator's limit, not the file's: lowered, the same entries are refused
    monkeypatch.setenv("SCORING_MAX_UNPACKED_BYTES", "1000")
    with pytest.raises(BundleError, match=r"declare more than 1000 bytes once decompressed "
                                          r"\(the limit, SCORING_MAX_UNPACKED_BYTES"):
        ExplanationBundle.read(bundle_dir)


@pytest.mark.parametrize("bad", ["0", "-1", "2GiB", "1e9", "³"])
def test_a_bad_unpacked_limit_refuses_the_read_naming_it(tmp_path, monkeypatch, bad):
    model = LogisticRegression().fit(X, Y)
    ExplanationBundle(model, LinearScoringExplainer().fit(model, X)).write(tmp_path / "b")
    monkeypatch.setenv("SCORING_MAX_UNPACKED_BYTES", bad)
    with pytest.raises(BundleError, match="SCORING_MAX_UNPACKED_BYTES must be a positive "
                                          "integer"):
        ExplanationBundle.read(tmp_path / "b")


def test_the_operator_raises_the_unpacked_limit_for_a_big_model(tmp_path, monkeypatch):
    """A forest whose model file declares more than the limit is refused, and read once the
    operator's setting allows its size."""
    from sklearn.ensemble import RandomForestClassifier

    from scoring import TreeScoringExplainer

    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, Y)
    ExplanationBundle(model, TreeScoringExplainer().fit(model, X)).write(tmp_path / "b")
    monkeypatch.setenv("SCORING_MAX_UNPACKED_BYTES", "100000")
    with pytest.raises(BundleError, match="more than 100000 bytes once decompressed"):
        ExplanationBundle.read(tmp_path / "b")
    monkeypatch.setenv("SCORING_MAX_UNPACKED_BYTES", str(1 << 30))
    assert ExplanationBundle.read(tmp_path / "b").model.n_estimators == 20


@pytest.fixture
def shown_bundle_dir(tmp_path):
    """A bundle with what the service shows: a global explanation, explained rows."""
    from scoring.dashboard import explain_dataset

    model = LogisticRegression().fit(X, Y)
    explainer = LinearScoringExplainer().fit(model, X)
    bundle = ExplanationBundle(model, explainer, global_explanation=explainer.explain_global(X))
    bundle.dataset_explanation = explain_dataset(bundle, X, 20)
    bundle.write(tmp_path / "bundle")
    return tmp_path / "bundle"


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _garbage_dataset(directory: Path, text: str) -> None:
    (directory / "dataset_explanation.json").write_text(text)


def _explanation_text(directory: Path, change) -> str:
    payload = json.loads((directory / "dataset_explanation.json").read_text())
    change(payload)
    return json.dumps(payload)


@pytest.mark.parametrize("case,file,message", [
    ("deep_manifest", "bundle.json", r"bundle.json is not a readable bundle manifest.*nested "
                                     "deeper than 100"),
    ("nan_global", "bundle.json", r"bundle.json's global explanation is not valid: "
                                  "global_importance_values holds NaN"),
    ("garbage_dataset", "dataset_explanation.json",
     r"dataset_explanation.json is not valid: .*Expecting value"),
    ("dataset_features", "dataset_explanation.json",
     r"dataset_explanation.json is not valid: 'features' must be a list"),
    ("dataset_shape", "dataset_explanation.json",
     r"dataset_explanation.json is not valid: data has shape \(3, 5\); expected \(20, 5\)"),
    ("not_a_zip", "scoring_explainer.npz", r"scoring_explainer.npz is not readable: not a zip"),
])
def test_a_malformed_file_is_a_bundle_error_naming_it(shown_bundle_dir, case, file, message):
    directory = shown_bundle_dir
    manifest = directory / "bundle.json"
    if case == "deep_manifest":
        manifest.write_text(manifest.read_text()[:-1] + f', "report": {_nested(100_000)}}}')
    elif case == "nan_global":
        _edit(manifest, lambda m: m["global_explanation"].update(
            global_importance_values=[float("nan")] * X.shape[1]))
    elif case == "garbage_dataset":
        _garbage_dataset(directory, "garbage")
    elif case == "dataset_features":
        _garbage_dataset(directory, _explanation_text(directory, lambda e: e.update(features=5)))
    elif case == "dataset_shape":
        _garbage_dataset(directory, _explanation_text(
            directory, lambda e: e.update(data=e["data"][:3])))
    else:
        (directory / file).write_bytes(b"not a zip at all")
    if case != "deep_manifest" and case != "nan_global":
        _rehash(directory)
    with pytest.raises(BundleError, match=message):
        ExplanationBundle.read(directory)


# -- explanations read back ---------------------------------------------------------------------
def _payload() -> dict:
    """A served explanation of 4 rows, 2 classes, 5 features, as a file holds it."""
    model = LogisticRegression().fit(X, Y)
    bundle = ExplanationBundle(model, LinearScoringExplainer().fit(model, X))
    return bundle.score(X[:4]).explanation.to_dict()


@pytest.mark.parametrize("change,message", [
    (lambda p: p.update(local_importance_values=[[[float("nan")] * 5] * 4] * 2),
     "local_importance_values holds NaN or infinite values"),
    (lambda p: p.update(expected_values=[0.5, float("inf")]),
     "expected_values holds NaN or infinite values"),
    (lambda p: p.update(global_importance_values=[1.0, 2.0]),
     r"global_importance_values has shape \(2,\); expected \(5,\)"),
    (lambda p: p.update(expected_values=[0.5]), "expected_values has 1 values for 2 output"),
    (lambda p: p.update(local_importance_values=[[["1"] * 5] * 4] * 2), "must hold numbers"),
    (lambda p: p.update(local_importance_values={"a": 1}), "must hold numbers"),
    (lambda p: p.update(local_importance_values=[[[1.0] * 5, [1.0]]] * 2), "ragged"),
    (lambda p: p.update(classes=["only one"], expected_values=[0.5]),
     "has 2 classes, classes has 1"),
    (lambda p: p.update(features=["a", 1, "c", "d", "e"]), "'features' must be a list"),
    (lambda p: p.update(classes={"0": 1}), "'classes' must be null or a list"),
    (lambda p: p.update(data=[[1.0] * 5] * 3), r"data has shape \(3, 5\); expected \(4, 5\)"),
    (lambda p: p.update(data=[[{"a": 1}] * 5] * 4), "data must hold numbers, strings"),
    (lambda p: p.update(raw="yes"), "'raw' must be true or false"),
    (lambda p: p.update(method=3), "'method' must be a string"),
    (lambda p: p.update(extra={"mean_row_shares": [[0.5, 0.5]]}),
     r"extra\['mean_row_shares'\] has shape \(1, 2\)"),
    (lambda p: p.update(extra={"n_rows": float("nan")}), "'extra' must be an object without NaN"),
    (lambda p: p.update(extra=[1]), "'extra' must be an object"),
])
def test_explanations_read_back_are_validated(change, message):
    payload = _payload()
    Explanation.from_dict(payload)
    change(payload)
    with pytest.raises(ValueError, match=message):
        Explanation.from_dict(payload)
    with pytest.raises(ValueError, match=message):
        Explanation.from_json(json.dumps(payload))


def test_explanation_json_nested_too_deep_is_a_value_error(tmp_path):
    from scoring.dashboard.source import read_explanation_file

    with pytest.raises(ValueError, match="nested deeper than 100"):
        Explanation.from_json(f'{{"format": "scoring.Explanation", "extra": {_nested(100_000)}}}')
    nan_rows = _payload()
    nan_rows["local_importance_values"][0][0][0] = float("nan")
    (tmp_path / "rows.json").write_text(json.dumps(nan_rows))
    with pytest.raises(ValueError, match=r"rows.json: cannot read it: local_importance_values "
                                         "holds NaN"):
        read_explanation_file(tmp_path / "rows.json")


# -- through a real `bentoml serve` -------------------------------------------------------------
def _small_bundle() -> tuple:
    model = LogisticRegression().fit(X, Y)
    explainer = LinearScoringExplainer().fit(model, X)
    return model, explainer, explainer.explain_global(X), False, None


# what each hostile bundle's one log line says when `bentoml serve` refuses it
HOSTILE = {
    "function_call": r"holds type\(s\) \['scipy.io.savemat'\], which are not on the allow-list",
    "nan_global": "global explanation is not valid: global_importance_values holds NaN",
}


@pytest.fixture(scope="module")
def started(servers, bundle_store, tmp_path_factory) -> dict[str, tuple]:
    """`bentoml serve` of three bundles, side by side: ``unverified``, saved with a signing
    key and served without one, and the ``HOSTILE`` bundles, rewritten after saving as an
    attacker who can write the store would; ``{name: (server, file the attack would
    write)}``."""
    work = tmp_path_factory.mktemp("started")
    [signed] = bundle_store.save({"signed_elsewhere": _small_bundle()},
                                 env={"SCORING_SIGNING_KEY": "the saver's key"})
    hostile = bundle_store.save({f"hostile_{attack}": _small_bundle() for attack in HOSTILE})
    marker = work / "marker.mat"
    for attack, tag in zip(HOSTILE, hostile, strict=True):
        directory = bundle_store.directory(tag)
        if attack == "function_call":
            _add_to_model_file(directory, _function_calls(marker)["scipy.io.savemat"])
            _rehash(directory)
        else:
            _edit(directory / "bundle.json", lambda m: m["global_explanation"].update(
                global_importance_values=[float("nan")] * X.shape[1]))
    started = {"unverified": servers.start(None, bundle_store.home, work / "unverified.log",
                                           bundle=signed, wait=False,
                                           env={"SCORING_SIGNING_KEY": ""})}
    for attack, tag in zip(HOSTILE, hostile, strict=True):
        started[attack] = servers.start(None, bundle_store.home, work / f"{attack}.log",
                                        bundle=tag, wait=False)
    try:
        yield {name: (server, marker) for name, server in started.items()}
    finally:
        for server in started.values():
            servers.stop(server)


def test_served_metadata_says_an_unchecked_signature_is_unverified(started, servers):
    server, _ = started["unverified"]
    servers.wait_ready(server)
    trust = requests.get(server.url + "/metadata", timeout=10).json()["trust"]
    assert trust == {"model_format": "skops", "allow_pickle": False, "trusted_types": [],
                     "signature": "unverified"}


@pytest.mark.parametrize("attack", HOSTILE)
def test_a_hostile_bundle_stops_start_up_with_one_log_line(started, attack):
    server, marker = started[attack]
    code = server.proc.wait(120)
    output = server.output()
    refusals = [line for line in output.splitlines()
                if "[CRITICAL]" in line and "failed its checks; not serving" in line]
    assert code == 1, output[-3000:]
    assert len(refusals) == 1 and re.search(HOSTILE[attack], refusals[0]), output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert not marker.exists()


LIGHTGBM_TYPES = ("lightgbm.basic.Booster", "lightgbm.sklearn.LGBMClassifier")


@pytest.fixture(scope="module")
def lightgbm_bundle(tmp_path_factory):
    """A LightGBM classifier distilled by the CLI, which the operator trusted by name:
    ``(cli, side_by_side, explain arguments, root folder)``."""
    lgb = pytest.importorskip("lightgbm")
    root = tmp_path_factory.mktemp("lightgbm")
    table = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])]).assign(y=Y)
    table.to_csv(root / "train.csv", index=False)
    joblib.dump(lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, Y), root / "lgbm.joblib")

    scoring = [sys.executable, "-m", "scoring.cli"]
    env = {**os.environ, "BENTOML_HOME": str(root / "home")}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*scoring, *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=600)

    def side_by_side(*commands: tuple[str, ...]) -> list[subprocess.CompletedProcess]:
        return run_side_by_side([[*scoring, *c] for c in commands], timeout=600, cwd=ROOT,
                                env=env)

    built = cli("distill", "--model", str(root / "lgbm.joblib"), "--data",
                str(root / "train.csv"), "--target", "y", "--method", "permutation",
                "--dashboard-rows", "0", "--trusted-types", *LIGHTGBM_TYPES)
    assert built.returncode == 0, built.stderr[-2000:]
    tag = built.stdout.split()[-1]
    explain = ("explain", "--bundle", tag, "--data", str(root / "train.csv"), "--drop", "y")
    return cli, side_by_side, explain, root


def test_the_cli_trusts_the_types_the_operator_names(lightgbm_bundle):
    _, side_by_side, explain, _ = lightgbm_bundle
    refused, trusted = side_by_side(explain, (*explain, "--trusted-types", *LIGHTGBM_TYPES))
    assert refused.returncode != 0
    assert "lightgbm.basic.Booster" in refused.stderr and "--trusted-types" in refused.stderr
    assert trusted.returncode == 0, trusted.stderr[-2000:]
    assert Explanation.from_json(trusted.stdout).num_examples == len(X)


@pytest.mark.integration
def test_dask_workers_trust_the_types_the_operator_names(lightgbm_bundle):
    """Workers load the bundle by its tag, trusting what the operator named (a Dask
    LocalCluster: integration tier); never what the bundle's own files record."""
    cli, _, explain, root = lightgbm_bundle
    batch = (*explain, "--output", str(root / "out"), "--workers", "1")
    refused = cli(*batch)
    assert refused.returncode != 0 and "lightgbm.basic.Booster" in refused.stderr
    trusted = cli(*batch, "--trusted-types", *LIGHTGBM_TYPES)
    assert trusted.returncode == 0, trusted.stderr[-2000:]
    assert len(pd.read_parquet(root / "out")) == 2 * len(X)  # a row per class
