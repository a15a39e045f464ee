# One virtualenv for everything; every target installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 3000
export SCORING_BUNDLE ?= breast_cancer_svc:latest

SDK_VENV ?= .venv-sdk

.PHONY: install demo build-demo serve test test-integration test-all lint bench bench-quick \
	bench-dashboard bench-flood sdk-venv load image run-image image-test clean

$(BIN)/activate: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
# the KServe SDK for tests/test_v2.py, without the pins it does not need (pyproject.toml)
	$(BIN)/pip install --quiet --no-deps kserve==0.21.0
	touch $(BIN)/activate

install: $(BIN)/activate

# train the seed's SVC, distill its scoring explainer, save the bundle, serve it
demo: install build-demo serve

build-demo: install
	$(BIN)/scoring demo

serve: install
	$(BIN)/bentoml serve --host 127.0.0.1 --port $(PORT)

# the fast tier: unit and library tests, and tests against `bentoml serve` of small bundles
test: install
	$(BIN)/ruff check scoring service tests bench deploy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -m "not integration"

# the tests marked `integration`: the image, the browser, an MLflow server, a Dask cluster,
# Prometheus, a distilled bundle served, long runs
test-integration: install
	$(BIN)/python -m pytest -q -m integration

# both tiers, one after the other (what CI runs)
test-all: test test-integration

lint: install
	$(BIN)/ruff check scoring service tests bench deploy
	$(BIN)/lint-imports

# the Azure SDK's own KernelScoringExplainer runs beside ours when its environment exists
bench: install
	@$(MAKE) --no-print-directory sdk-venv || echo "no Azure SDK environment: benchmarking without it"
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.pipelines
	$(BIN)/python -m bench.offline
	$(BIN)/python -m bench.scale

# the benchmarks in a few minutes each: fewer rows, smaller ground-truth budgets
bench-quick: install
	$(BIN)/python -m bench.run --quick
	$(BIN)/python -m bench.pipelines --quick
	$(BIN)/python -m bench.offline --quick

# the dashboard on 20,000 and 200,000 explained rows: each view's request, first paint in
# Debian's chromium (installed when missing; playwright never downloads a browser)
bench-dashboard: install
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }
	$(BIN)/python -m bench.dashboard

# one client floods the service with the worst request of each hostile kind, 60 s each:
# /livez latency, worker memory, metric series (builds the demo bundle when missing)
bench-flood: install
	$(BIN)/python -m bench.flood

# bench/README.md and the README's benchmark table, rendered from bench/results/*.json
.PHONY: bench-report
bench-report: install
	$(BIN)/python -m bench.report

# azureml-interpret in its own environment: it pins shap 0.44 and numpy 1.x
sdk-venv: $(SDK_VENV)/bin/activate

$(SDK_VENV)/bin/activate:
	$(PYTHON) -m venv $(SDK_VENV)
	$(SDK_VENV)/bin/pip install --quiet azureml-interpret==1.62.0
	touch $(SDK_VENV)/bin/activate

# drives a running-or-started service with wrk, percentiles also read from a real Prometheus
# (LOAD_ARGS="--compare-monitoring 3000": attribution monitoring on vs off, alternated)
load: install
	@command -v wrk >/dev/null && command -v prometheus >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq wrk prometheus; }
	$(BIN)/python -m bench.load $(LOAD_ARGS)

# the service's OCI image, built with podman/buildah and no image registry (deploy/image/);
# packs SCORING_BUNDLE, built with `scoring demo` when the store does not have it
image: install
	@$(BIN)/bentoml models get $(SCORING_BUNDLE) >/dev/null 2>&1 || $(BIN)/scoring demo
	deploy/image/build.sh

# runs the image `make image` built last, on 127.0.0.1:$(PORT), with the podman settings it
# needs here (deploy/image/containers.conf)
run-image:
	@test -s build/image/image.txt || { echo "no image built yet: make image" >&2; exit 2; }
	CONTAINERS_CONF=$(CURDIR)/deploy/image/containers.conf podman run --rm \
		-p 127.0.0.1:$(PORT):3000 $$(cat build/image/image.txt)

# builds the image of a test bundle, runs it, compares it with `bentoml serve` (part of
# `make test-integration`)
image-test: install
	$(BIN)/python -m pytest -q tests/test_image.py

clean:
	rm -rf $(VENV) $(SDK_VENV) build *.egg-info .pytest_cache .ruff_cache
