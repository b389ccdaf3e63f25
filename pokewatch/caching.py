"""Disk caching of the expensive steps with joblib.Memory, used with care.

Rules this module enforces (from joblib's own advice):

* Cached functions live in package modules, never in notebooks, so a kernel
  restart does not invalidate them.
* Keys are cheap fingerprints (store file names, sizes, mtimes; parameters; a
  ``cache_version``), never a hash of a multi-million-row DataFrame.
* joblib only notices edits to the decorated function itself, so every cached
  step takes ``cache_version`` and :data:`CACHE_VERSION` is bumped when any logic
  behind a step changes.
* The cache is bounded with ``Memory.reduce_size`` after every step.
* A corrupted entry is recomputed, never fatal.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import joblib

from pokewatch import config

logger = logging.getLogger(__name__)

#: Bump when fair value, signal, backtest or training logic changes.
CACHE_VERSION = "2026.11.28-1"


@lru_cache(maxsize=None)
def memory(location: str | None = None) -> joblib.Memory:
    return joblib.Memory(location or str(config.cache_dir()), verbose=0)


@dataclass
class CachedResult:
    """A step's value, whether it came from the cache, and how long it took."""

    value: Any
    hit: bool
    seconds: float


def cached_call(func: Callable, *args, **kwargs) -> CachedResult:
    """Call ``func`` through the disk cache and report whether it was a hit.

    ``func`` must be a plain module-level function; every argument is part of the
    key, so pass fingerprints and parameters, not DataFrames.
    """
    started = time.perf_counter()
    mem = memory()
    memorized = mem.cache(func)
    try:
        hit = bool(memorized.check_call_in_cache(*args, **kwargs))
    except Exception:  # an unreadable entry counts as a miss
        hit = False
    try:
        value = memorized(*args, **kwargs)
    except (EOFError, OSError, ValueError, KeyError, ImportError, AttributeError) as exc:
        # joblib already recomputes when an entry fails to load; this covers the
        # rarer case where the broken entry surfaces as an exception anyway.
        logger.warning("cache entry for %s was unreadable (%s); recomputing", func.__name__, exc)
        value, _metadata = memorized.call(*args, **kwargs)  # recompute and overwrite the entry
        hit = False
    seconds = time.perf_counter() - started
    logger.info("%s: cache %s (%.2fs)", func.__name__, "hit" if hit else "miss", seconds)
    try:
        mem.reduce_size(bytes_limit=config.CACHE_BYTES_LIMIT)
    except Exception as exc:  # bounding the cache must never fail a run
        logger.warning("could not bound the cache: %s", exc)
    return CachedResult(value=value, hit=hit, seconds=seconds)
