"""The yardsticks for the fair-value + signal kernel: a plain single-pass loop and a pure memory-traffic floor.

Why: "within 2x of a plain loop" needs the plain loop, written as simply as the
job allows, and "near the memory floor" needs the floor. Both live here, outside the
package, so the package's kernel cannot quietly become its own yardstick.

* :func:`plain_rule` computes exactly what ``pokewatch.core.kernels.rule_rows`` computes
  for a rule without confirmations and a prior-``window`` rolling mean: per row the
  fair value (pandas' Kahan-compensated rolling mean, so the numbers are bit for bit
  the same), the deviation, and BUY/SELL/HOLD with the same eligibility (an earlier
  observation, the price and every price in the window at least ``min_price``) in
  one loop per series, with no pattern, no scratch arrays and no generality;
* :func:`memory_floor` reads each price and writes the same three outputs (8 + 8 + 1
  bytes a row) with no arithmetic: no kernel writing those outputs can be faster.

Both split the series over threads the same way the package does
(``pokewatch.core.kernels.series_ranges`` semantics: contiguous ranges of about equal rows).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

HOLD, BUY, SELL = 1, 0, 2


@njit(cache=True, nogil=True)
def _plain_series(values, window, buy_cut, sell_cut, min_price, fair, dev, codes):
    n = len(values)
    nobs = 0
    sum_x = 0.0
    neg_ct = 0
    comp_add = 0.0
    comp_remove = 0.0
    same = 0
    prev = 0.0
    below = 0
    f = np.nan
    for i in range(n):
        p = values[i]
        fair[i] = f                                      # mean of the prior `window` prices
        d = (p - f) / f if f > 0 else np.nan
        dev[i] = d
        c = HOLD
        if i >= 1 and p >= min_price and below == 0 and d == d:
            if d <= buy_cut:
                c = BUY
            elif d >= sell_cut:
                c = SELL
        codes[i] = c
        if i >= window:                                  # values[i - window] leaves the window
            val = values[i - window]
            nobs -= 1
            y = -val - comp_remove
            t = sum_x + y
            comp_remove = t - sum_x - y
            sum_x = t
            if val < 0:
                neg_ct -= 1
            if val < min_price:
                below -= 1
        nobs += 1                                        # values[i] enters it
        y = p - comp_add
        t = sum_x + y
        comp_add = t - sum_x - y
        sum_x = t
        if p < 0:
            neg_ct += 1
        if p < min_price:
            below += 1
        same = 1 if i == 0 or p != prev else same + 1
        prev = p
        r = sum_x / nobs
        if same >= nobs:
            r = prev
        elif neg_ct == 0 and r < 0:
            r = 0.0
        elif neg_ct == nobs and r > 0:
            r = 0.0
        f = r


@njit(cache=True, nogil=True)
def _plain_into(prices, bounds, first, last, window, buy_cut, sell_cut, min_price, fair, dev, codes):
    for s in range(first, last):
        lo, hi = bounds[s], bounds[s + 1]
        _plain_series(prices[lo:hi], window, buy_cut, sell_cut, min_price, fair[lo:hi], dev[lo:hi], codes[lo:hi])


@njit(cache=True, nogil=True)
def _floor_into(prices, lo, hi, fair, dev, codes):
    for i in range(lo, hi):
        p = prices[i]
        fair[i] = p
        dev[i] = p
        codes[i] = 1


def ranges(bounds: np.ndarray, parts: int) -> list[tuple[int, int]]:
    """Up to ``parts`` contiguous series ranges of about equal row counts."""
    n_series, n_rows = len(bounds) - 1, int(bounds[-1])
    parts = max(1, min(parts, n_series))
    cuts = np.searchsorted(bounds, np.arange(1, parts) * (n_rows / parts))
    edges = np.unique(np.concatenate(([0], np.clip(cuts, 0, n_series), [n_series])))
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def _run(work, parts: list[tuple[int, int]]) -> None:
    if len(parts) == 1:
        work(*parts[0])
        return
    with ThreadPoolExecutor(len(parts)) as pool:
        for future in [pool.submit(work, *p) for p in parts]:
            future.result()


def plain_rule(prices: np.ndarray, bounds: np.ndarray, window: int, buy_cut: float, sell_cut: float,
               min_price: float, threads: int = 1, out: tuple | None = None) -> tuple:
    """(fair, deviation, codes) of every row, as described in the module docstring."""
    n = len(prices)
    fair, dev, codes = out if out is not None else (np.empty(n), np.empty(n), np.empty(n, np.int8))
    _run(lambda a, b: _plain_into(prices, bounds, a, b, window, buy_cut, sell_cut, min_price, fair, dev, codes),
         ranges(bounds, threads))
    return fair, dev, codes


def memory_floor(prices: np.ndarray, bounds: np.ndarray, threads: int = 1, out: tuple | None = None) -> tuple:
    """Read every price and write three outputs of the same sizes, nothing else."""
    n = len(prices)
    fair, dev, codes = out if out is not None else (np.empty(n), np.empty(n), np.empty(n, np.int8))
    _run(lambda a, b: _floor_into(prices, int(bounds[a]), int(bounds[b]), fair, dev, codes), ranges(bounds, threads))
    return fair, dev, codes
