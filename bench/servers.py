"""The servers the load benchmarks start, each on a free port of 127.0.0.1 with its own
log: ours (`bentoml serve` of a bundle), and the peers `make load` measures it against,
serving the same model: a bare BentoML service (bench/bare_service.py) and MLServer's
scikit-learn runtime, in its own virtualenv (``make mlserver-venv``), over the Open
Inference Protocol."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.processes import free_port, stop_process, wait_http

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BUNDLE = "breast_cancer_svc:latest"
MLSERVER_VENV = ROOT / ".venv-mlserver"
START_SECONDS = 180


def _wait_for(url: str, proc: subprocess.Popen, log: Path, what: str, timeout: float) -> None:
    try:
        wait_http(url, proc, log, what, timeout)
    except RuntimeError as exc:
        sys.exit(f"error: {exc}")


def _ensure_bundle(tag: str) -> None:
    """Build the seed's demo bundle when the default one is missing from the store."""
    check = subprocess.run([sys.executable, "-c", f"import bentoml; bentoml.models.get({tag!r})"],
                           cwd=ROOT, capture_output=True)
    if check.returncode == 0:
        return
    if tag != DEFAULT_BUNDLE:
        sys.exit(f"error: no bundle {tag!r} in the BentoML model store")
    print(f"[load] {tag} not in the model store; building it with `scoring demo`",
          file=sys.stderr)
    subprocess.run([str(Path(sys.executable).with_name("scoring")), "demo"], cwd=ROOT,
                   check=True, stdout=subprocess.DEVNULL)


def own_home(work: Path, name: str) -> dict[str, str]:
    """A BentoML home sharing the model store, for one of two servers side by side:
    BentoML empties its home's Prometheus directory when a server starts, and servers on
    one home mix their metrics."""
    home = work / name
    home.mkdir()
    store = Path(os.environ.get("BENTOML_HOME", Path.home() / "bentoml")) / "models"
    (home / "models").symlink_to(store)
    return {"BENTOML_HOME": str(home)}


def start_service(bundle: str, workers: int | None, work: Path, name: str = "bentoml",
                  env: dict | None = None) -> tuple[str, subprocess.Popen]:
    """``bentoml serve`` of ``bundle`` with ``workers`` (``None``: the service's default,
    one per CPU; ``env``: more environment variables; ``name``: of its log file in
    ``work``)."""
    _ensure_bundle(bundle)
    port = free_port()
    log = work / f"{name}.log"
    env = {**os.environ, "SCORING_BUNDLE": bundle, "BENTOML_DO_NOT_TRACK": "True",
           **({} if workers is None else {"SCORING_WORKERS": str(workers)}), **(env or {})}
    bentoml = str(Path(sys.executable).with_name("bentoml"))
    with open(log, "wb") as out:
        proc = subprocess.Popen([bentoml, "serve", "--host", "127.0.0.1", "--port", str(port)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url + "/readyz", proc, log, "bentoml serve", 180)
    except BaseException:
        stop_process(proc)
        raise
    return url, proc


def _start(args: list[str], env: dict, log: Path, ready: str) -> subprocess.Popen:
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        wait_http(ready, proc, log, Path(args[0]).name, START_SECONDS)
    except BaseException:
        stop_process(proc)
        raise
    return proc


def start_bare_bentoml(model_file: Path, home: dict, work: Path) -> tuple[str, subprocess.Popen]:
    """``bentoml serve bench.bare_service:BareModel`` of the joblib ``model_file`` (``home``:
    its own BENTOML_HOME, as every server here has)."""
    port = free_port()
    bentoml = str(Path(sys.executable).with_name("bentoml"))
    env = {**os.environ, **home, "BENCH_MODEL_FILE": str(model_file),
           "BENTOML_DO_NOT_TRACK": "True"}
    url = f"http://127.0.0.1:{port}"
    proc = _start([bentoml, "serve", "bench.bare_service:BareModel", "--host", "127.0.0.1",
                   "--port", str(port)], env, work / "bare.log", url + "/readyz")
    return url, proc


def mlserver_ready() -> bool:
    """Whether ``make mlserver-venv`` has installed MLServer."""
    return (MLSERVER_VENV / "bin" / "mlserver").exists()


def start_mlserver(model_file: Path, name: str, work: Path) -> tuple[str, subprocess.Popen]:
    """``mlserver start`` of a folder serving the joblib ``model_file`` as model ``name``
    with ``mlserver_sklearn.SKLearnModel``, MLServer's settings otherwise its defaults
    (ports aside). Its V2 inference URL is ``{url}/v2/models/{name}/infer``."""
    folder = work / "mlserver"
    (folder / name).mkdir(parents=True)
    (folder / name / "model-settings.json").write_text(json.dumps({
        "name": name, "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": str(model_file)}}))
    http, grpc, metrics = free_port(), free_port(), free_port()
    (folder / "settings.json").write_text(json.dumps({
        "host": "127.0.0.1", "http_port": http, "grpc_port": grpc, "metrics_port": metrics}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENTOML_")}
    url = f"http://127.0.0.1:{http}"
    proc = _start([str(MLSERVER_VENV / "bin" / "mlserver"), "start", str(folder)], env,
                  work / "mlserver.log", f"{url}/v2/models/{name}/ready")
    return url, proc
