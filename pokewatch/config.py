"""Every path PokeWatch reads or writes, in one place.

Paths derive from the project root so notebooks, scripts, cron and tests agree on
where things live no matter which directory they start in. Each can be moved with
an environment variable, which is how tests and deployments isolate themselves
(``POKEWATCH_RUNS_DIR``, ``POKEWATCH_DATA_DIR``, ``POKEWATCH_CACHE_DIR``).
"""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def runs_dir() -> Path:
    """Folder of dated run folders (``runs/YYYY-MM-DD``) and ``runs/latest``."""
    return _env_path("POKEWATCH_RUNS_DIR", PROJECT_ROOT / "runs")


def data_dir() -> Path:
    """Folder of the price store and other accumulated data (git-ignored)."""
    return _env_path("POKEWATCH_DATA_DIR", PROJECT_ROOT / "data")


def store_dir() -> Path:
    """Root of the Parquet price store."""
    return data_dir() / "store"


def cache_dir() -> Path:
    """joblib.Memory location; safe to delete at any time."""
    return _env_path("POKEWATCH_CACHE_DIR", PROJECT_ROOT / ".cache" / "joblib")


#: Upper bound for the joblib disk cache, applied with ``Memory.reduce_size``.
CACHE_BYTES_LIMIT = os.environ.get("POKEWATCH_CACHE_LIMIT", "2G")

#: How every PokeWatch log line starts: a UTC time like 2026-12-01T21:41:16Z (``time.strftime``
#: format, used with ``time.gmtime``). scripts/run_pipeline.sh writes the same with ``date -u``.
LOG_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
