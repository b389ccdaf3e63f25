"""Helpers for the store's columnar layout: rows sorted by series then day, strings as dictionary codes.

Why numpy in chunks, not numba: collecting a day needs these few loops (re-numbering
dictionary codes, expanding run-length codes, checking the sort, converting day
numbers) and none of the fair-value passes. As numba functions they made every
collect kernel load numba and initialise LLVM, about 0.5 s, for work that takes
milliseconds on a day's rows. Done chunk by chunk (:data:`CHUNK` rows at a time), numpy
needs no temporary larger than a chunk, which is what the compiled loops were for
on 32-million-row columns, and runs at about the same speed.

:data:`THREADS` is the one setting of how many threads the in-process passes use.
"""
from __future__ import annotations

import os

import numpy as np

#: Threads for the in-process passes (``POKEWATCH_THREADS``; default: the machine's cores, at most 8).
THREADS = max(1, min(int(os.environ.get("POKEWATCH_THREADS", 0)) or (os.cpu_count() or 1), 8))
#: Rows per step: temporaries stay at a few MB whatever the column's length.
CHUNK = 1 << 20


def _chunks(n: int):
    return ((start, min(start + CHUNK, n)) for start in range(0, n, CHUNK))


def local_codes(codes: np.ndarray, n_categories: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes re-numbered over just the categories they use (in order), and those categories.

    ``codes`` index ``n_categories`` categories (-1 = null, kept). Returns int32
    ``local`` and int64 ``used`` with ``categories[used][local] == categories[codes]``.
    """
    codes = np.asarray(codes)
    present = np.zeros(n_categories + 1, bool)          # slot 0 is null
    for start, stop in _chunks(len(codes)):
        present[codes[start:stop].astype(np.int64) + 1] = True
    present[0] = False
    used = np.flatnonzero(present[1:]).astype(np.int64)
    mapping = np.full(n_categories + 1, -1, np.int32)
    mapping[used + 1] = np.arange(len(used), dtype=np.int32)
    local = np.empty(len(codes), np.int32)
    for start, stop in _chunks(len(codes)):
        local[start:stop] = mapping[codes[start:stop].astype(np.int64) + 1]
    return local, used


def floor_divide_to_int32(ticks: np.ndarray, per_day: int) -> np.ndarray:
    """``floor(ticks / per_day)`` as int32, without an int64 temporary of the whole column (timestamps to days)."""
    ticks = np.asarray(ticks)
    out = np.empty(len(ticks), np.int32)
    for start, stop in _chunks(len(ticks)):
        out[start:stop] = ticks[start:stop] // per_day
    return out


def is_sorted_by_series_and_day(codes: np.ndarray, days: np.ndarray) -> bool:
    """True when rows are ordered by series code, then strictly by day."""
    codes, days = np.asarray(codes), np.asarray(days)
    for start, stop in _chunks(max(len(codes) - 1, 0)):
        before, after = codes[start:stop], codes[start + 1:stop + 1]
        if not ((after > before) | ((after == before) & (days[start + 1:stop + 1] > days[start:stop]))).all():
            return False
    return True


def expand_runs(values: np.ndarray, heads: np.ndarray, n: int, dtype) -> np.ndarray:
    """``out[heads[k]:heads[k+1]] = values[k]`` (the last run ends at ``n``), as a new ``dtype`` array."""
    lengths = np.diff(np.append(np.asarray(heads, np.int64), n))
    return np.repeat(np.asarray(values).astype(dtype, copy=False), lengths)


def scale_to_int64(days: np.ndarray, factor: int) -> np.ndarray:
    """``days * factor`` as int64 (day numbers to nanoseconds), without an extra temporary of the whole column."""
    days = np.asarray(days)
    out = np.empty(len(days), np.int64)
    for start, stop in _chunks(len(days)):
        np.multiply(days[start:stop], np.int64(factor), out=out[start:stop])
    return out
