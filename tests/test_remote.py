"""Remote explanations: ExplanationClient over MLflow (embedded SQLite and a real
`mlflow server`), and batch explanations on a Dask LocalCluster; what each trusts of what it
reads back (forged markers, damaged artifacts, part-files of another input)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
import warnings
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from scoring import (
    Explanation,
    ExplanationBundle,
    ExplanationClient,
    LinearScoringExplainer,
    explain_dataframe,
)
from scoring.datasets import make_credit, preprocessor
from scoring.remote import ExplanationNotFound, explain_to_parquet
from scoring.remote.resume import partition_identity
from tests.support.batch_examples import example_explainers, people
from tests.support.processes import free_port, stop_process, wait_http

# no usage reports from MLflow (nor from the `mlflow server` and uploaders started here)
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
ROOT = Path(__file__).resolve().parents[1]
MLFLOW = str(Path(sys.executable).with_name("mlflow"))

# saves bundles into $BENTOML_HOME (a subprocess: the test process's BentoML configuration
# stays as it is); prints "tag path" per bundle
_SAVE = """
import sys, joblib, bentoml
from scoring import ExplanationBundle
for name, (model, explainer) in joblib.load(sys.argv[1]).items():
    tag = ExplanationBundle(model, explainer).save(name)
    print(tag, bentoml.models.get(tag).path)
"""

# 8 uploader processes forked after one import (8 cold imports of scoring + mlflow take
# ~50 s on 2 cores), released together by a barrier; prints {"worker-upload": id}
_UPLOADERS = """
import json, sys, multiprocessing as mp
import numpy as np
import mlflow  # noqa: imported before the fork, so each child starts at once
from scoring import Explanation, ExplanationClient

def make(k, i):
    values = np.full((2, 3, 4), float(k * 100 + i))
    return Explanation(["a", "b", "c", "d"], local_importance_values=values,
                       expected_values=[0.5, 0.5], classes=["no", "yes"], method="kernel")

def work(uri, run_id, k, n, barrier, queue):
    client = ExplanationClient(tracking_uri=uri, run_id=run_id)
    barrier.wait()
    for i in range(n):
        queue.put((f"{k}-{i}", client.upload_model_explanation(make(k, i), comment=f"{k}-{i}")))

if __name__ == "__main__":
    uri, run_id, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ctx = mp.get_context("fork")
    barrier, queue = ctx.Barrier(8), ctx.Queue()
    procs = [ctx.Process(target=work, args=(uri, run_id, k, n, barrier, queue))
             for k in range(8)]
    for p in procs:
        p.start()
    ids = dict(queue.get(timeout=120) for _ in range(8 * n))
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    print(json.dumps(ids))
"""

# an upload that stops right before its commit marker (the artifact and the per-field
# tags are written), signals it, and waits to be killed
_KILLED_UPLOAD = """
import sys, time
import numpy as np
from mlflow import MlflowClient
from scoring import Explanation, ExplanationClient

uri, run_id, flag = sys.argv[1:4]
set_tag = MlflowClient.set_tag

def hang(self, run, key, value, *args, **kwargs):
    if key.startswith("scoring.explanation.") and key.count(".") == 2:
        open(flag, "w").write(key)
        time.sleep(600)
    return set_tag(self, run, key, value, *args, **kwargs)

MlflowClient.set_tag = hang
e = Explanation(["a", "b"], local_importance_values=np.ones((3, 2)), expected_values=1.0)
ExplanationClient(tracking_uri=uri, run_id=run_id).upload_model_explanation(e, comment="killed")
"""


# -- data and bundles ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Bundles in a temporary BentoML home: ``people`` (logistic regression behind a
    ColumnTransformer with imputers and a one-hot string column; linear explainer, raw
    importances), ``svc`` (breast-cancer SVC, Kernel explainer), and ``credit`` and
    ``credit_copy``: one Pipeline (``scoring.datasets.preprocessor`` + logistic regression) on
    ``make_credit`` rows (string categoricals and numbers with missing values), linear
    explainer, saved twice (two tags, one model)."""
    root = tmp_path_factory.mktemp("remote")
    frame, objects = example_explainers(400)
    X, y = make_credit(600, random_state=0)
    credit = Pipeline([("prep", preprocessor()),
                       ("model", LogisticRegression(max_iter=1000))]).fit(X, y)
    objects["credit"] = objects["credit_copy"] = (credit, LinearScoringExplainer().fit(credit, X))
    joblib.dump(objects, root / "objects.joblib")
    home = root / "home"
    out = subprocess.run([sys.executable, "-c", _SAVE, str(root / "objects.joblib")],
                         cwd=ROOT, env={**os.environ, "BENTOML_HOME": str(home)},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    bundles = {}
    for line in out.stdout.split("\n")[:len(objects)]:
        tag, path = line.split()
        bundles[tag.split(":")[0]] = ExplanationBundle.read(Path(path), tag=tag)
    return {"root": root, "home": home, "frame": frame, **bundles}


def _explanation(bundle: ExplanationBundle, rows: pd.DataFrame) -> Explanation:
    return bundle.score(rows, get_raw=True).explanation


@pytest.fixture(scope="module")
def explained():
    """``explained(start, stop)``: the explanation of the people rows ``start:stop`` by the
    ``people`` bundle, held in memory (MLflow needs no model store)."""
    frame, objects = example_explainers(400)
    bundle = ExplanationBundle(*objects["people"])
    return lambda start, stop: _explanation(bundle, frame.iloc[start:stop])


# -- MLflow ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` on 127.0.0.1 (SQLite backend, local artifact root served over
    HTTP); started when a test first asks for it, waited for when one uses it."""
    root = tmp_path_factory.mktemp("mlflow_server")
    port = free_port()
    log = open(root / "server.log", "wb")
    proc = subprocess.Popen(
        [MLFLOW, "server", "--backend-store-uri", f"sqlite:///{root}/mlflow.db",
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    state = {"ready": False}

    def wait() -> str:
        if not state["ready"]:
            wait_http(url + "/health", proc, root / "server.log", "mlflow server", 180)
            state["ready"] = True
        return url

    yield wait
    stop_process(proc, group=True)  # its uvicorn workers and job runner share its group
    log.close()


def _new_run(uri: str, artifacts: Path | None = None) -> str:
    """A run in a new experiment; ``artifacts`` for SQLite stores, whose default artifact
    root is ./mlruns in the working directory."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment(
        f"test-{time.time_ns()}", artifact_location=None if artifacts is None
        else artifacts.as_uri())
    return client.create_run(experiment).info.run_id


def _round_trip(client: ExplanationClient, explanation: Explanation) -> None:
    """The seed's calls: upload (all features, top-k), download latest / by id / top-k."""
    with pytest.raises(ExplanationNotFound, match="has no uploaded explanation"):
        client.download_model_explanation()
    assert client.list_model_explanations() == []

    full_id = client.upload_model_explanation(explanation, comment="global explanation: all "
                                              "features", true_ys=[0, 1, 1])
    top_id = client.upload_model_explanation(explanation, top_k=2,
                                             comment="global explanation: Only top 2 features")
    with pytest.raises(ValueError, match="top_k"):
        client.upload_model_explanation(explanation, top_k=0)

    listed = client.list_model_explanations()
    assert [m["id"] for m in listed] == [full_id, top_id]  # oldest first
    assert listed[1]["top_k"] == 2 and listed[1]["n_features"] == 2
    assert listed[0]["method"] == explanation.method and listed[0]["rows"] == 3
    assert listed[0]["classes"] == explanation.classes and listed[0]["raw"] is True
    assert [m["id"] for m in client.list_model_explanations(
        comment="global explanation: all features")] == [full_id]

    assert client.download_model_explanation(full_id) == explanation  # lossless
    latest = client.download_model_explanation()
    assert latest.features == explanation.get_ranked_global_names()[:2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the upload holds more than 2: nothing to say
        top4 = client.download_model_explanation(full_id, top_k=2)
    assert top4.get_ranked_global_names() == explanation.get_ranked_global_names()[:2]
    np.testing.assert_array_equal(top4.get_ranked_global_values(),
                                  explanation.get_ranked_global_values()[:2])
    # the upload kept 2 features: asked for 4, the 2 come back, said aloud
    with pytest.warns(UserWarning, match=f"explanation {top_id} holds 2 features \\(uploaded "
                      "with top_k=2\\); returning all 2, not top_k=4"):
        kept = client.download_model_explanation(top_id, top_k=4)
    assert kept.features == explanation.get_ranked_global_names()[:2]
    assert client.download_true_ys(full_id) == [0, 1, 1]
    assert client.download_true_ys(top_id) is None
    with pytest.raises(ExplanationNotFound, match="no explanation 'nope'.*" + full_id):
        client.download_model_explanation("nope")
    with pytest.raises(ExplanationNotFound, match="no run '0+'"):
        ExplanationClient(tracking_uri=client.tracking_uri,
                          run_id="0" * 32).download_model_explanation()


def test_round_trip_embedded_default_store(explained, tmp_path, monkeypatch):
    """The default tracking URI: sqlite:///mlflow.db in the working directory."""
    import mlflow

    explanation = explained(0, 3)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with mlflow.start_run() as run:
        client = ExplanationClient.from_run(run)
        _round_trip(client, explanation)
    assert client.tracking_uri.startswith("sqlite:") and (tmp_path / "mlflow.db").exists()
    # a new client, as on another machine: from the run id alone
    again = ExplanationClient.from_run(run.info.run_id)
    assert again.download_model_explanation(top_k=1).features == \
        explanation.get_ranked_global_names()[:1]


@pytest.mark.integration
def test_round_trip_mlflow_server(explained, mlflow_server):
    url = mlflow_server()
    explanation = explained(10, 13)
    client = ExplanationClient(tracking_uri=url, run_id=_new_run(url))
    _round_trip(client, explanation)


def test_missing_mlflow_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(ImportError, match=r"pip install 'scoring\[mlflow\]'"):
        ExplanationClient(run_id="x")


@pytest.mark.integration
@pytest.mark.parametrize("store", ["sqlite", "server"])
def test_eight_concurrent_uploaders_lose_nothing(store, tmp_path, mlflow_server):
    uri = mlflow_server() if store == "server" else f"sqlite:///{tmp_path}/mlflow.db"
    run_id = _new_run(uri, None if store == "server" else tmp_path / "artifacts")
    out = subprocess.run([sys.executable, "-c", _UPLOADERS, uri, run_id, "3"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    ids = json.loads(out.stdout)
    assert len(ids) == 24
    client = ExplanationClient(tracking_uri=uri, run_id=run_id)
    listed = {m["id"]: m["comment"] for m in client.list_model_explanations()}
    assert listed == {v: k for k, v in ids.items()}
    for name in ("0-0", "7-2", "3-1"):  # each download is the writer's own
        k, i = map(int, name.split("-"))
        values = client.download_model_explanation(ids[name]).local_importance_values
        assert (values == k * 100 + i).all()


@pytest.mark.integration
def test_killed_upload_leaves_nothing_downloadable(explained, tmp_path, mlflow_server):
    uri = mlflow_server()
    run_id = _new_run(uri)
    client = ExplanationClient(tracking_uri=uri, run_id=run_id)
    kept = explained(0, 5)
    kept_id = client.upload_model_explanation(kept, comment="kept")
    flag = tmp_path / "about-to-commit"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_UPLOAD, uri, run_id, str(flag)],
                            cwd=tmp_path, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not flag.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
    # the killed upload got its data in, but not its marker: nobody sees it
    from mlflow import MlflowClient

    folders = MlflowClient(tracking_uri=uri).list_artifacts(run_id, "explanations")
    assert len(folders) == 2
    assert [m["id"] for m in client.list_model_explanations()] == [kept_id]
    assert client.download_model_explanation() == kept
    orphan = flag.read_text().rsplit(".", 1)[-1]
    with pytest.raises(ExplanationNotFound):
        client.download_model_explanation(orphan)


def _forge_marker(uri: str, run_id: str, explanation_id: str, **metadata) -> None:
    """What anyone who may write to the run can do: set a commit marker by hand."""
    from mlflow import MlflowClient

    MlflowClient(tracking_uri=uri).set_tag(run_id, f"scoring.explanation.{explanation_id}",
                                           json.dumps({"id": explanation_id, **metadata}))


def test_forged_artifact_paths_are_never_followed(explained, tmp_path):
    """A marker's artifact_path naming another run's artifact, a file outside the artifact
    store (relative or absolute): the download reads the upload's own artifact, or none.
    SQLite with local artifacts: the store where `../` walks out of the run."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    run_id, other_run = _new_run(uri, tmp_path / "artifacts"), _new_run(uri, tmp_path / "artifacts")
    client = ExplanationClient(tracking_uri=uri, run_id=run_id)
    mine = explained(0, 3)
    mine_id = client.upload_model_explanation(mine, comment="mine")
    secret = explained(20, 24)
    secret_id = ExplanationClient(tracking_uri=uri, run_id=other_run).upload_model_explanation(
        secret)
    planted = explained(40, 45)
    (tmp_path / "outside.json").write_text(planted.to_json())
    # the run's artifacts are tmp_path/artifacts/<run id>/artifacts
    forged = {"another run": f"../../{other_run}/artifacts/explanations/{secret_id}/"
                             "explanation.json",
              "outside, relative": "../../../outside.json",
              "outside, absolute": str(tmp_path / "outside.json")}
    marker = client.list_model_explanations()[0]
    for what, path in forged.items():
        # the real upload's marker rewritten: its own artifact is read, not the forged one
        _forge_marker(uri, run_id, mine_id, **{**marker, "artifact_path": path})
        assert client.download_model_explanation(mine_id) == mine, what
        # a marker of its own whose only artifact is elsewhere: nothing is read
        forged_id = uuid.uuid4().hex
        _forge_marker(uri, run_id, forged_id, artifact_path=path, uploaded_at=time.time())
        with pytest.raises(ExplanationNotFound,
                           match=f"no artifact explanations/{forged_id}/explanation.json"):
            client.download_model_explanation(forged_id)
        listed = {m["id"]: m for m in client.list_model_explanations()}
        assert listed[forged_id]["artifact_path"] == \
            f"explanations/{forged_id}/explanation.json", what


def test_malformed_markers_are_skipped_with_a_warning(explained, tmp_path):
    """One bad marker no longer breaks list and download for the whole run; an id that is
    not an upload's (here the latest, pointing outside the store) is never read."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    run_id = _new_run(uri, tmp_path / "artifacts")
    client = ExplanationClient(tracking_uri=uri, run_id=run_id)
    kept = explained(0, 4)
    kept_id = client.upload_model_explanation(kept, comment="kept")
    (tmp_path / "outside.json").write_text(
        explained(50, 52).to_json())
    store = MlflowClient(tracking_uri=uri)
    bad = {uuid.uuid4().hex: "not json", uuid.uuid4().hex: "[1, 2]",
           uuid.uuid4().hex: json.dumps({"id": uuid.uuid4().hex, "uploaded_at": 1.0}),
           uuid.uuid4().hex: json.dumps({"uploaded_at": 2.0}),
           "NOTANID": json.dumps({"id": "NOTANID", "uploaded_at": 4e9,
                                  "artifact_path": "../../../outside.json"})}
    late = uuid.uuid4().hex
    bad[late] = json.dumps({"id": late, "uploaded_at": "yesterday"})
    for explanation_id, value in bad.items():
        store.set_tag(run_id, f"scoring.explanation.{explanation_id}", value)
    with pytest.warns(UserWarning) as caught:
        listed = client.list_model_explanations()
    assert [m["id"] for m in listed] == [kept_id]
    messages = "\n".join(str(w.message) for w in caught)
    for explanation_id in bad:
        assert f"'scoring.explanation.{explanation_id}'" in messages
    assert f"run {run_id}" in messages
    with pytest.warns(UserWarning):
        assert client.download_model_explanation() == kept
    with pytest.warns(UserWarning), pytest.raises(ExplanationNotFound,
                                                  match="no explanation 'NOTANID'"):
        client.download_model_explanation("NOTANID")


def test_damaged_stored_explanation_names_run_and_artifact(explained, tmp_path):
    """A stored explanation that ``Explanation.from_json`` refuses: its download fails with
    the run and the artifact named; the run's other uploads stay readable."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    run_id = _new_run(uri, tmp_path / "artifacts")
    client = ExplanationClient(tracking_uri=uri, run_id=run_id)
    good = explained(0, 3)
    good_id = client.upload_model_explanation(good, comment="good", true_ys=[0, 1, 1])
    damaged_id = client.upload_model_explanation(good, comment="damaged", true_ys=[0, 1, 1])
    payload = good.to_dict()
    payload["features"] = payload["features"][:2]  # 3 values per row, 2 names
    store = MlflowClient(tracking_uri=uri)
    store.log_text(run_id, json.dumps(payload), f"explanations/{damaged_id}/explanation.json")
    store.log_text(run_id, '{"a": 1}', f"explanations/{damaged_id}/true_ys.json")

    expected = f"run {run_id}: artifact explanations/{damaged_id}/explanation.json is not a " \
               "valid explanation"
    with pytest.raises(ValueError, match=expected):
        client.download_model_explanation(damaged_id)
    with pytest.raises(ValueError, match=expected):  # the latest: no older one instead
        client.download_model_explanation()
    with pytest.raises(ValueError, match=f"artifact explanations/{damaged_id}/true_ys.json "
                                         "holds a dict"):
        client.download_true_ys(damaged_id)
    assert [m["id"] for m in client.list_model_explanations()] == [good_id, damaged_id]
    assert client.download_model_explanation(good_id) == good
    assert client.download_true_ys(good_id) == [0, 1, 1]


# -- Dask -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster(saved):
    """Two single-threaded worker processes; they find bundles in the test BentoML home."""
    from distributed import Client, LocalCluster

    local = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                         dashboard_address=None, env={"BENTOML_HOME": str(saved["home"])})
    client = Client(local)
    yield client
    client.close()
    local.close()


@pytest.fixture(scope="module")
def big_table(saved):
    """100,000 rows: training rows repeated with jittered numbers, in two Parquet files."""
    frame = saved["frame"]
    rng = np.random.default_rng(1)
    rows = frame.iloc[rng.integers(0, len(frame), 100_000)].reset_index(drop=True)
    rows["age"] = rows["age"] + rng.normal(0, 1, len(rows))
    rows["income"] = rows["income"] + rng.normal(0, 1, len(rows))
    folder = saved["root"] / "big"
    folder.mkdir()
    rows.iloc[:50_000].to_parquet(folder / "a.parquet", index=False)
    rows.iloc[50_000:].to_parquet(folder / "b.parquet", index=False)
    # as the single-process path reads it
    table = pd.concat([pd.read_parquet(folder / "a.parquet"),
                       pd.read_parquet(folder / "b.parquet")], ignore_index=True)
    return folder, table


@pytest.mark.integration
def test_dask_batch_matches_single_process_and_resumes(saved, cluster, big_table, tmp_path):
    import dask.dataframe as dd

    from scoring.remote import batch

    folder, table = big_table
    bundle = saved["people"]
    assert table["city"].isna().sum() > 10_000 and table["income"].isna().any()
    data = dd.read_parquet(str(folder / "*.parquet"))
    out = tmp_path / "out"
    result = explain_to_parquet(bundle, data, out, partition_rows=20_000, client=cluster,
                                progress=False)
    assert (result.rows, result.partitions, result.written) == (100_000, 6, 6)
    # each worker loaded the bundle from its model store once, not once per partition
    assert sorted(cluster.run(lambda: batch._LOADS).values()) == [1, 1]

    written = pd.read_parquet(out)  # the part-files; _manifest and _global are skipped
    assert len(written) == 200_000
    assert list(written.columns) == ["row", "class", "prediction", "probability", "age",
                                     "income", "city", "expected_value"]
    written = written.sort_values(["row", "class"], kind="stable").reset_index(drop=True)
    features = ["age", "income", "city"]

    # single-process path over the whole table, row by row identical
    whole = _explanation(bundle, table)
    single = np.transpose(whole.local_importance_values, (1, 0, 2)).reshape(-1, 3)
    assert np.array_equal(written[features].to_numpy(), single)
    scored = bundle.score(table, explain=False)
    predictions, probabilities = scored.predictions, scored.probabilities
    assert np.array_equal(written["prediction"].to_numpy()[::2], predictions)
    assert np.array_equal(written["probability"].to_numpy(), probabilities.reshape(-1))
    # and each row explained alone, at partition edges and inside
    for i in [0, 1, 19_999, 20_000, 49_999, 50_000, 77_777, 99_999]:
        alone = _explanation(bundle, table.iloc[[i]]).local_importance_values[:, 0, :]
        assert np.array_equal(written.loc[written["row"] == i, features].to_numpy(), alone)

    glob = Explanation.from_json((out / "_global_explanation.json").read_text())
    assert glob == result.global_explanation
    np.testing.assert_allclose(glob.global_importance_values, whole.global_importance_values,
                               rtol=1e-10)
    assert glob.extra["rows"] == 100_000 and set(glob.extra["per_class_global_importance"]) \
        == {"0", "1"}

    # resume: two part-files lost and a temp file of a killed writer; only those two redone
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    (out / "part-00001.parquet").unlink()
    (out / "part-00004.parquet").unlink()
    (out / ".part-00004.parquet.tmp-dead").write_bytes(b"half")
    again = explain_to_parquet(bundle, data, out, partition_rows=20_000, client=cluster,
                               progress=False)
    assert (again.written, again.skipped) == (2, 4)
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    assert sorted(n for n in after if after[n] != before.get(n)) == \
        ["part-00001.parquet", "part-00004.parquet"]
    assert not list(out.glob(".part-*"))
    pd.testing.assert_frame_equal(
        pd.read_parquet(out).sort_values(["row", "class"], kind="stable")
        .reset_index(drop=True), written)
    assert again.global_explanation == result.global_explanation
    with pytest.raises(ValueError, match="other settings.*partition_rows"):
        explain_to_parquet(bundle, data, out, partition_rows=30_000, client=cluster,
                           progress=False)


@pytest.mark.integration
def test_explain_dataframe_kernel_explainer_any_partition(saved, cluster):
    """A sampling explainer too: a row's values do not depend on its partition."""
    import dask.dataframe as dd

    bundle = saved["svc"]
    data = load_breast_cancer()
    frame = pd.DataFrame(data.data, columns=data.feature_names)
    lazy = explain_dataframe(bundle, dd.from_pandas(frame, npartitions=3), partition_rows=70)
    assert lazy.npartitions == 9  # 190 + 190 + 189 rows, cut at 70
    result = lazy.compute().sort_values("row", kind="stable")  # classes stay in model order
    assert len(result) == 2 * len(frame)
    whole = bundle.score(frame).explanation
    single = np.transpose(whole.local_importance_values, (1, 0, 2)).reshape(-1, 30)
    np.testing.assert_array_equal(result[list(data.feature_names)].to_numpy(), single)
    for i in (0, 69, 70, 300, 568):
        alone = bundle.score(frame.iloc[[i]]).explanation.local_importance_values
        np.testing.assert_array_equal(
            result.loc[result["row"] == i, list(data.feature_names)].to_numpy(), alone[:, 0])


def _cli(*args: str, home: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scoring.cli", *args], cwd=cwd,
                          env={**os.environ, "BENTOML_HOME": str(home)},
                          capture_output=True, text=True, timeout=300)


@pytest.mark.integration
def test_cli_batch_on_csv_glob_uploads_global_explanation(saved, cluster, tmp_path):
    frame, y = people(3_000, seed=3)
    frame["label"] = y
    for i in range(3):
        frame.iloc[i * 1000:(i + 1) * 1000].to_csv(tmp_path / f"rows-{i}.csv", index=False)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    run_id = _new_run(uri, tmp_path / "artifacts")
    args = ["explain", "--bundle", "people:latest", "--data", str(tmp_path / "rows-*.csv"),
            "--drop", "label", "--output", str(tmp_path / "out"), "--workers", "2",
            "--partition-rows", "400", "--upload-run", run_id, "--comment", "whole table",
            "--tracking-uri", uri]
    out = _cli(*args, home=saved["home"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "9 partitions written, 0 already there" in out.stderr  # 3 x (400, 400, 200)
    assert "explaining" in out.stderr  # the progress bar
    written = pd.read_parquet(tmp_path / "out")
    assert len(written) == 6_000 and written["row"].max() == 2_999
    # the single-process command on one of the files gives the same values
    single = _cli("explain", "--bundle", "people:latest", "--data", str(tmp_path / "rows-1.csv"),
                  "--drop", "label", "--get-raw", "--output", str(tmp_path / "one.csv"),
                  home=saved["home"], cwd=tmp_path)
    assert single.returncode == 0, single.stderr
    one = pd.read_csv(tmp_path / "one.csv")
    batch = written[written["row"].between(1000, 1999)].sort_values(["row", "class"],
                                                                      kind="stable")
    np.testing.assert_allclose(batch[["age", "income", "city"]].to_numpy(),
                               one[["age", "income", "city"]].to_numpy(), rtol=1e-15)

    client = ExplanationClient(tracking_uri=uri, run_id=run_id)
    [uploaded] = client.list_model_explanations(comment="whole table")
    assert uploaded["id"] == out.stdout.strip()
    assert client.download_model_explanation() == Explanation.from_json(
        (tmp_path / "out" / "_global_explanation.json").read_text())

    # again, on an existing cluster: everything is already written
    again = _cli(*args[:9], "--scheduler", cluster.scheduler.address, "--partition-rows",
                 "400", home=saved["home"], cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "(2 workers)" in again.stderr
    assert "0 partitions written, 9 already there" in again.stderr

    wrong = _cli("explain", "--bundle", "people:latest", "--data", str(tmp_path / "rows-1.csv"),
                 "--output", str(tmp_path / "x.csv"), "--scheduler", "tcp://127.0.0.1:1",
                 home=saved["home"], cwd=tmp_path)
    assert wrong.returncode != 0 and "--scheduler needs --output DIR" in wrong.stderr


def _parts(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}


@pytest.mark.integration
def test_cli_batch_explains_engineered_columns_when_asked(saved, cluster, tmp_path):
    """--no-get-raw on the Dask path gives what it gives on one process: one column per
    engineered column (it was read as "raw columns" before)."""
    frame, _ = people(300, seed=5)
    frame.to_csv(tmp_path / "rows.csv", index=False)
    common = ("explain", "--bundle", "people:latest", "--data", str(tmp_path / "rows.csv"),
              "--no-get-raw")
    batch = _cli(*common, "--output", str(tmp_path / "out"), "--scheduler",
                 cluster.scheduler.address, home=saved["home"], cwd=tmp_path)
    assert batch.returncode == 0, batch.stderr[-3000:]
    single = _cli(*common, "--output", str(tmp_path / "one.csv"), home=saved["home"],
                  cwd=tmp_path)
    assert single.returncode == 0, single.stderr[-3000:]
    written = pd.read_parquet(tmp_path / "out").sort_values(["row", "class"], kind="stable")
    one = pd.read_csv(tmp_path / "one.csv")
    engineered = saved["people"].engineered_feature_names
    assert len(engineered) > 3 and set(engineered) <= set(written.columns)
    assert "city" not in written.columns
    np.testing.assert_allclose(written[engineered].to_numpy(), one[engineered].to_numpy(),
                               rtol=1e-12)


@pytest.mark.integration
def test_cli_batch_resumes_only_the_same_input_and_bundle(saved, cluster, tmp_path):
    """The same command run again on a file regenerated with as many rows is recomputed,
    not resumed from the old rows' part-files; the same input is resumed; another bundle
    (same model, another tag) is refused. Credit rows: string categoricals and numbers with
    missing values, through a Pipeline with a ColumnTransformer."""
    old_rows, _ = make_credit(1200, random_state=11)
    new_rows, _ = make_credit(1200, random_state=12)
    assert new_rows["employment"].isna().any() and new_rows["income"].isna().any()
    data, out = tmp_path / "rows.csv", tmp_path / "out"
    command = ["explain", "--bundle", saved["credit"].tag, "--data", str(data), "--output",
               str(out), "--partition-rows", "500", "--scheduler", cluster.scheduler.address]
    old_rows.to_csv(data, index=False)
    first = _cli(*command, home=saved["home"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "3 partitions written, 0 already there" in first.stderr

    new_rows.to_csv(data, index=False)  # the same file, regenerated: other rows, same count
    second = _cli(*command, home=saved["home"], cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "3 partitions written, 0 already there" in second.stderr
    assert "holds explanations of other input rows" in second.stderr
    assert "deleted 3 part-files, recomputing every partition" in second.stderr
    features = list(new_rows.columns)
    written = pd.read_parquet(out).sort_values(["row", "class"], kind="stable")
    single = saved["credit"].score(pd.read_csv(data)).explanation.local_importance_values
    assert np.array_equal(written[features].to_numpy(),
                          np.transpose(single, (1, 0, 2)).reshape(-1, len(features)))
    manifest = json.loads((out / "_manifest.json").read_text())
    glob = Explanation.from_json((out / "_global_explanation.json").read_text())
    assert glob.extra["input_sha256"] == manifest["input"]["sha256"]
    assert manifest["bundle"]["tag"] == saved["credit"].tag
    np.testing.assert_allclose(glob.global_importance_values,
                               np.abs(single).mean(axis=(0, 1)), rtol=1e-10)

    before = _parts(out)
    third = _cli(*command, home=saved["home"], cwd=tmp_path)
    assert third.returncode == 0, third.stderr[-3000:]
    assert "0 partitions written, 3 already there" in third.stderr
    assert "holds explanations" not in third.stderr and _parts(out) == before

    other = _cli(*[saved["credit_copy"].tag if a == saved["credit"].tag else a
                   for a in command], home=saved["home"], cwd=tmp_path)
    assert other.returncode != 0
    assert "holds explanations written with another bundle" in other.stderr
    assert f"{saved['credit'].tag!r} -> {saved['credit_copy'].tag!r}" in other.stderr
    assert _parts(out) == before


@pytest.mark.integration
def test_cli_batch_refuses_part_files_it_did_not_record(saved, cluster, tmp_path):
    """Part-files with no manifest (copied from another run's output) say nothing about
    which rows they explain: refused, neither reused nor deleted."""
    rows, _ = make_credit(600, random_state=13)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    other, _ = make_credit(600, random_state=14)
    other.to_csv(tmp_path / "other.csv", index=False)

    def run(data: str, out: Path) -> subprocess.CompletedProcess:
        return _cli("explain", "--bundle", saved["credit"].tag, "--data", data, "--output",
                    str(out), "--partition-rows", "300", "--scheduler",
                    cluster.scheduler.address, home=saved["home"], cwd=tmp_path)

    assert run(str(tmp_path / "other.csv"), tmp_path / "elsewhere").returncode == 0
    out = tmp_path / "out"
    out.mkdir()
    for part in (tmp_path / "elsewhere").glob("part-*.parquet"):
        shutil.copy(part, out / part.name)
    before = _parts(out)
    refused = run(str(tmp_path / "rows.csv"), out)
    assert refused.returncode != 0
    assert "holds part-files but no _manifest.json" in refused.stderr
    assert _parts(out) == before


@pytest.mark.integration
def test_cli_batch_checks_the_output_before_starting_a_cluster(saved, tmp_path):
    """An output directory written with other settings was refused only once the local
    cluster had started (~10 s): now before it, naming the difference."""
    rows, _ = make_credit(300, random_state=15)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    command = [sys.executable, "-m", "scoring.cli", "explain", "--bundle",
               saved["credit"].tag, "--data", str(tmp_path / "rows.csv"), "--output",
               str(tmp_path / "out"), "--workers", "1"]
    env = {**os.environ, "BENTOML_HOME": str(saved["home"])}
    # the first run: when its cluster is up (the line it prints then), and what it wrote
    start = time.monotonic()
    first = subprocess.Popen([*command, "--partition-rows", "500"], cwd=tmp_path, env=env,
                             stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines = []
    for line in first.stderr:
        lines.append(line)
        if line.startswith("[explain]"):
            cluster_up = time.monotonic() - start
    assert first.wait(300) == 0, "".join(lines)[-3000:]
    stderr = "".join(lines)
    assert "(1 worker)" in stderr and "wrote 300 explained rows" in stderr, stderr
    assert "(1 partition written, 0 already there)" in stderr, stderr

    start = time.monotonic()
    refused = subprocess.run([*command, "--partition-rows", "400"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=300)
    took = time.monotonic() - start
    assert refused.returncode != 0
    assert "holds explanations written with other settings (partition_rows 500 -> 400)" \
        in refused.stderr, refused.stderr[-3000:]
    assert "[explain]" not in refused.stderr, refused.stderr  # no cluster was started
    # refused sooner than the same command gets a cluster
    assert took < cluster_up, (took, cluster_up)


def test_partition_identity_tells_contents_apart():
    """What a resume compares: values and their types, missing values where they are, and
    a slice's own rows (not the table it was cut from)."""
    def digest_of(frame: pd.DataFrame) -> str:
        return partition_identity(frame)[1]

    def digest(column: list, dtype: str | None = "object") -> str:
        return digest_of(pd.DataFrame({"c": pd.Series(column, dtype=dtype)}))

    assert digest(["a", None, "b"]) == digest(["a", None, "b"])
    assert digest(["a", None]) != digest(["a", "None"])
    assert digest([1, "a"]) != digest(["1", "a"])
    assert digest([1.0, np.nan], None) != digest([np.nan, 1.0], None)
    assert digest(["x", "y"], "category") != digest(["x", "z"], "category")
    half, _ = make_credit(300, random_state=1)
    table = pd.concat([half, half, half.iloc[::-1]], ignore_index=True)
    first, second, reversed_ = (table.iloc[i:i + 300] for i in (0, 300, 600))
    assert partition_identity(first) == partition_identity(second) == (300, digest_of(half))
    assert partition_identity(reversed_) != partition_identity(first)
