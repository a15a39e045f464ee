"""Every public call refuses bad input with a message naming the problem."""

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from scoring import (
    InputError,
    KernelScoringExplainer,
    LinearExplainableModel,
    LinearScoringExplainer,
    MimicExplainer,
    PermutationScoringExplainer,
    PFIExplainer,
    TabularExplainer,
    TreeScoringExplainer,
)
from scoring.artifacts.persistence import load, save
from scoring.evaluation.distill import distill

X, Y = make_classification(n_samples=80, n_features=5, n_informative=3, random_state=0)
COLUMNS = list("abcde")
FRAME = pd.DataFrame(X, columns=COLUMNS)
WITH_NAN = X[:3].copy()
WITH_NAN[1, 2] = np.nan


def _svc():
    return SVC(probability=True, random_state=0)


def _boosting():
    return GradientBoostingClassifier(n_estimators=5, random_state=0)


# name -> (unfitted model factory, build(model, X, **kwargs) -> fitted explainer)
BUILDERS = {
    "TabularExplainer": (_svc, lambda m, x, **kw: TabularExplainer(m, x, nsamples=30, **kw)),
    "MimicExplainer": (_svc, lambda m, x, **kw: MimicExplainer(m, x, LinearExplainableModel,
                                                               **kw)),
    "KernelScoringExplainer": (_svc, lambda m, x, **kw: KernelScoringExplainer(
        nsamples=30).fit(m, x, **kw)),
    "PermutationScoringExplainer": (_svc, lambda m, x, **kw: PermutationScoringExplainer(
        n_background=10).fit(m, x, **kw)),
    "TreeScoringExplainer": (_boosting, lambda m, x, **kw: TreeScoringExplainer(
        n_background=10).fit(m, x, **kw)),
    "LinearScoringExplainer": (LogisticRegression, lambda m, x, **kw: LinearScoringExplainer(
        ).fit(m, x, **kw)),
    # small amortized networks: whichever candidate ships, it must refuse bad rows
    "distill": (_svc, lambda m, x, **kw: distill(m, x, verbose=False, n_held_out=2,
                                                 reference_background=5, reference_budget=2000,
                                                 nsamples=30, hidden_layer_sizes=(8,),
                                                 max_iter=5, **kw)),
}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def built(request):
    """``(name, explainer on arrays, explainer on a DataFrame)``."""
    make, build = BUILDERS[request.param]
    on_array = build(make().fit(X, Y), X)
    on_frame = build(make().fit(FRAME, Y), FRAME)
    return request.param, on_array, on_frame


def _explain_calls(explainer):
    """The request-path calls of an explainer, each taking rows."""
    if hasattr(explainer, "explain_global"):  # TabularExplainer, MimicExplainer
        return [explainer.explain_local, explainer.explain_global]
    return [explainer.explain, explainer.explain_local]


# -- construction / fit ----------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_unfitted_model(name):
    make, build = BUILDERS[name]
    with pytest.raises(NotFittedError, match=r"is not fitted; call fit on it"):
        build(make(), X)


def test_unfitted_model_pfi():
    with pytest.raises(NotFittedError, match="SVC is not fitted"):
        PFIExplainer(_svc())


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_empty_initialization_examples(name):
    make, build = BUILDERS[name]
    with pytest.raises(ValueError, match=r"is empty|has 0 rows"):
        build(make().fit(X, Y), X[:0])


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_feature_names_do_not_match_columns(name):
    make, build = BUILDERS[name]
    with pytest.raises(ValueError, match="2 feature names given for 5 columns"):
        build(make().fit(X, Y), X, features=["a", "b"])


@pytest.mark.parametrize("name", ["TabularExplainer", "MimicExplainer", "KernelScoringExplainer",
                                  "LinearScoringExplainer", "distill"])
def test_nan_in_training_rows_the_model_cannot_take(name):
    make, build = BUILDERS[name]
    with pytest.raises(InputError, match=r"row \d+, field 'x2': missing value \(NaN\); this "
                                         "model cannot take missing values"):
        build(make().fit(X, Y), np.vstack([X, WITH_NAN]))


def test_explainer_specific_arguments():
    model = _svc().fit(X, Y)
    with pytest.raises(ValueError, match="explainer_kind must be one of"):
        TabularExplainer(model, X, explainer_kind="deep")
    with pytest.raises(ValueError, match="nsamples must be 'auto' or an integer >= 2, got 1"):
        TabularExplainer(model, X, nsamples=1)
    with pytest.raises(ValueError, match=r"1 class names given for a model with 2 classes"):
        TabularExplainer(model, X, classes=["only"])
    with pytest.raises(TypeError, match="explainable_model must be one of the surrogate"):
        MimicExplainer(model, X, "LGBMExplainableModel")
    with pytest.raises(ValueError, match="max_num_of_augmentations must be a positive"):
        MimicExplainer(model, X, LinearExplainableModel, max_num_of_augmentations=0)
    with pytest.raises(TypeError, match="initialization_examples must be a pandas DataFrame"):
        TabularExplainer(LogisticRegression().fit(X, Y), X,
                         transformations=[(["a"], StandardScaler())])
    with pytest.raises(TypeError, match="cannot explain SVC: it is not a linear"):
        LinearScoringExplainer().fit(model, X)
    with pytest.raises(ValueError, match="'acc' is not a scikit-learn scorer name"):
        PFIExplainer(model, metric="acc")


def test_mimic_refuses_categorical_rows_without_transformations():
    frame = FRAME.assign(city=np.where(Y > 0, "paris", "lyon"))
    model = _FrameModel().fit(frame, Y)
    with pytest.raises(ValueError, match=r"categorical columns \['city'\]; pass the fitted "
                                         "preprocessing as transformations="):
        MimicExplainer(model, frame, LinearExplainableModel)


class _FrameModel(LogisticRegression):
    """A classifier taking DataFrames with a string column (which it ignores)."""

    def fit(self, X, y):
        return super().fit(X[COLUMNS].to_numpy(), y)

    def predict_proba(self, X):
        return super().predict_proba(X[COLUMNS].to_numpy(dtype=float))


# -- explain calls -----------------------------------------------------------------------
def test_wrong_number_of_columns(built):
    _, explainer, _ = built
    for call in _explain_calls(explainer):
        with pytest.raises(InputError, match=r"rows have 4 columns; the model takes 5"):
            call(X[:2, :4])


def test_unknown_and_missing_column_names(built):
    _, _, explainer = built
    for call in _explain_calls(explainer):
        with pytest.raises(InputError, match=r"unknown column\(s\) \['zz'\]"):
            call(FRAME.rename(columns={"a": "zz"}).iloc[:2])
        with pytest.raises(InputError, match=r"missing column\(s\) \['e'\]"):
            call(FRAME.drop(columns="e").iloc[:2])
        with pytest.raises(InputError, match=r"row 0: unknown field\(s\) \['zz'\]"):
            call([{**dict.fromkeys(COLUMNS, 0.0), "zz": 1.0}])


def test_nan_where_the_model_cannot_take_it(built):
    _, explainer, _ = built
    for call in _explain_calls(explainer):
        with pytest.raises(InputError, match=r"row 1, field 'x2': missing value \(NaN\)"):
            call(WITH_NAN)


def test_empty_input(built):
    _, on_array, on_frame = built
    for explainer, empties in ((on_array, (X[:0], [])), (on_frame, (FRAME.iloc[:0], []))):
        for call in _explain_calls(explainer):
            for empty in empties:
                with pytest.raises(InputError, match="no rows to score: the input is empty"):
                    call(empty)


def test_not_a_number(built):
    _, explainer, _ = built
    for call in _explain_calls(explainer):
        with pytest.raises(InputError, match=r"row 0, field 'x1': expected a number, got 'x'"):
            call([[0.0, "x", 0.0, 0.0, 0.0]])


def test_get_raw_without_transformations():
    explainer = KernelScoringExplainer(nsamples=30).fit(_svc().fit(X, Y), X)
    with pytest.raises(ValueError, match=r"values per raw column \(get_raw\) need an "
                                         "explainer fitted with transformations"):
        explainer.explain(X[:2], get_raw=True)


def test_unfitted_scoring_explainer_explain():
    with pytest.raises(NotFittedError, match="KernelScoringExplainer is not fitted"):
        KernelScoringExplainer().explain(X[:2])


# -- PFI -------------------------------------------------------------------------------------
def test_pfi_bad_inputs():
    explainer = PFIExplainer(_svc().fit(X, Y), n_repeats=1)
    with pytest.raises(ValueError, match="needs true_labels"):
        explainer.explain_global(X)
    with pytest.raises(ValueError, match=r"true_labels has shape \(3,\); expected one label "
                                         r"per row \(80,\)"):
        explainer.explain_global(X, true_labels=Y[:3])
    with pytest.raises(InputError, match="has 4 columns; the model takes 5"):
        explainer.explain_global(X[:, :4], true_labels=Y)
    with pytest.raises(InputError, match=r"row 1, field 'x2': missing value \(NaN\)"):
        explainer.explain_global(WITH_NAN, true_labels=Y[:3])
    with pytest.raises(InputError, match="the input is empty"):
        explainer.explain_global(X[:0], true_labels=Y[:0])
    with pytest.raises(NotImplementedError, match="does not support local explanations"):
        explainer.explain_local(X[:2])
    on_frame = PFIExplainer(_svc().fit(FRAME, Y), n_repeats=1)
    with pytest.raises(InputError, match=r"unknown column\(s\) \['zz'\]"):
        on_frame.explain_global(FRAME.rename(columns={"a": "zz"}), true_labels=Y)


# -- save / load -----------------------------------------------------------------------
def test_save_and_load_refusals(tmp_path):
    with pytest.raises(NotFittedError, match="KernelScoringExplainer is not fitted"):
        save(KernelScoringExplainer(), tmp_path)
    with pytest.raises(TypeError, match="save expects a fitted scoring explainer, got SVC"):
        save(_svc().fit(X, Y), tmp_path)
    explainer = KernelScoringExplainer(nsamples=30).fit(_svc().fit(X, Y), X)
    save(explainer, tmp_path)
    with pytest.raises(FileExistsError, match="already exists; pass exist_ok=True"):
        save(explainer, tmp_path)
    with pytest.raises(FileNotFoundError, match="no scoring explainer at"):
        load(tmp_path / "missing")
    text = tmp_path / "notes.txt"
    text.write_text("not a scoring explainer")
    with pytest.raises(ValueError, match="is not a readable scoring explainer file"):
        load(text)
