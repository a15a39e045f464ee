"""The OCI image: `deploy/image/build.sh` builds it (no image registry: base image from
mmdebstrap, BentoML's containerize with buildah), podman runs it, and it answers as
`bentoml serve` of the same bundle does.

Needs podman, buildah, mmdebstrap and root (rootful podman); `.ci/run` installs them.
Elsewhere the module is skipped with the reason."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import free_port, stop_process, wait_http

ROOT = Path(__file__).resolve().parents[1]
IMAGE_DIR = ROOT / "deploy" / "image"
ENGINE_ENV = {**os.environ, "CONTAINERS_CONF": str(IMAGE_DIR / "containers.conf")}
BUILD_TIMEOUT = 1500
START_TIMEOUT = 180

_missing = [tool for tool in ("podman", "buildah", "mmdebstrap") if shutil.which(tool) is None]
if _missing:
    pytest.skip(f"no container engine: {', '.join(_missing)} not installed (Debian: apt-get "
                "install podman buildah mmdebstrap runc; .ci/run installs them)",
                allow_module_level=True)
if os.geteuid() != 0:
    pytest.skip("the image test runs rootful podman and mmdebstrap: run it as root (CI does)",
                allow_module_level=True)


pytestmark = pytest.mark.integration

def podman(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], env=ENGINE_ENV, capture_output=True, text=True,
                          timeout=timeout)


def _image_ids() -> set[str]:
    """Every image in podman's storage, intermediate ones included."""
    out = podman("images", "--all", "--quiet", "--no-trunc")
    assert out.returncode == 0, out.stderr
    return {image.removeprefix("sha256:") for image in out.stdout.split()}


@dataclass
class Build:
    name: str
    report: str  # build.sh's report.txt: step times, size, how to run it
    left: set[str]  # images in storage after the build that were not there before


@pytest.fixture(scope="module")
def build(bundles, bento_home, tmp_path_factory):
    """The image of the ``svc`` bundle, built by deploy/image/build.sh with its defaults (no
    layer cache); removed at the end (the base image stays, for the next build)."""
    name = f"localhost/scoring-test/explained_model:{uuid.uuid4().hex[:12]}"
    out_dir = tmp_path_factory.mktemp("image")
    log = out_dir / "build.log"
    env = {**ENGINE_ENV, "BENTOML_HOME": str(bento_home), "SCORING_BUNDLE": bundles["svc"].tag,
           "SCORING_IMAGE": name, "VENV_BIN": str(Path(sys.executable).parent),
           "SCORING_IMAGE_OUT": str(out_dir)}
    before = _image_ids()
    with open(log, "w") as err:
        out = subprocess.run([str(IMAGE_DIR / "build.sh")], env=env, stdout=subprocess.PIPE,
                             stderr=err, text=True, timeout=BUILD_TIMEOUT)
    try:
        assert out.returncode == 0, log.read_text(errors="replace")[-4000:]
        assert out.stdout.strip().splitlines()[-1] == name
        report = (out_dir / "report.txt").read_text()
        print(report)  # the times and the size, with -s
        yield Build(name, report, _image_ids() - before)
    finally:
        podman("rmi", "--force", name)


@pytest.fixture(scope="module")
def image(build) -> str:
    return build.name


def test_the_build_leaves_only_its_image_and_says_how_to_run_it(build):
    """buildah's layer cache left ~30 untagged images (13.9 GB in `podman system df`)
    after each build; BentoML's hint to run the image lacked the CONTAINERS_CONF it needs
    here (`error setting rlimit type 7`)."""
    def image_id(name: str) -> str:
        return podman("image", "inspect", "--format", "{{.Id}}", name).stdout.strip()

    # the base image stays for the next build (made by this one in a fresh storage)
    base = re.search(r"base (\S+)\)$", build.report, re.MULTILINE).group(1)
    assert build.left - {image_id(base)} == {image_id(build.name)}, build.left
    run = [line.split(":", 1)[1].strip() for line in build.report.splitlines()
           if line.startswith("run it:")]
    assert run == [f"CONTAINERS_CONF={IMAGE_DIR / 'containers.conf'} podman run --rm -p "
                   f"127.0.0.1:3000:3000 {build.name}"], build.report


class Container:
    """``podman run`` of the image in the foreground (its output in ``log``), published on
    a free port of 127.0.0.1."""

    def __init__(self, image: str, log: Path):
        self.name = f"scoring-test-{uuid.uuid4().hex[:12]}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                ["podman", "run", "--rm", "--name", self.name,
                 "-p", f"127.0.0.1:{self.port}:3000", image],
                env=ENGINE_ENV, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def exists(self) -> bool:
        return podman("container", "exists", self.name).returncode == 0

    def stop(self) -> None:
        """``podman stop`` (SIGTERM, then SIGKILL after 10 s); ``--rm`` removes it."""
        if self.exists():
            podman("stop", "--time", "10", self.name)
        stop_process(self.proc)
        podman("rm", "--force", "--ignore", self.name)


@pytest.fixture(scope="module")
def container(image, tmp_path_factory):
    box = Container(image, tmp_path_factory.mktemp("container") / "run.log")
    try:
        wait_http(box.url + "/readyz", box.proc, box.log, f"podman run {image}",
                  START_TIMEOUT)
        yield box
    finally:
        box.stop()


def _predict(url: str, rows: list) -> dict:
    r = requests.post(url + "/predict", json={"rows": rows, "top_k": 5}, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


def test_image_answers_as_bentoml_serve(container, svc_server, bundles):
    rows = bundles["svc"].X.iloc[:3].to_numpy().tolist()
    from_image = _predict(container.url, rows)
    assert from_image == _predict(svc_server.url, rows)
    assert from_image["predictions"] == bundles["svc"].model.predict(rows).tolist()


def _total(text: str, sample: str, **labels: str) -> float:
    """Sum of the ``sample`` values in a Prometheus exposition whose labels include
    ``labels``."""
    return sum(s.value for family in text_string_to_metric_families(text)
               for s in family.samples
               if s.name == sample and labels.items() <= s.labels.items())


def test_image_metrics(container, bundles):
    before = requests.get(container.url + "/metrics", timeout=30).text
    _predict(container.url, bundles["svc"].X.iloc[:2].to_numpy().tolist())
    after = requests.get(container.url + "/metrics", timeout=30).text
    ok = {"endpoint": "/predict", "http_response_code": "200"}
    assert (_total(after, "bentoml_service_request_total", **ok)
            == _total(before, "bentoml_service_request_total", **ok) + 1)
    assert (_total(after, "scoring_request_rows_sum", endpoint="predict")
            == _total(before, "scoring_request_rows_sum", endpoint="predict") + 2)
    assert _total(after, "scoring_explain_seconds_count", endpoint="predict") >= 1


def test_image_runs_as_non_root_with_its_bundle(container, image, bundles):
    config = json.loads(podman("image", "inspect", image).stdout)[0]["Config"]
    assert config["User"] == "bentoml"
    assert f"SCORING_BUNDLE={bundles['svc'].tag}" in config["Env"]
    ids = podman("exec", container.name, "id", "-u").stdout.split()
    assert ids and ids[0] != "0", ids


def test_image_has_no_build_toolchain(image):
    out = podman("run", "--rm", "--entrypoint", "sh", image, "-c",
                 "for c in gcc cc c++ make; do command -v $c; done; true")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"compilers in the image: {out.stdout}"


def test_container_stops_and_is_removed(container):
    assert container.exists()
    container.stop()
    assert container.proc.returncode is not None
    assert not container.exists()


def _pem_bodies(text: str) -> set[str]:
    return {"".join(body.split()) for body in re.findall(
        r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", text, re.S)}


def test_image_trusts_only_debian_certificates(image):
    """The build machine's extra CA certificates (base.sh adds them for pip and uv behind
    its proxy) are out of the image's trust store after the build."""
    out = podman("run", "--rm", "--entrypoint", "sh", image, "-c",
                 "ls /usr/local/share/ca-certificates; cat /etc/ssl/certs/ca-certificates.crt")
    assert out.returncode == 0, out.stderr
    trusted = _pem_bodies(out.stdout)
    assert len(trusted) > 100  # Debian's own
    assert ".crt" not in out.stdout.split("-----BEGIN", 1)[0]
    local = Path("/usr/local/share/ca-certificates")
    for cert in local.rglob("*.crt") if local.is_dir() else []:
        assert not _pem_bodies(cert.read_text(errors="replace")) & trusted, cert
