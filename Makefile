# PokeWatch: every target builds .venv from pyproject.toml first, so each works on a fresh clone.
# Two installs, two stamps: the runtime alone (make setup-prod: what cron hosts and `make pipeline`
# need) and the runtime with the dev extras (make setup: tests, lint, benchmarks).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PROD_STAMP := $(VENV)/.installed-prod-stamp
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help git-filter setup setup-prod pipeline test test-unit test-notebooks lab serve bench lint clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

$(PY):
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 needed, found {sys.version.split()[0]}: make PYTHON=/path/to/python3.11"'
	@echo "==> creating $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Both installs end by compiling the numba kernels once (cached in pokewatch/__pycache__).
$(PROD_STAMP): pyproject.toml | $(PY)
	@echo "==> installing pokewatch (runtime only) into $(VENV)"
	$(PY) -m pip install --quiet -e .
	$(PY) -c "import pokewatch.core.kernels"
	touch $(PROD_STAMP)

$(STAMP): pyproject.toml | $(PY)
	@echo "==> installing pokewatch[dev] into $(VENV)"
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -c "import pokewatch.core.kernels"
	touch $(STAMP) $(PROD_STAMP)

# The notebooks' git clean filter (.gitattributes): JupyterLab rewrites language_info on every save;
# git then sees the stripped, committed form, so opening a notebook changes nothing.
git-filter:
	@git rev-parse --git-dir >/dev/null 2>&1 && \
	  git config filter.pokewatch-notebook.clean "$(PY) scripts/strip_notebooks.py --filter" || true

setup: $(STAMP) git-filter  ## create .venv with the dev extras (tests, lint, pre-commit); done by the dev targets

setup-prod: $(PROD_STAMP)  ## create .venv with the runtime only, for cron hosts (what make pipeline needs)

pipeline: $(PROD_STAMP)  ## run today's pipeline on the offline demo market (ARGS='--date 2026-01-05 ...')
	TQDM_DISABLE=$${TQDM_DISABLE:-1} scripts/run_pipeline.sh $(ARGS)

test: lint test-unit test-notebooks  ## all checks: lint, pytest, then nbval over the notebooks

test-unit: $(STAMP)
	$(PY) -m pytest -p no:cacheprovider tests

# notebooks/conftest.py orders the notebooks (collect, train, evaluate, explore) and runs them
# against a temporary runs/, store and cache, so this is exactly `pytest --nbval-lax notebooks/`.
test-notebooks: $(STAMP)
	$(PY) -m pytest -p no:cacheprovider --nbval-lax notebooks/

# The notebooks, this target and the pipeline use one kernel: python3, the .venv's own
# ("Python 3 (ipykernel)"), so nothing needs registering and opening a notebook changes nothing.
lab: $(STAMP) git-filter  ## JupyterLab on the project root (runs/ one click away), opened at notebooks/
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/notebooks $(ARGS)

serve: $(PROD_STAMP)  ## serve runs/latest over HTTP (keys from POKEWATCH_API_KEYS or POKEWATCH_API_KEY_FILE)
	$(VENV)/bin/pokewatch serve $(ARGS)

bench: $(STAMP)  ## performance benchmarks on the generated demo market (docs/performance.md)
	$(PY) -m benchmarks $(or $(ARGS),--pipeline --parallel)

lint: $(STAMP)  ## ruff over code and notebooks; notebooks carry no outputs or counts beyond the nbval references
	$(VENV)/bin/ruff check pokewatch tests scripts benchmarks notebooks
	$(PY) scripts/strip_notebooks.py --check notebooks/*.ipynb

clean:  ## remove caches (keeps runs/ and data/)
	rm -rf .cache .pytest_cache .ruff_cache
