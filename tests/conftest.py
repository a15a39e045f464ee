"""Shared fixtures: small real bundles in a temporary BentoML home, and `bentoml serve`
subprocesses serving them (started on demand, stopped by PID at the end of the session)."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import joblib
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

from bench.processes import free_port, start_prometheus, stop_process, wait_http
from bench.realistic import preprocessor
from scoring import (
    AmortizedScoringExplainer,
    KernelScoringExplainer,
    LinearScoringExplainer,
    PermutationScoringExplainer,
)
from scoring.datasets import make_credit

ROOT = Path(__file__).resolve().parents[1]
BENTOML = str(Path(sys.executable).with_name("bentoml"))
START_TIMEOUT = 120
# training rows of the credit bundle explained and stored for its dashboard
DASHBOARD_ROWS = 300

# saves bundles into the BentoML home of its environment (a subprocess, so the test
# process's own BentoML configuration is left alone); prints one tag per line
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


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


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
    unseen categories (decision function, get_raw);
    ``mismatched``: an explainer saved with another model; ``damaged``: a truncated model
    file."""
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


@pytest.fixture(scope="session")
def bundle_store(bento_home, tmp_path_factory) -> BundleStore:
    return BundleStore(bento_home, tmp_path_factory.mktemp("store"))


def start_server(target: str | None, home: Path, log: Path, bundle: str | None = None,
                 wait: bool = True, cwd: Path = ROOT, env: dict | None = None) -> Server:
    """``bentoml serve [target]`` from the project root on a free port (``env``: more
    environment variables for it).

    Each server gets its own BentoML home sharing ``home``'s model and bento stores:
    BentoML keeps its Prometheus multiprocess files in the home and wipes them when a
    server starts, so two servers on one home would mix (and lose) each other's metrics.
    """
    port = free_port()
    own_home = log.with_suffix(".home")
    own_home.mkdir()
    for store in ("models", "bentos"):
        (home / store).mkdir(exist_ok=True)
        (own_home / store).symlink_to(home / store)
    env = {**os.environ, "BENTOML_HOME": str(own_home), "BENTOML_DO_NOT_TRACK": "True",
           **(env or {})}
    if bundle is not None:
        env["SCORING_BUNDLE"] = bundle
    args = [BENTOML, "serve", *([target] if target else []), "--host", "127.0.0.1",
            "--port", str(port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", proc, log)
    if wait:
        try:
            wait_ready(server)
        except BaseException:
            stop_server(server)
            raise
    return server


def wait_ready(server: Server, timeout: float = START_TIMEOUT) -> None:
    try:
        wait_http(server.url + "/readyz", server.proc, server.log, "bentoml serve", timeout)
    except RuntimeError as exc:
        raise AssertionError(str(exc)) from None


def stop_server(server: Server) -> None:
    """Stop a `bentoml serve` (BentoML stops its workers on SIGTERM)."""
    stop_process(server.proc)


class Servers:
    """Start and stop `bentoml serve` processes, or any other, from a test (the ``servers``
    fixture)."""

    start = staticmethod(start_server)
    wait_ready = staticmethod(wait_ready)
    stop = staticmethod(stop_server)
    stop_process = staticmethod(stop_process)
    free_port = staticmethod(free_port)
    start_prometheus = staticmethod(start_prometheus)


@pytest.fixture(scope="session")
def servers() -> type[Servers]:
    return Servers


# bundles served by one `bentoml serve` each for the whole session
SERVED = ("svc", "tabular", "credit", "svc_permutation", "svc_amortized")


@pytest.fixture(scope="session")
def served(bundles, bento_home, tmp_path_factory) -> dict[str, Server]:
    """``bentoml serve`` of each bundle in ``SERVED``, started side by side (a start is
    mostly imports: two at a time use both cores) and stopped at the end."""
    logs = tmp_path_factory.mktemp("logs")
    started: dict[str, Server] = {}
    try:
        for name in SERVED:
            started[name] = start_server(None, bento_home, logs / f"{name}.log",
                                         bundle=bundles[name].tag, wait=False)
        for server in started.values():
            wait_ready(server)
        yield started
    finally:
        for server in started.values():
            stop_server(server)


@pytest.fixture(scope="session")
def svc_server(served) -> Server:
    return served["svc"]


@pytest.fixture(scope="session")
def tabular_server(served) -> Server:
    return served["tabular"]


@pytest.fixture(scope="session")
def credit_server(served) -> Server:
    return served["credit"]
