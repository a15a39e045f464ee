"""Shared fixtures: small real bundles in a temporary BentoML home, and `bentoml serve`
subprocesses serving them (those the selected tests need start with the session, in the
background; stopped by PID at the end of the session)."""

from __future__ import annotations

import os

# One thread per OpenMP and BLAS pool in this process and in the servers and commands it
# starts (set before numpy loads them; export one to override): on a shared 2-core machine
# the OpenMP threads of histogram boosting and LightGBM spin against each other and against
# the other processes, and the tests check results, not parallel speed
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC

from scoring import (
    AmortizedScoringExplainer,
    KernelScoringExplainer,
    LinearScoringExplainer,
    PermutationScoringExplainer,
)
from scoring.datasets import make_credit, preprocessor
from tests.support.bundles import Bundle, BundleStore, save_bundles
from tests.support.servers import (
    API_TOKEN,
    BODY_TIMEOUT,
    HEADER_TIMEOUT,
    ServedBundles,
    Server,
    Servers,
)


def _breast_cancer() -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    data = load_breast_cancer()
    return (pd.DataFrame(data.data, columns=data.feature_names), data.target,
            list(data.target_names))


def _tabular() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    n = 200
    frame = pd.DataFrame({"age": rng.normal(40, 10, n), "income": rng.normal(50, 15, n),
                          "city": rng.choice(["paris", "lyon", "nice"], n)})
    y = (frame["age"] + 10 * (frame["city"] == "paris") + rng.normal(0, 5, n) > 45)
    return frame, y.astype(int).to_numpy()


@pytest.fixture(scope="session")
def bento_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bentoml_home")


@pytest.fixture(scope="session")
def bundles(bento_home, tmp_path_factory) -> dict[str, Bundle]:
    """``svc``: breast-cancer SVC with a Kernel scoring explainer (probabilities, two
    classes); ``svc_permutation``, ``svc_amortized``: the same model with the other
    model-agnostic scoring explainers distill ships (small settings); ``tabular``: logistic
    regression behind a ColumnTransformer with a categorical column whose encoder refuses
    unseen categories (decision function, get_raw); ``credit``: an MLP behind the realistic
    preprocessing of credit rows (strings and numbers with missing values), with explained
    rows for its dashboard; ``mismatched``: an explainer saved with another model;
    ``damaged``: a truncated model file."""
    X, y, classes = _breast_cancer()
    features = list(X.columns)
    svc = SVC(probability=True, random_state=0).fit(X.to_numpy(), y)
    svc_explainer = KernelScoringExplainer(nsamples=128, n_background=5).fit(
        svc, X.to_numpy(), features=features, classes=classes)
    svc_global = svc_explainer.explain_global(X.to_numpy(), max_rows=10)
    permutation = PermutationScoringExplainer(n_background=20).fit(
        svc, X.to_numpy(), features=features, classes=classes)
    amortized = AmortizedScoringExplainer(hidden_layer_sizes=(16,), max_iter=30, n_networks=2,
                                          n_permutations=8, max_label_rows=600).fit(
        svc, X.to_numpy(), features=features, classes=classes)

    frame, yt = _tabular()
    columns = ColumnTransformer([("num", StandardScaler(), ["age", "income"]),
                                 ("cat", OneHotEncoder(handle_unknown="error"), ["city"])])
    columns.fit(frame)
    lr = LogisticRegression().fit(columns.transform(frame), yt)
    lr_explainer = LinearScoringExplainer().fit(lr, frame, transformations=columns)
    lr_global = lr_explainer.explain_global(frame, max_rows=20)

    a = LogisticRegression(max_iter=5000).fit(X.to_numpy(), y)
    b = LogisticRegression(max_iter=5000, C=0.01).fit(X.to_numpy(), y)
    wrong = LinearScoringExplainer().fit(a, X.to_numpy())

    credit_X, credit_y = make_credit(n_rows=500)
    credit = Pipeline([("prep", preprocessor()),
                       ("model", MLPClassifier((16,), max_iter=300, random_state=0))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLP convergence on a small fit
        credit.fit(credit_X, credit_y)
    credit_explainer = PermutationScoringExplainer(n_background=20).fit(credit, credit_X)

    objects = {"breast_cancer_svc": (svc, svc_explainer, svc_global, False, None),
               "svc_permutation": (svc, permutation, None, False, None),
               "svc_amortized": (svc, amortized, None, False, None),
               "tabular_lr": (lr, lr_explainer, lr_global, False, None),
               "mismatched": (b, wrong, None, False, None),
               "damaged": (a, wrong, None, True, None),
               "credit_mlp": (credit, credit_explainer,
                              credit_explainer.explain_global(credit_X), False, credit_X)}
    tags = save_bundles(objects, bento_home, tmp_path_factory.mktemp("bundles"))
    return {"svc": Bundle(tags[0], svc, svc_explainer, svc_global, X),
            "svc_permutation": Bundle(tags[1], svc, permutation, None, X),
            "svc_amortized": Bundle(tags[2], svc, amortized, None, X),
            "tabular": Bundle(tags[3], lr, lr_explainer, lr_global, frame),
            "mismatched": Bundle(tags[4], b, wrong, None, X),
            "damaged": Bundle(tags[5], a, wrong, None, X),
            "credit": Bundle(tags[6], credit, credit_explainer, None, credit_X)}


@pytest.fixture(scope="session")
def bundle_store(bento_home, tmp_path_factory) -> BundleStore:
    return BundleStore(bento_home, tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="session")
def servers() -> type[Servers]:
    return Servers


# the session's servers, ``name: (bundle, more environment)``: fixture `<name>_server` is
# `bentoml serve` of that bundle
SERVED = {
    "svc": ("svc", {}),
    "tabular": ("tabular", {}),
    "credit": ("credit", {}),
    "svc_amortized": ("svc_amortized", {}),
    # every route but the probes, /metrics and the dashboard's page needs the token
    "auth": ("svc", {"SCORING_API_TOKEN": API_TOKEN}),
    # short deadlines for a request's headers and for its body; the access log on
    "timeout": ("svc", {"SCORING_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
                        "SCORING_BODY_TIMEOUT": str(BODY_TIMEOUT), "SCORING_ACCESS_LOG": "1"}),
}


def _servers_needed(items: list[pytest.Item]) -> list[str]:
    """The names of ``SERVED`` whose fixture ``items`` ask for, directly or not."""
    return [name for name in SERVED
            if any(f"{name}_server" in item.fixturenames for item in items)]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules whose tests need none of the session's servers run first: meanwhile the
    servers the later ones need start (``_start_servers``)."""
    serving = {item.module for item in items if _servers_needed([item])}
    items.sort(key=lambda item: item.module in serving)


@pytest.fixture(scope="session")
def served(bundles, bento_home, tmp_path_factory) -> ServedBundles:
    """The servers of ``SERVED``, started when asked for, stopped at the end."""
    pool = ServedBundles({name: (bundles[bundle].tag, env)
                          for name, (bundle, env) in SERVED.items()},
                         bento_home, tmp_path_factory.mktemp("logs"))
    try:
        yield pool
    finally:
        pool.stop()


@pytest.fixture(scope="session", autouse=True)
def _start_servers(request) -> None:
    """The servers the selected tests need start with the session, side by side, and boot
    while the tests that need none run."""
    names = _servers_needed(request.session.items)
    if names:
        request.getfixturevalue("served").start(names)


@pytest.fixture(scope="session")
def svc_server(served) -> Server:
    return served["svc"]


@pytest.fixture(scope="session")
def tabular_server(served) -> Server:
    return served["tabular"]


@pytest.fixture(scope="session")
def credit_server(served) -> Server:
    return served["credit"]


@pytest.fixture(scope="session")
def svc_amortized_server(served) -> Server:
    return served["svc_amortized"]


@pytest.fixture(scope="session")
def auth_server(served) -> Server:
    return served["auth"]


@pytest.fixture(scope="session")
def timeout_server(served) -> Server:
    return served["timeout"]
