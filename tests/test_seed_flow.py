"""The seed document's local flow end to end, with our imports."""

import json
import shutil

import numpy as np
import pytest
from sklearn import svm
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from scoring import KernelScoringExplainer, TabularExplainer
from scoring.artifacts.persistence import load, save

ATOL = 1e-6  # additivity: Kernel SHAP's efficiency constraint holds to rounding


@pytest.fixture(scope="module")
def seed():
    breast_cancer_data = load_breast_cancer()
    classes = breast_cancer_data.target_names.tolist()
    x_train, x_test, y_train, y_test = train_test_split(
        breast_cancer_data.data, breast_cancer_data.target, test_size=0.2, random_state=0)
    clf = svm.SVC(gamma=0.001, C=100., probability=True)
    model = clf.fit(x_train, y_train)
    explainer = TabularExplainer(model, x_train, features=breast_cancer_data.feature_names,
                                 classes=classes)
    return breast_cancer_data, classes, x_train, x_test, model, explainer


def test_tabular_explainer_on_the_seed_svc(seed):
    data, classes, _, x_test, model, explainer = seed
    # the RBF SVC's coalitions from kernel factors, on 20 kmeans centroids
    assert explainer.explainer_kind == "svm"
    assert explainer.selection_reason_.startswith("SVC predict_proba: svm")
    assert len(explainer.background_) == 20

    global_explanation = explainer.explain_global(x_test[:4])
    assert global_explanation.method == "svm"
    values = global_explanation.get_ranked_global_values()
    names = global_explanation.get_ranked_global_names()
    assert len(values) == len(names) == 30 and values == sorted(values, reverse=True)
    assert set(names) == set(data.feature_names)
    top = global_explanation.get_feature_importance_dict()
    assert list(top) == names and list(top.values()) == values
    assert list(global_explanation.get_feature_importance_dict(top_k=3)) == names[:3]

    local_explanation = explainer.explain_local(x_test[0:5])
    assert local_explanation.classes == classes
    assert local_explanation.local_importance_values.shape == (2, 5, 30)
    ranked_names = local_explanation.get_ranked_local_names()
    ranked_values = local_explanation.get_ranked_local_values()
    assert np.shape(ranked_names) == np.shape(ranked_values) == (2, 5, 30)
    assert all(abs(v[0]) >= abs(v[-1]) for per_class in ranked_values for v in per_class)
    total = local_explanation.local_importance_values.sum(-1).T \
        + local_explanation.expected_values
    np.testing.assert_allclose(total, model.predict_proba(x_test[0:5]), atol=ATOL)


def test_scoring_explainer_save_load_explain(seed, tmp_path):
    _, classes, _, x_test, model, explainer = seed
    scoring_explainer = KernelScoringExplainer(explainer, nsamples=600)
    path = save(scoring_explainer, directory=tmp_path, exist_ok=True)
    assert path.name == "scoring_explainer.json"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model.skops", "scoring_explainer.json", "scoring_explainer.npz"]
    save(scoring_explainer, directory=tmp_path, exist_ok=True)  # overwriting is allowed
    loaded = load(path)
    assert loaded.spec_.classes == classes
    values = loaded.explain(x_test[:3])
    assert values.shape == (2, 3, 30)
    np.testing.assert_array_equal(values, scoring_explainer.explain(x_test[:3]))
    total = values.sum(-1).T + loaded.expected_values
    np.testing.assert_allclose(total, model.predict_proba(x_test[:3]), atol=ATOL)
    assert load(tmp_path).method == "kernel"  # the directory works too
    assert load(tmp_path / "model.skops").method == "kernel"  # or any file in it

    copy = tmp_path / "copy"
    shutil.copytree(tmp_path, copy, ignore=shutil.ignore_patterns("copy"))
    arrays = copy / "scoring_explainer.npz"
    arrays.write_bytes(arrays.read_bytes()[: arrays.stat().st_size // 2])
    with pytest.raises(ValueError, match="is damaged or was altered: the SHA-256 of "
                                         "scoring_explainer.npz"):
        load(copy)
    manifest = copy / "scoring_explainer.json"
    manifest.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated or damaged"):
        load(copy)

    manifest.write_text(json.dumps({"model": "not an explainer"}))
    with pytest.raises(ValueError, match="not a scoring explainer"):
        load(copy)

    content = json.loads(path.read_text())
    content["versions"]["shap"] = "0.0.1"
    manifest.write_text(json.dumps(content))
    shutil.copy(tmp_path / "scoring_explainer.npz", arrays)
    with pytest.raises(ValueError, match=r"incompatible library versions \(shap saved with "
                                         r"0\.0\.1"):
        load(copy)
