# Executable docs: every target is what a person would type. CI runs `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
CONFIG ?= config.yaml
WORKERS ?= auto

.PHONY: help install run demo check lint typecheck test bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(BIN)/monitor: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e ".[postgres]" --group dev
	@touch $@

install: $(BIN)/monitor  ## create .venv and install monitor with its test and lint tools

run: install  ## start the daemon on $(CONFIG) (SQLite by default)
	$(BIN)/monitor run -c $(CONFIG)

demo: install  ## offline end-to-end demo on a bundled article
	$(BIN)/monitor demo

check: install  ## validate $(CONFIG)
	$(BIN)/monitor check -c $(CONFIG)

lint: install  ## ruff, formatting, import contracts
	$(BIN)/ruff check monitor tests bench
	$(BIN)/ruff format --check monitor tests bench
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile

typecheck: install  ## mypy --strict on monitor/ (tests: check_untyped_defs)
	$(BIN)/mypy

test: lint typecheck  ## lint, types, then the whole test suite with coverage, on WORKERS processes (auto: one per CPU)
	$(BIN)/pytest -n $(WORKERS) --cov --cov-report=term $(PYTEST_ARGS)

bench: install  ## benchmarks (tables; bench/results.json, bench/results/*.json); N= RULES= LATENCY=ms scale the cycle one
	BENCH_FEEDS="$(N)" BENCH_RULES="$(RULES)" BENCH_LATENCY="$(LATENCY)" $(BIN)/python -m bench

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .coverage htmlcov
