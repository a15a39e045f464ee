# One virtualenv for everything; every target installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 3000
export SCORING_BUNDLE ?= breast_cancer_svc:latest

SDK_VENV ?= .venv-sdk
MLSERVER_VENV ?= .venv-mlserver

.PHONY: install demo build-demo serve test test-integration test-all lint bench bench-quick \
	bench-dashboard bench-flood bench-batching sdk-venv load soak load-prometheus mlserver-venv \
	image run-image image-test clean

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

# what batching one-row requests could gain per explainer: CPU per row, 1 vs 32 rows per call
bench-batching: install
	$(BIN)/python -m bench.batching

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

# ours (default settings), a bare BentoML service and MLServer side by side, driven by wrk at
# 1, 8, 32 and 128 connections with 1 and 100 rows (LOAD_ARGS="--duration 5 --levels 1 32")
load: install mlserver-venv
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(BIN)/python -m bench.load $(LOAD_ARGS)

# ours alone at 32 connections for 10 minutes: errors, resident memory and p99 per window
soak: install
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(BIN)/python -m bench.load --soak 600

# wrk's percentiles beside a real Prometheus's from the service's histograms
# (LOAD_ARGS="--compare-monitoring 3000": attribution monitoring on vs off, alternated)
load-prometheus: install
	@command -v wrk >/dev/null && command -v prometheus >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq wrk prometheus; }
	$(BIN)/python -m bench.load_prometheus $(LOAD_ARGS)

# MLServer's scikit-learn runtime in its own environment, with this project's scikit-learn,
# numpy and joblib so that it loads the same model file; uvloop 0.20 because its workers
# call asyncio.get_event_loop() outside a running loop, which uvloop 0.23 (the newest) refuses
mlserver-venv: $(MLSERVER_VENV)/bin/activate

$(MLSERVER_VENV)/bin/activate: | $(BIN)/activate
	$(PYTHON) -m venv $(MLSERVER_VENV)
	$(MLSERVER_VENV)/bin/pip install --quiet mlserver==1.7.1 mlserver-sklearn==1.7.1 uvloop==0.20.0 \
		$$($(BIN)/python -c "from importlib.metadata import version as v; \
			print(*(f'{p}=={v(p)}' for p in ('scikit-learn', 'numpy', 'joblib')))")
	touch $(MLSERVER_VENV)/bin/activate

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
	rm -rf $(VENV) $(SDK_VENV) $(MLSERVER_VENV) build *.egg-info .pytest_cache .ruff_cache
