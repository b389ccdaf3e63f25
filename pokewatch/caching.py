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
* Cached values are arrays and small objects, loaded back with ``mmap_mode="r"``:
  a hit maps the stored arrays instead of reading them, so its cost does not grow
  with the history. The history itself is never cached here; the store's compacted
  history (:mod:`pokewatch.compaction`) already is that cache.
* Arguments that do not change a result (``workers``, ``engine``) are left out of
  the key, so a re-run with another worker count still hits; so are objects already
  identified by a fingerprint argument (``selections``, ``history``, ``precomputed``:
  the prices or results a batch already holds for exactly the keyed days).
"""
from __future__ import annotations

import inspect
import logging
import time
from dataclasses import dataclass
from functools import cache
from typing import Any
from collections.abc import Callable

import joblib

from pokewatch import config

logger = logging.getLogger(__name__)

#: Bump when fair value, signal, backtest or training logic changes.
CACHE_VERSION = "2026.11.28-2"


#: Arguments that never change a cached result and so are not part of the key.
NOT_IN_KEY = ("workers", "engine", "selections", "history", "precomputed")


@cache
def memory(location: str | None = None) -> joblib.Memory:
    return joblib.Memory(location or str(config.cache_dir()), mmap_mode="r", verbose=0)


def memorized(func: Callable):
    """``func`` wrapped by the disk cache, with :data:`NOT_IN_KEY` arguments ignored."""
    ignore = [name for name in NOT_IN_KEY if name in inspect.signature(func).parameters]
    return memory().cache(func, ignore=ignore)


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
    cached = memorized(func)
    try:
        hit = bool(cached.check_call_in_cache(*args, **kwargs))
    except Exception:  # an unreadable entry counts as a miss
        hit = False
    try:
        value = cached(*args, **kwargs)
    except (EOFError, OSError, ValueError, KeyError, ImportError, AttributeError) as exc:
        # joblib already recomputes when an entry fails to load; this covers the
        # rarer case where the broken entry surfaces as an exception anyway.
        logger.warning("cache entry for %s was unreadable (%s); recomputing", func.__name__, exc)
        value, _metadata = cached.call(*args, **kwargs)  # recompute and overwrite the entry
        hit = False
    seconds = time.perf_counter() - started
    logger.info("%s: cache %s (%.2fs)", func.__name__, "hit" if hit else "miss", seconds)
    try:
        mem.reduce_size(bytes_limit=config.CACHE_BYTES_LIMIT)
    except Exception as exc:  # bounding the cache must never fail a run
        logger.warning("could not bound the cache: %s", exc)
    return CachedResult(value=value, hit=hit, seconds=seconds)
