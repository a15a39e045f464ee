"""deploy/: promtool checks, manifests cross-checked against the service, and a real
Prometheus (the repo's scrape config and rules) scraping a real `bentoml serve`."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
PROM_DIR = DEPLOY / "prometheus"
K8S_DIR = DEPLOY / "kubernetes"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "scoring.json"
INSTALL_HINT = ("install Debian's prometheus package (`apt-get install -y prometheus`, it gives "
                "`prometheus` and `promtool`); .ci/run installs it when missing")
_PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
                 "or", "unless", "offset", "inf", "nan"}


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not on PATH: {INSTALL_HINT}")
    return path


def _run(*args: str, cwd: Path = PROM_DIR) -> subprocess.CompletedProcess:
    out = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"{' '.join(args)} failed:\n{out.stdout}\n{out.stderr}"
    return out


# -- reading the deploy files ----------------------------------------------------------
def _manifests() -> dict[str, dict]:
    """Kubernetes objects of deploy/kubernetes by kind (one of each)."""
    out = {}
    for path in sorted(K8S_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") != "Kustomization":
                assert doc["kind"] not in out, f"two {doc['kind']} objects"
                out[doc["kind"]] = doc
    return out


def _container(deployment: dict) -> dict:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _env(container: dict) -> dict[str, str]:
    """Environment values with Kubernetes' $(VAR) references expanded."""
    env: dict[str, str] = {}
    for item in container["env"]:
        if "value" not in item:  # valueFrom: a Secret's key
            continue
        env[item["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], item["value"])
    return env


def _rule_files() -> list[str]:
    return yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())["rule_files"]


def _rules() -> list[dict]:
    return [rule for name in _rule_files()
            for group in yaml.safe_load((PROM_DIR / name).read_text())["groups"]
            for rule in group["rules"]]


def _dashboard_exprs(rate_interval: str = "$__rate_interval") -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"].replace("$__rate_interval", rate_interval)
            for panel in dashboard["panels"] for target in panel.get("targets", [])]


def promql_metric_names(expr: str) -> set[str]:
    """Metric names an expression selects: identifiers that are not functions, keywords,
    label names (in braces or `by (...)`), strings or durations."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    tokens = re.findall(r"(?<![\w.:$])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()", expr)
    return {t for t in tokens if t.lower() not in _PROMQL_WORDS}


def _service_metric_names() -> set[str]:
    """Series names the service's own prometheus_client objects expose."""
    from prometheus_client.metrics import MetricWrapperBase

    import service.metrics

    out = set()
    for metric in vars(service.metrics).values():
        if isinstance(metric, MetricWrapperBase):
            for family in metric.describe():
                out |= {f"{family.name}_bucket", f"{family.name}_sum", f"{family.name}_count"} \
                    if family.type == "histogram" else {f"{family.name}_total"} \
                    if family.type == "counter" else {family.name}
    return out


def _bentoml_metric_names() -> set[str]:
    """BentoML's HTTP metrics, from the installed source: namespace + names."""
    import bentoml._internal.server.http.instruments as instruments
    from bentoml._internal.configuration import v2

    config = yaml.safe_load(
        (Path(v2.__file__).parent / "default_configuration.yaml").read_text())
    namespace = config["services"]["metrics"]["namespace"]
    source = Path(instruments.__file__).read_text()
    out = set()
    for kind, name in re.findall(r"metrics_client\.(Histogram|Counter|Gauge)\([^)]*?"
                                 r'name="(\w+)"', source, flags=re.S):
        full = f"{namespace}_{name}"
        out |= {f"{full}_bucket", f"{full}_sum", f"{full}_count"} if kind == "Histogram" \
            else {full}
    return out


def _referenced_metric_names() -> set[str]:
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    names = set()
    for expr in [rule["expr"] for rule in _rules()] + _dashboard_exprs():
        names |= promql_metric_names(expr)
    return names - recorded - {"up"}


# -- (a) promtool -------------------------------------------------------------------------
def test_promtool_checks_config_and_rules():
    promtool = _tool("promtool")
    out = _run(promtool, "check", "config", "prometheus.yml")
    assert "SUCCESS" in out.stdout
    out = _run(promtool, "check", "rules", *_rule_files())
    found = re.findall(r"SUCCESS: (\d+) rules found", out.stdout)
    assert len(found) == len(_rule_files()) and sum(map(int, found)) == len(_rules())


@pytest.mark.parametrize("tests", sorted(p.name for p in PROM_DIR.glob("*tests.yml")))
def test_promtool_unit_tests_of_the_rules_pass(tests):
    out = _run(_tool("promtool"), "test", "rules", tests)
    assert "SUCCESS" in out.stdout + out.stderr


def test_prometheusrule_manifest_is_generated_from_the_rules():
    sys.path.insert(0, str(DEPLOY))
    try:
        import prometheusrule
    finally:
        sys.path.remove(str(DEPLOY))
    assert (K8S_DIR / "prometheusrule.yaml").read_text() == prometheusrule.render(), \
        "deploy/kubernetes/prometheusrule.yaml is stale: run `python deploy/prometheusrule.py`"


# -- (b) static cross-checks ---------------------------------------------------------------
def test_promql_metric_names_parser():
    expr = ('histogram_quantile(0.99, sum by (endpoint, le) (rate(a_bucket{endpoint!~"/x|y",'
            'code=~"5.."}[5m]))) / on (endpoint) group_left b:rec:rate5m * 1e6 '
            '+ label_replace(c_total, "stage", "predict", "", "")')
    assert promql_metric_names(expr) == {"a_bucket", "b:rec:rate5m", "c_total"}


def test_rules_and_dashboard_reference_only_metrics_the_service_exposes():
    exposed = _service_metric_names() | _bentoml_metric_names()
    assert {"scoring_predict_seconds_bucket", "scoring_explain_seconds_bucket",
            "scoring_request_rows_bucket", "scoring_rejected_requests_total"} <= exposed
    assert {"bentoml_service_request_total",
            "bentoml_service_request_duration_seconds_bucket"} <= exposed
    unknown = _referenced_metric_names() - exposed
    assert not unknown, f"rules/dashboard use metrics nobody exposes: {sorted(unknown)}"


def test_dashboard_uses_recorded_series_that_the_rules_record():
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    used = set().union(*(promql_metric_names(e) for e in _dashboard_exprs()))
    assert {n for n in used if n.count(":") == 2} <= recorded


@pytest.mark.parametrize("version", ["1.27.0", "latest"])
def test_kubernetes_manifests_validate_against_the_api_schemas(version):
    """Strict JSON-schema validation (unknown fields are errors) of the built-in kinds, for
    an old and the newest Kubernetes release the schemas cover."""
    try:
        import kubernetes_validate
    except ImportError:
        pytest.fail("kubernetes-validate is missing: pip install -e '.[dev]'")
    version = kubernetes_validate.latest_version() if version == "latest" else version
    objects = _manifests()
    for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
                 "Secret"):
        try:
            kubernetes_validate.validate(objects[kind], version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{kind} is not valid for Kubernetes {version}: {exc.message} at "
                        f"{'.'.join(map(str, exc.path))}")


def test_kubernetes_objects_agree_with_each_other():
    objects = _manifests()
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
            "ServiceMonitor", "PrometheusRule"} <= set(objects)
    deployment, service = objects["Deployment"], objects["Service"]
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    assert objects["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() \
        <= labels.items()
    target = objects["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])

    container = _container(deployment)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = _env(container)
    assert int(env["BENTOML_PORT"]) == ports["http"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] in ("http", ports["http"]), probe
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] == "http"

    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == ports["http"]
    assert annotations["prometheus.io/path"] == "/metrics"
    monitor = objects["ServiceMonitor"]["spec"]
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["endpoints"]] == [service_port["name"]]
    # ServiceMonitor's job label is the Service name: the one the rules alert on
    assert f'job="{service["metadata"]["name"]}"' in (PROM_DIR / "rules.yml").read_text()

    resources = container["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"]
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    # the Secret is applied on its own: `kubectl apply -k` must not overwrite the token;
    # the InferenceService is the KServe alternative to the Deployment
    assert sorted(kustomization["resources"]) == sorted(
        p.name for p in K8S_DIR.glob("*.yaml")
        if p.name not in ("kustomization.yaml", "secret.yaml", "inferenceservice.yaml"))


def _kserve_model_errors(value: object, kind: str, where: str = "") -> list[str]:
    """Where ``value`` breaks ``kind``, a type of the KServe SDK's models (generated from its
    API's OpenAPI schema, Kubernetes' own from the kubernetes client's): unknown fields,
    values of the wrong type."""
    import kserve
    import kubernetes.client

    generic = re.fullmatch(r"(?:list|List)\[(.+)\]|(?:dict\(str, |Dict\[str, )(.+)[)\]]", kind)
    if generic and generic.group(1):
        if not isinstance(value, list):
            return [f"{where}: a list expected"]
        return [e for i, v in enumerate(value)
                for e in _kserve_model_errors(v, generic.group(1), f"{where}[{i}]")]
    if generic:
        if not isinstance(value, dict):
            return [f"{where}: an object expected"]
        return [e for k, v in value.items()
                for e in _kserve_model_errors(v, generic.group(2), f"{where}.{k}")]
    scalars = {"str": str, "int": int, "bool": bool, "float": (int, float),
               "ResourceQuantity": (str, int, float), "object": object}
    if kind in scalars:
        ok = isinstance(value, scalars[kind]) and not (kind == "int" and value is True)
        return [] if ok else [f"{where}: {kind} expected, got {value!r}"]
    model = getattr(kserve, kind, None) or getattr(kubernetes.client, kind)
    if not isinstance(value, dict):
        return [f"{where}: a {kind} object expected"]
    fields = {key: name for name, key in model.attribute_map.items()}
    return [e for key, v in value.items() for e in (
        [f"{where}.{key}: no such field in {kind}"] if key not in fields
        else _kserve_model_errors(v, model.openapi_types[fields[key]], f"{where}.{key}"))]


@pytest.mark.parametrize("version", ["1.27.0", "latest"])
def test_the_inferenceservice_validates_against_kserves_api(version):
    """No cluster here: the InferenceService against the KServe SDK's models of its API
    (every field known, every value of its type), and its predictor's pod against the
    Kubernetes schemas, strictly, as the other manifests."""
    import kubernetes_validate

    service = _manifests()["InferenceService"]
    assert service["apiVersion"] == "serving.kserve.io/v1beta1"
    assert _kserve_model_errors(service, "V1beta1InferenceService") == []
    predictor = service["spec"]["predictor"]
    pod_fields = {key for key in predictor if key not in (
        "minReplicas", "maxReplicas", "scaleMetric", "scaleTarget")}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "scoring-predictor"},
           "spec": {key: predictor[key] for key in pod_fields}}
    version = kubernetes_validate.latest_version() if version == "latest" else version
    try:
        kubernetes_validate.validate(pod, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"the predictor's pod is not valid for Kubernetes {version}: "
                    f"{exc.message} at {'.'.join(map(str, exc.path))}")
    # what the checks catch
    broken = json.loads(json.dumps(service))
    broken["spec"]["predictor"]["minReplica"] = 1
    broken["spec"]["predictor"]["containers"][0]["ports"][0]["containerPort"] = "3000"
    assert [e.split(":")[0] for e in _kserve_model_errors(broken, "V1beta1InferenceService")] \
        == [".spec.predictor.containers[0].ports[0].containerPort",
            ".spec.predictor.minReplica"]


def test_the_inferenceservice_runs_the_deployments_container_on_v2():
    objects = _manifests()
    ours = _container(objects["Deployment"])
    predictor = objects["InferenceService"]["spec"]["predictor"]
    (container,) = predictor["containers"]
    env = _env(container)
    # KServe reads the protocol from the first container's PROTOCOL (v1 otherwise)
    assert container["name"] == "kserve-container" and env.pop("PROTOCOL") == "v2"
    assert env == _env(ours)
    assert [e for e in container["env"] if "valueFrom" in e] == [
        e for e in ours["env"] if "valueFrom" in e]  # the token's optional Secret
    assert (container["image"], container["resources"]) == (ours["image"], ours["resources"])
    (port,) = container["ports"]
    assert port["containerPort"] == int(env["BENTOML_PORT"])
    ports = {p["name"]: p["containerPort"] for p in ours["ports"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = ours[probe]["httpGet"]
        # the port by number: a Knative container's port has no name of ours
        assert container[probe] == {**ours[probe], "httpGet": {
            **get, "port": ports.get(get["port"], get["port"])}}, probe
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    assert predictor["securityContext"] == pod["securityContext"]
    # what the probes and the V2 clients ask need no token
    from service.guard import PUBLIC_PATHS

    assert {container[p]["httpGet"]["path"] for p in ("startupProbe", "readinessProbe",
                                                      "livenessProbe")} <= PUBLIC_PATHS
    assert {"/v2/health/live", "/v2/health/ready"} <= PUBLIC_PATHS


def test_the_api_token_comes_from_an_optional_secret(monkeypatch):
    objects = _manifests()
    secret = objects["Secret"]
    (item,) = [e for e in _container(objects["Deployment"])["env"]
               if e["name"] == "SCORING_API_TOKEN"]
    ref = item["valueFrom"]["secretKeyRef"]
    assert ref["name"] == secret["metadata"]["name"] and ref["optional"] is True
    assert ref["key"] in secret["stringData"]
    # the variable the service reads
    from service.guard import api_token

    monkeypatch.setenv("SCORING_API_TOKEN", "t0ken")
    assert api_token() == b"t0ken"


def _worker_count(env: dict[str, str], bento_home: Path) -> tuple[str, int]:
    """The service's name and worker count as `bentoml serve` computes them under ``env``."""
    script = ("from bentoml._internal.service.loader import load\n"
              "from _bentoml_impl.server.allocator import ResourceAllocator\n"
              "svc = load('.', working_dir='.')\n"
              "svc.inject_config()\n"
              "print(svc.name, ResourceAllocator().get_worker_env(svc)[0])\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                         text=True, timeout=120,
                         env={**os.environ, **env, "BENTOML_HOME": str(bento_home)})
    assert out.returncode == 0, out.stderr[-3000:]
    name, workers = out.stdout.split()[-2:]
    return name, int(workers)


def test_deployment_env_names_what_the_service_reads(tmp_path):
    container = _container(_manifests()["Deployment"])
    env = _env(container)
    read = subprocess.run([sys.executable, "-c", "from service.lifecycle import BUNDLE_TAG; "
                           "print(BUNDLE_TAG)"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "SCORING_BUNDLE": "some_bundle:v1"}, check=True)
    assert read.stdout.strip() == "some_bundle:v1"
    assert env["SCORING_BUNDLE"].startswith("breast_cancer_svc:")
    # the worker setting reaches BentoML's allocator
    _, workers = _worker_count({k: v for k, v in env.items() if k != "BENTOML_PORT"},
                               tmp_path)
    assert workers == int(env["SCORING_WORKERS"]) == 2
    # one worker per requested CPU
    assert float(container["resources"]["requests"]["cpu"]) == workers


def test_deployment_matches_the_image_bentoml_build_generates(bundles, bento_home):
    """`bentoml build` of the repository's bentofile (tests/test_image.py builds and runs
    the image itself): the Dockerfile it writes for `bentoml containerize` exposes the
    container port and runs as the user the Deployment's securityContext names."""
    bentoml = str(Path(sys.executable).with_name("bentoml"))
    out = subprocess.run([bentoml, "build", "-o", "tag"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300,
                         env={**os.environ, "BENTOML_HOME": str(bento_home),
                              "SCORING_BUNDLE": bundles["svc"].tag,
                              "BENTOML_DO_NOT_TRACK": "True"})
    assert out.returncode == 0, out.stderr[-3000:]
    tag = re.search(r"__tag__:(\S+)", out.stdout).group(1)
    name, version = tag.split(":")
    bento = bento_home / "bentos" / name / version
    info = yaml.safe_load((bento / "bento.yaml").read_text())
    assert [m["tag"] for s in info["services"] for m in s["models"]] == [bundles["svc"].tag]
    dockerfile = (bento / "env" / "docker" / "Dockerfile").read_text()

    deployment = _manifests()["Deployment"]
    container = _container(deployment)
    assert container["image"].split(":")[0] == name
    assert f"EXPOSE {container['ports'][0]['containerPort']}" in dockerfile
    uid = deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    assert f"ARG BENTO_USER_UID={uid}" in dockerfile and "USER bentoml" in dockerfile


def test_compose_wires_the_service_prometheus_and_grafana():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    assert {"scoring", "prometheus", "grafana"} <= set(compose)
    # the same settings as the Deployment (its token comes from a Secret)
    deployment_env = {item["name"] for item in _container(_manifests()["Deployment"])["env"]}
    assert set(compose["scoring"]["environment"]) <= deployment_env
    config = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "scoring"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    (target,) = job["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert host == "scoring"
    assert any(p.endswith(f":{port}") for p in compose["scoring"]["ports"])
    for service in compose.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), volume
    datasources = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasources["datasources"][0]["url"].startswith("http://prometheus:")


# -- (c) integration: real bentoml serve + real Prometheus ---------------------------------
@dataclass
class Prometheus:
    url: str
    proc: subprocess.Popen
    log: Path

    def query(self, expr: str) -> list[dict]:
        reply = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = reply.json()
        assert reply.status_code == 200 and body["status"] == "success", (expr, body)
        return body["data"]["result"]

    def scalar(self, expr: str) -> float | None:
        result = self.query(expr)
        assert len(result) <= 1, (expr, result)
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, expr: str, check, timeout: float = 30) -> float | None:
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.scalar(expr)
            if value is not None and check(value):
                return value
            time.sleep(0.5)
        raise AssertionError(f"{expr} is {value} after {timeout}s\n"
                             f"{self.log.read_text(errors='replace')[-2000:]}")



@pytest.fixture(scope="module")
def prometheus(svc_server, servers, tmp_path_factory):
    """Prometheus with deploy/prometheus's config and rules, the `scoring` job pointed at
    the test server, scraping and evaluating every second."""
    binary = _tool("prometheus")
    work = tmp_path_factory.mktemp("prometheus")
    config = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(PROM_DIR / f) for f in config["rule_files"]]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "scoring"]
    job["static_configs"] = [{"targets": [urlsplit(svc_server.url).netloc]}]
    url, proc = servers.start_prometheus(config, work, binary)
    server = Prometheus(url, proc, work / "prometheus.log")
    yield server
    servers.stop_process(proc, 15)


def _scrape(url: str) -> dict[tuple, float]:
    """The service's /metrics as {(name, sorted labels): value}."""
    text = requests.get(url + "/metrics", timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _total(samples: dict[tuple, float], name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items()
               if n == name and labels.items() <= dict(ls).items())


# what the traffic fixture sends after its warm-up: (endpoint, rows per request, count)
N_PREDICT, N_EXPLAIN, N_REJECTED = 12, 4, 3
PREDICT_ROWS = (1, 2, 3)


@dataclass
class Traffic:
    before: dict[tuple, float]
    after: dict[tuple, float]
    rows_sent: int


def _post(url: str, path: str, body) -> requests.Response:
    return requests.post(url + path, data=json.dumps(body).encode(), timeout=60,
                         headers={"Content-Type": "application/json"})


@pytest.fixture(scope="module")
def traffic(prometheus, svc_server, bundles) -> Traffic:
    """A warm-up request per series (so that every series exists before the counted
    traffic and rate() sees it grow), then a known number of requests; returns once
    Prometheus has scraped all of them."""
    X = bundles["svc"].X.to_numpy()
    url = svc_server.url
    good = {"rows": X[:1].tolist(), "top_k": 3}
    bad = {"rows": [[1.0, 2.0, 3.0]]}
    for path, body, status in (("/predict", good, 200), ("/explain", good, 200),
                               ("/predict", bad, 400)):
        assert _post(url, path, body).status_code == status, path
    counted = 'sum(bentoml_service_request_total{endpoint="/predict"})'
    before = _scrape(url)
    expected = _total(before, "bentoml_service_request_total", endpoint="/predict")
    prometheus.wait_for(counted, lambda v: v == expected)

    rows_sent = 0
    for i in range(N_PREDICT):
        n = PREDICT_ROWS[i % len(PREDICT_ROWS)]
        reply = _post(url, "/predict", {"rows": X[i:i + n].tolist(), "top_k": 3})
        assert reply.status_code == 200, reply.text
        rows_sent += n
    for i in range(N_EXPLAIN):
        assert _post(url, "/explain", {"rows": X[i:i + 1].tolist()}).status_code == 200
    for _ in range(N_REJECTED):
        assert _post(url, "/predict", bad).status_code == 400
    after = _scrape(url)
    prometheus.wait_for(counted, lambda v: v == expected + N_PREDICT + N_REJECTED)
    return Traffic(before, after, rows_sent)


@pytest.mark.integration
def test_prometheus_counts_the_requests_sent(prometheus, traffic):
    def delta(expr: str, name: str, **labels: str) -> float:
        value = prometheus.wait_for(expr, lambda v: v == _total(traffic.after, name, **labels))
        return value - _total(traffic.before, name, **labels)

    counter = "bentoml_service_request_total"
    assert delta(f'sum({counter}{{endpoint="/predict",http_response_code="200"}})', counter,
                 endpoint="/predict", http_response_code="200") == N_PREDICT
    assert delta(f'sum({counter}{{endpoint="/predict",http_response_code="400"}})', counter,
                 endpoint="/predict", http_response_code="400") == N_REJECTED
    assert delta(f'sum({counter}{{endpoint="/explain",http_response_code="200"}})', counter,
                 endpoint="/explain", http_response_code="200") == N_EXPLAIN
    rejected = "scoring_rejected_requests_total"
    assert delta(f'sum({rejected}{{endpoint="predict"}})', rejected,
                 endpoint="predict") == N_REJECTED
    rows = "scoring_request_rows_sum"
    assert delta(f'sum({rows}{{endpoint="predict"}})', rows,
                 endpoint="predict") == traffic.rows_sent
    assert prometheus.scalar('up{job="scoring"}') == 1


@pytest.mark.integration
@pytest.mark.parametrize("histogram, selector", [
    ("bentoml_service_request_duration_seconds",
     'endpoint="/predict",http_response_code="200"'),
    ("scoring_predict_seconds", 'endpoint="predict"'),
    ("scoring_explain_seconds", 'endpoint="predict"'),
    ("scoring_explain_seconds", 'endpoint="explain"'),
])
def test_histogram_quantile_gives_a_finite_latency(prometheus, traffic, histogram, selector):
    p50, p99 = (prometheus.scalar(
        f"histogram_quantile({q}, sum by (le) (rate({histogram}_bucket{{{selector}}}[5m])))")
        for q in (0.5, 0.99))
    assert p99 is not None and math.isfinite(p99) and 0 < p99 < 10, p99
    assert p50 is not None and 0 < p50 <= p99


@pytest.mark.integration
def test_recording_rules_evaluate_without_errors(prometheus, traffic):
    for expr in ('endpoint:bentoml_service_request_duration_seconds:p99_5m{endpoint="/predict"}',
                 'endpoint:bentoml_service_request:rate5m{endpoint="/predict"}',
                 'endpoint:scoring_request_rows:mean5m{endpoint="predict"}'):
        value = prometheus.wait_for(expr, math.isfinite)
        assert value > 0, expr
    assert prometheus.wait_for(
        'endpoint:bentoml_service_request_errors:ratio_rate5m{endpoint="/predict"}',
        math.isfinite) == 0
    stages = prometheus.query('endpoint_explainer_stage:scoring_stage_seconds:p99_5m'
                              '{endpoint="predict"}')
    assert {s["metric"]["stage"] for s in stages} == {"predict", "explain"}
    assert all(math.isfinite(float(s["value"][1])) for s in stages)
    # the rejected requests come last: the rule's next evaluation may still be due
    assert prometheus.wait_for('sum(endpoint_reason:scoring_rejected_requests:rate5m)',
                               lambda v: v > 0) > 0

    groups = requests.get(prometheus.url + "/api/v1/rules", timeout=10).json()["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == len(_rules())
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []
    firing = requests.get(prometheus.url + "/api/v1/alerts", timeout=10).json()
    assert [a for a in firing["data"]["alerts"] if a["state"] == "firing"] == []


@pytest.mark.integration
def test_dashboard_queries_return_data(prometheus, traffic):
    empty = _dashboard_exprs(rate_interval="5m")
    deadline = time.monotonic() + 15  # recording rules: the first evaluation may be due
    while empty and time.monotonic() < deadline:
        empty = [expr for expr in empty if not prometheus.query(expr)]
        time.sleep(0.5)
    assert empty == [], "dashboard queries with no data"


@pytest.mark.integration
def test_every_referenced_metric_is_in_the_real_scrape(traffic):
    scraped = {name for name, _ in traffic.after}
    missing = _referenced_metric_names() - scraped
    assert not missing, f"rules/dashboard use metrics /metrics does not show: {sorted(missing)}"


def test_probe_paths_answer(svc_server):
    container = _container(_manifests()["Deployment"])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        path = container[probe]["httpGet"]["path"]
        assert requests.get(svc_server.url + path, timeout=5).status_code == 200, path


def _endpoint_exclusions() -> list[str]:
    """The ``endpoint!~`` regexes of the recording rules and the dashboard's queries."""
    exprs = [rule["expr"] for rule in _rules() if "expr" in rule] + _dashboard_exprs()
    return [m for expr in exprs for m in re.findall(r'endpoint!~"((?:[^"\\]|\\.)*)"', expr)]


def test_api_traffic_leaves_out_every_probe_route():
    """Request rates, error ratios and latencies count the API's requests: not the probes',
    the Open Inference Protocol's health and readiness routes included (V2 clients and
    load balancers poll them), and never an inference route."""
    from service.v2_routes import LIVE, MODEL, MODEL_VERSION, READY

    name, version = "breast_cancer_svc", "57pfuyhqfgsnkax4"
    probes = ["/metrics", "/livez", "/readyz", "/healthz", LIVE, READY,
              *(f"{route}/ready".format(name=name, version=version)
                for route in (MODEL, MODEL_VERSION))]
    api = ["/predict", "/explain", "/score", f"/v2/models/{name}/infer",
           f"/v2/models/{name}/versions/{version}/infer"]
    exclusions = _endpoint_exclusions()
    assert len(exclusions) >= 8 and len(set(exclusions)) == 1, set(exclusions)
    # PromQL anchors label regexes at both ends
    (pattern,) = {re.compile(e.encode().decode("unicode_escape")) for e in exclusions}
    assert [p for p in probes if not pattern.fullmatch(p)] == []
    assert [p for p in api if pattern.fullmatch(p)] == []
