"""Disk caching of the expensive steps with joblib.Memory, used with care.

Rules this module enforces (from joblib's own advice):

* Cached functions live in package modules, never in notebooks, so a kernel
  restart does not invalidate them.
* Keys are cheap fingerprints (store file names, sizes, mtimes; parameters; a
  ``cache_version``), never a hash of a multi-million-row DataFrame.
* joblib only notices edits to the decorated function itself, so every cached
  step takes ``cache_version``: :func:`code_version`, a hash of the source of
  :mod:`pokewatch.run.steps` and of every package module it imports, transitively. Any
  edit to the logic behind a step therefore misses the cache, with nothing to bump
  by hand. ``CACHE_VERSION`` is that hash, computed on first use.
* The cache is bounded with ``Memory.reduce_size`` after every step.
* Only a failure to *load* an entry leads to a recompute; an error raised by the
  step itself propagates at once, so a bad parameter fails once, with its own
  message. A hit is reported only when the entry actually loaded.
* Cached values are arrays and small objects, loaded back with ``mmap_mode="r"``:
  a hit maps the stored arrays instead of reading them, so its cost does not grow
  with the history. The history itself is never cached here; the store's compacted
  history (:mod:`pokewatch.data.compaction`) already is that cache.
* Arguments that do not change a result (``workers``, ``engine``) are left out of
  the key, so a re-run with another worker count still hits; so are objects already
  identified by a fingerprint argument (``selections``, ``history``, ``precomputed``:
  the prices or results a batch already holds for exactly the keyed days).
"""
from __future__ import annotations

import hashlib
import inspect
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import joblib

from pokewatch import config

logger = logging.getLogger(__name__)

#: The module holding the cached steps; :func:`code_version` covers it and what it imports.
STEPS_MODULE = "pokewatch.run.steps"
_PACKAGE_DIR = Path(__file__).resolve().parents[1]

#: Arguments that never change a cached result and so are not part of the key.
NOT_IN_KEY = ("workers", "engine", "selections", "selection", "history", "precomputed")


def _module_file(name: str) -> Path | None:
    """The source file of package module ``name`` (``pokewatch.x.y``), found without importing it."""
    parts = name.split(".")
    if parts[0] != _PACKAGE_DIR.name:
        return None
    base = _PACKAGE_DIR.joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


#: ``from X import a, b`` (parenthesised over lines too) and ``import X, Y`` at the start of a line.
_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#]*)|import[ \t]+([^\n#]*))",
                     re.MULTILINE)


def _imported_modules(name: str, path: Path) -> set[str]:
    """Package modules ``path`` (module ``name``) imports anywhere in its code, lazy imports included.

    A regular expression over the source rather than a parse: it costs microseconds,
    and an import it over-reports (one quoted in a docstring) only widens the version.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for module, names, plain in _IMPORT.findall(path.read_text(encoding="utf-8")):
        if plain:
            found |= {item.split()[0] for item in plain.split(",") if item.strip()}
            continue
        dots = len(module) - len(module.lstrip("."))
        if dots:
            anchor = package.rsplit(".", dots - 1)[0] if dots > 1 else package
            module = f"{anchor}.{module[dots:]}" if module[dots:] else anchor
        found.add(module)
        found |= {f"{module}.{item.split()[0]}" for item in names.strip("()").split(",") if item.strip()}
    return {m for m in found if _module_file(m) is not None}


@cache
def code_version(module: str = STEPS_MODULE) -> str:
    """A short hash of the source bytes of ``module`` and the package modules it imports, transitively.

    Computed once per process: a few dozen small files are read and hashed.
    """
    seen: dict[str, Path] = {}
    pending = [module]
    while pending:
        name = pending.pop()
        path = _module_file(name)
        if name in seen or path is None:
            continue
        seen[name] = path
        pending += sorted(_imported_modules(name, path) - set(seen))
    digest = hashlib.sha256()
    for name in sorted(seen):
        digest.update(name.encode() + b"\0" + seen[name].read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def __getattr__(name: str):
    """``CACHE_VERSION``: :func:`code_version` of the steps, computed when first asked for."""
    if name == "CACHE_VERSION":
        return code_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


_MISSING = object()


def _load(cached, func: Callable, args, kwargs):
    """The stored value of this call, or ``_MISSING`` when there is none or it cannot be loaded."""
    try:
        if not cached.check_call_in_cache(*args, **kwargs):
            return _MISSING
        # In the cache, so call_and_shelve only returns a reference; get() loads it.
        return cached.call_and_shelve(*args, **kwargs).get()
    except Exception as exc:  # noqa: BLE001 - any failure to read an entry means: compute it again
        logger.warning("cache entry for %s was unreadable (%s: %s); recomputing", func.__name__,
                       type(exc).__name__, exc)
        _forget(cached, args, kwargs)
        return _MISSING


def _forget(cached, args, kwargs) -> None:
    """Remove an unreadable entry, so computing it stores it afresh.

    joblib writes an entry by renaming a temporary file onto it and then loads what it
    wrote; where a damaged entry left a folder in place of that file, the rename and the
    load fail, and the step's result would be lost after computing it.
    """
    try:
        if cached.check_call_in_cache(*args, **kwargs):  # only then does call_and_shelve not compute
            cached.call_and_shelve(*args, **kwargs).clear()
    except Exception as exc:  # noqa: BLE001 - the recompute still runs; joblib reports what it cannot store
        logger.warning("could not remove the unreadable cache entry of %s (%s: %s)", cached.func.__name__,
                       type(exc).__name__, exc)


def cached_call(func: Callable, *args, bound: bool = True, **kwargs) -> CachedResult:
    """Call ``func`` through the disk cache and report whether it was a hit.

    ``func`` must be a plain module-level function; every argument is part of the
    key, so pass fingerprints and parameters, not DataFrames. ``bound=False`` leaves
    bounding the cache to the caller: a batch of calls bounds it once, since each
    bounding lists every entry of the cache (about 2.4 ms per call on a demo cache,
    more as it grows).

    Raises:
        Whatever ``func`` raises, once: only loading an entry is retried, never the step.
    """
    started = time.perf_counter()
    cached = memorized(func)
    value = _load(cached, func, args, kwargs)
    hit = value is not _MISSING
    if not hit:
        value, _metadata = cached.call(*args, **kwargs)  # compute and (over)write the entry
    seconds = time.perf_counter() - started
    logger.info("%s: cache %s (%.2fs)", func.__name__, "hit" if hit else "miss", seconds)
    if bound:
        bound_cache()
    return CachedResult(value=value, hit=hit, seconds=seconds)


def bound_cache() -> None:
    """Keep the disk cache under ``config.CACHE_BYTES_LIMIT`` (oldest entries go first)."""
    try:
        memory().reduce_size(bytes_limit=config.CACHE_BYTES_LIMIT)
    except Exception as exc:  # noqa: BLE001 - bounding the cache must never fail a run
        logger.warning("could not bound the cache: %s", exc)
