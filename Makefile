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
	$(BIN)/ruff check scoring service tests bench
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check scoring service tests bench

bench: install
	$(BIN)/python -m bench.run

load: install
	$(BIN)/python -m bench.load

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
