# PokeWatch: every target builds .venv from pyproject.toml first, so each works on a fresh clone.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
NOTEBOOKS := notebooks/collect.ipynb notebooks/train.ipynb notebooks/evaluate.ipynb $(wildcard notebooks/explore.ipynb)
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup pipeline test test-unit test-notebooks lab serve bench lint clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@echo "==> creating $(VENV) with $(PYTHON) and installing pokewatch[dev]"
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 needed, found {sys.version.split()[0]}: make PYTHON=/path/to/python3.11"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@echo "==> compiling the numba kernels once (cached in pokewatch/__pycache__)"
	$(PY) -c "import pokewatch.kernels"
	touch $(STAMP)

setup: $(STAMP)  ## create .venv from pyproject.toml (done by every other target)

pipeline: $(STAMP)  ## run today's pipeline on the offline demo market (ARGS='--date 2026-01-05 ...')
	TQDM_DISABLE=$${TQDM_DISABLE:-1} scripts/run_pipeline.sh $(ARGS)

test: test-unit test-notebooks  ## all tests: pytest, then nbval over the notebooks

test-unit: $(STAMP)
	$(PY) -m pytest -p no:cacheprovider tests

test-notebooks: $(STAMP)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  POKEWATCH_RUNS_DIR=$$tmp/runs POKEWATCH_DATA_DIR=$$tmp/data POKEWATCH_CACHE_DIR=$$tmp/cache TQDM_DISABLE=1 \
	  $(PY) -m pytest -p no:cacheprovider --nbval-lax $(NOTEBOOKS)

# The notebooks, this target and the pipeline use one kernel: python3, the .venv's own
# ("Python 3 (ipykernel)"), so nothing needs registering and opening a notebook changes nothing.
lab: $(STAMP)  ## JupyterLab on the project root (runs/ one click away), opened at notebooks/
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/notebooks $(ARGS)

serve: $(STAMP)  ## serve runs/latest over HTTP (needs POKEWATCH_API_KEYS)
	$(VENV)/bin/pokewatch serve $(ARGS)

bench: $(STAMP)  ## performance benchmarks on the generated demo market (docs/performance.md)
	$(PY) -m benchmarks $(or $(ARGS),--pipeline --parallel)

lint: $(STAMP)  ## ruff, and check notebooks carry no outputs
	$(VENV)/bin/ruff check pokewatch tests scripts benchmarks
	$(VENV)/bin/nbstripout --keep-id --keep-count --verify notebooks/*.ipynb

clean:  ## remove caches (keeps runs/ and data/)
	rm -rf .cache .pytest_cache .ruff_cache
