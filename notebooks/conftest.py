"""pytest settings for ``pytest --nbval-lax notebooks/``: pipeline order, an isolated home, this venv's kernel.

Why here and not in the Makefile: the plain command must pass on a fresh clone by itself,
and ``make test-notebooks`` is that same command. Three things make it work:

* **Order.** pytest collects files alphabetically, so evaluate ran before train and found no
  model. The notebooks run as the pipeline runs them: collect, train, evaluate, then explore
  (which reads what they wrote), then any other notebook; cells keep their order.
* **An isolated home.** Runs, the price store and the cache go to a temporary folder for the
  session (``POKEWATCH_RUNS_DIR``, ``POKEWATCH_DATA_DIR``, ``POKEWATCH_CACHE_DIR``), so the
  notebooks see a fresh store whatever the clone already holds, write nothing into it, and the
  folder is removed afterwards. ``TQDM_DISABLE=1`` keeps progress bars out of the outputs.
* **This environment's kernel.** Cells run in the Python that runs pytest (nbval's
  ``--nbval-current-env``), not whatever kernelspec of the notebook's kernel name another
  checkout registered, unless ``--nbval-kernel-name`` says otherwise.

Scratch notebooks (``notebooks/scratch/``, git-ignored) are never collected.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

#: The pipeline's order; notebooks not listed run after these, alphabetically.
PIPELINE_ORDER = ("collect.ipynb", "train.ipynb", "evaluate.ipynb", "explore.ipynb")
ISOLATED = {"POKEWATCH_RUNS_DIR": "runs", "POKEWATCH_DATA_DIR": "data", "POKEWATCH_CACHE_DIR": "cache"}

collect_ignore = ["scratch"]

_home: Path | None = None
_saved_env: dict[str, str | None] = {}


def notebook_rank(path: Path) -> tuple[int, str]:
    """Sort key of a notebook: its place in the pipeline, then its name."""
    name = Path(path).name
    return (PIPELINE_ORDER.index(name) if name in PIPELINE_ORDER else len(PIPELINE_ORDER), name)


def pytest_configure(config):
    global _home
    if not getattr(config.option, "nbval_kernel_name", None):
        config.option.nbval_current_env = True
    _home = Path(tempfile.mkdtemp(prefix="pokewatch-nbval-"))
    settings = {name: str(_home / folder) for name, folder in ISOLATED.items()} | {"TQDM_DISABLE": "1"}
    for name, value in settings.items():
        _saved_env[name] = os.environ.get(name)
        os.environ[name] = value


def pytest_unconfigure(config):
    for name, value in _saved_env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if _home is not None:
        shutil.rmtree(_home, ignore_errors=True)


def pytest_report_header(config):
    return f"notebooks: runs, store and cache in {_home} (removed afterwards); order {', '.join(PIPELINE_ORDER)}"


def pytest_collection_modifyitems(session, config, items):
    """Run notebook cells in pipeline order; other items keep their places."""
    slots = [i for i, item in enumerate(items) if Path(str(item.path)).suffix == ".ipynb"]
    ordered = sorted((items[i] for i in slots), key=lambda item: notebook_rank(item.path))
    for slot, item in zip(slots, ordered):
        items[slot] = item
