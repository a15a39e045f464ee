# One virtualenv for everything; every target installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 3000
export SCORING_BUNDLE ?= breast_cancer_svc:latest

.PHONY: install demo build-demo serve test lint bench load clean

$(BIN)/activate: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/activate

install: $(BIN)/activate

# train the seed's SVC, distill its scoring explainer, save the bundle, serve it
demo: install build-demo serve

build-demo: install
	$(BIN)/scoring demo

serve: install
	$(BIN)/bentoml serve --host 127.0.0.1 --port $(PORT)

test: install
	$(BIN)/ruff check scoring service tests bench deploy
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check scoring service tests bench deploy

bench: install
	$(BIN)/python -m bench.run

# drives a running-or-started service with wrk, percentiles also read from a real Prometheus
load: install
	@command -v wrk >/dev/null && command -v prometheus >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq wrk prometheus; }
	$(BIN)/python -m bench.load

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
