"""Compiled single passes over series-sorted price arrays (numba).

Why compiled loops: fair value, signal and backtest are all "walk each series once,
in date order". Expressed as numpy array operations over 14 million rows they take
a dozen full passes and allocations each, and a rolling median or EWM through
pandas' grouped windows takes seconds. One numba loop per series does the same
work in one pass with no temporaries, and it parallelises trivially by sharding
series (see :mod:`pokewatch.parallel`).

Every kernel takes the same layout: ``prices`` (float64), ``days`` (int32, days
since 1970-01-01) and ``bounds`` (int64, ``n_series + 1`` offsets: series ``s``
owns rows ``bounds[s]:bounds[s+1]``, sorted by day). The arithmetic mirrors the
reference implementations operation for operation so results are identical:

* rolling mean: pandas' ``roll_mean`` (Kahan-compensated add/remove, exact
  result on windows of equal values);
* EWM: pandas' ``ewm`` with ``adjust=True``;
* rolling median: exact order statistics, ``(lower + upper) / 2`` on even counts;
* deviation and classification: :func:`pokewatch.signals.deviation` and
  :func:`pokewatch.signals.classify`.

Compiled code is cached on disk (``cache=True``), so only the first process after
an install pays the few seconds of compilation.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit, types

# Entry points are compiled eagerly for one signature each, with read-only inputs
# (writable arrays convert to them), so memory-mapped and fresh arrays share one
# compiled version, cached on disk, and no call ever pauses to compile.
_F8 = types.Array(types.float64, 1, "C", readonly=True)
_I4 = types.Array(types.int32, 1, "C", readonly=True)
_I8 = types.Array(types.int64, 1, "C", readonly=True)
_I1 = types.Array(types.int8, 1, "C", readonly=True)
_OUT_F8, _OUT_I1, _OUT_U1 = types.float64[::1], types.int8[::1], types.uint8[::1]
_TABLES = types.Tuple((types.int64[:, ::1], types.float64[:, ::1]))

#: Method codes shared with :mod:`pokewatch.fair_value`.
MEAN_PRIOR, MEAN_INCLUDING_TODAY, EWM_PRIOR, MEDIAN_PRIOR = 0, 1, 2, 3

#: Columns of the per-series count table returned by :func:`backtest_partials`.
COUNT_COLUMNS = (
    "eligible", "covered", "scored", "series_scored",
    "scored_buy", "scored_hold", "scored_sell", "good_buy", "good_sell", "hit_buy", "hit_sell",
    "covered_buy", "covered_hold", "covered_sell", "forecast", "flip_pairs", "flips", "first_day",
)
#: Columns of the per-series sum table returned by :func:`backtest_partials`.
SUM_COLUMNS = (
    "return_buy", "return_hold", "return_sell",
    "abs_pct_error_fair", "abs_pct_error_naive", "sq_error_fair", "sq_error_naive",
)
_C = {name: i for i, name in enumerate(COUNT_COLUMNS)}
_S = {name: i for i, name in enumerate(SUM_COLUMNS)}
C_ELIGIBLE, C_COVERED, C_SCORED, C_SERIES = _C["eligible"], _C["covered"], _C["scored"], _C["series_scored"]
C_SCORED_SIG, C_GOOD_BUY, C_GOOD_SELL = _C["scored_buy"], _C["good_buy"], _C["good_sell"]
C_HIT_BUY, C_HIT_SELL, C_COVERED_SIG = _C["hit_buy"], _C["hit_sell"], _C["covered_buy"]
C_FORECAST, C_PAIRS, C_FLIPS, C_FIRST_DAY = _C["forecast"], _C["flip_pairs"], _C["flips"], _C["first_day"]
S_RETURN, S_APE_FAIR, S_APE_NAIVE = _S["return_buy"], _S["abs_pct_error_fair"], _S["abs_pct_error_naive"]
S_SQ_FAIR, S_SQ_NAIVE = _S["sq_error_fair"], _S["sq_error_naive"]
#: ``first_day`` of a series with no row in the scored window.
NO_DAY = np.iinfo(np.int64).max

#: Bits of the per-row flags written by :func:`backtest_partials`.
ROW_IN_WINDOW, ROW_ELIGIBLE, ROW_COVERED, ROW_SCORED, ROW_FORECAST = 1, 2, 4, 8, 16


# -- fair value, one series at a time ------------------------------------------------
@njit(cache=True, nogil=True)
def _rolling_mean(values, window, shift, out):
    """pandas ``rolling(window, min_periods=1).mean()`` of ``values``, written ``shift`` rows later."""
    n = len(values)
    for i in range(shift):
        if i < n:
            out[i] = np.nan
    nobs = 0
    sum_x = 0.0
    neg_ct = 0
    comp_add = 0.0
    comp_remove = 0.0
    same = 0
    prev = values[0] if n else 0.0
    for i in range(n - shift):
        start = i - window + 1
        if start < 0:
            start = 0
        if i == 0:
            prev = values[0]
            same = 0
        if i > 0 and start > 0:
            val = values[start - 1]          # leaves the window
            nobs -= 1
            y = -val - comp_remove
            t = sum_x + y
            comp_remove = t - sum_x - y
            sum_x = t
            if val < 0:
                neg_ct -= 1
        val = values[i]                      # enters the window
        nobs += 1
        y = val - comp_add
        t = sum_x + y
        comp_add = t - sum_x - y
        sum_x = t
        if val < 0:
            neg_ct += 1
        if val == prev:
            same += 1
        else:
            same = 1
        prev = val
        result = sum_x / nobs
        if same >= nobs:
            result = prev
        elif neg_ct == 0 and result < 0:
            result = 0.0
        elif neg_ct == nobs and result > 0:
            result = 0.0
        out[i + shift] = result


@njit(cache=True, nogil=True)
def _ewm_prior(values, com, out):
    """pandas ``ewm(com=com, adjust=True).mean()`` of ``values``, one row later."""
    n = len(values)
    if n == 0:
        return
    out[0] = np.nan
    alpha = 1.0 / (1.0 + com)
    old_wt_factor = 1.0 - alpha
    new_wt = 1.0
    weighted = values[0]
    old_wt = 1.0
    if n > 1:
        out[1] = weighted
    for i in range(1, n - 1):
        cur = values[i]
        if weighted == weighted:
            old_wt *= old_wt_factor
            if weighted != cur:
                weighted = old_wt * weighted + new_wt * cur
                weighted = weighted / (old_wt + new_wt)
            old_wt += new_wt
        else:
            weighted = cur
        out[i + 1] = weighted


@njit(cache=True, nogil=True)
def _median_prior(values, window, buffer, out):
    """Median of the prior ``window`` observations (pandas' rolling median, one row later)."""
    n = len(values)
    if n == 0:
        return
    out[0] = np.nan
    count = 0
    for i in range(n - 1):
        if count == window:                  # drop values[i - window] from the sorted buffer
            old = values[i - window]
            k = 0
            while buffer[k] != old:
                k += 1
            for m in range(k, count - 1):
                buffer[m] = buffer[m + 1]
            count -= 1
        val = values[i]                      # insert values[i], keeping the buffer sorted
        k = count
        while k > 0 and buffer[k - 1] > val:
            buffer[k] = buffer[k - 1]
            k -= 1
        buffer[k] = val
        count += 1
        mid = count // 2
        if count % 2:
            out[i + 1] = buffer[mid]
        else:
            out[i + 1] = (buffer[mid - 1] + buffer[mid]) / 2


@njit(cache=True, nogil=True)
def _series_fair(values, method, window, com, buffer, out):
    if len(values) == 0:
        return
    if method == MEAN_PRIOR:
        _rolling_mean(values, window, 1, out)
    elif method == MEAN_INCLUDING_TODAY:
        _rolling_mean(values, window, 0, out)
    elif method == EWM_PRIOR:
        _ewm_prior(values, com, out)
    else:
        _median_prior(values, window, buffer, out)


@njit(types.void(_F8, _I8, types.int64, types.int64, types.int64, types.int64, types.float64, _OUT_F8),
      cache=True, nogil=True)
def _fair_values_into(prices, bounds, first, last, method, window, com, out):
    buffer = np.empty(window + 1)
    for s in range(first, last):
        lo, hi = bounds[s], bounds[s + 1]
        _series_fair(prices[lo:hi], method, window, com, buffer, out[lo:hi])


def fair_values(prices, bounds, method, window, com, threads=None):
    """Fair value of every row (NaN where the method has nothing to look at yet)."""
    out = np.empty(len(prices))
    run_by_series(lambda first, last: _fair_values_into(prices, bounds, first, last, method, window, com, out),
                  bounds, threads)
    return out


# -- signals ---------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _classify(market, fair, buy_cut, sell_cut, min_price):
    """(deviation, code) of one row: 0 BUY, 1 HOLD, 2 SELL."""
    dev = (market - fair) / fair if fair > 0 else np.nan
    code = 1
    if market >= min_price and dev == dev:
        if dev <= buy_cut:
            code = 0
        if dev >= sell_cut:
            code = 2
    return dev, code


@njit(types.void(_F8, _I8, types.int64, types.int64, types.int64, types.int64, types.float64, types.float64,
                 types.float64, types.float64, _OUT_F8, _OUT_F8, _OUT_I1), cache=True, nogil=True)
def _signal_rows_into(prices, bounds, first, last, method, window, com, buy_cut, sell_cut, min_price,
                      fair, dev, codes):
    buffer = np.empty(window + 1)
    for s in range(first, last):
        lo, hi = bounds[s], bounds[s + 1]
        _series_fair(prices[lo:hi], method, window, com, buffer, fair[lo:hi])
        for i in range(lo, hi):
            d, c = _classify(prices[i], fair[i], buy_cut, sell_cut, min_price)
            dev[i] = d
            codes[i] = c


def signal_rows(prices, bounds, method, window, com, buy_cut, sell_cut, min_price, threads=None):
    """Fair value, deviation and signal code of every row, fused per series (one pass)."""
    n = len(prices)
    fair, dev, codes = np.empty(n), np.empty(n), np.empty(n, np.int8)
    run_by_series(lambda first, last: _signal_rows_into(prices, bounds, first, last, method, window, com, buy_cut,
                                                        sell_cut, min_price, fair, dev, codes), bounds, threads)
    return fair, dev, codes


@njit(_OUT_F8(_F8, _F8), cache=True, nogil=True)
def deviations(prices, fair):
    """(market - fair) / fair per row, NaN where fair is missing or not positive."""
    out = np.empty(len(prices))
    for i in range(len(prices)):
        f = fair[i]
        out[i] = (prices[i] - f) / f if f > 0 else np.nan
    return out


# -- backtest ------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _score_series(prices, days, fair, codes, horizon, start_day, end_day, min_price, target_return,
                  counts, sums, forward_return, flags, with_rows):
    """Accumulate one series' backtest counts and sums; optionally fill per-row outputs."""
    n = len(prices)
    ahead = 0                 # first row at or after day + horizon (days only increase)
    previous_signal = -1      # signal of the previous covered row of this series
    first_day = NO_DAY
    for i in range(n):
        price = prices[i]
        target_day = days[i] + horizon
        while ahead < n and days[ahead] < target_day:
            ahead += 1
        fwd = np.nan
        if ahead < n and days[ahead] == target_day:
            fwd = prices[ahead] / price - 1.0
        bits = 0
        if start_day <= days[i] <= end_day:
            bits |= ROW_IN_WINDOW
            if days[i] < first_day:
                first_day = days[i]
            if price >= min_price:
                bits |= ROW_ELIGIBLE
                counts[C_ELIGIBLE] += 1
                f = fair[i]
                if f == f:
                    bits |= ROW_COVERED
                    counts[C_COVERED] += 1
                    sig = codes[i]
                    counts[C_COVERED_SIG + sig] += 1
                    if previous_signal >= 0:
                        counts[C_PAIRS] += 1
                        if sig != previous_signal:
                            counts[C_FLIPS] += 1
                    previous_signal = sig
                    if fwd == fwd:
                        bits |= ROW_SCORED
                        counts[C_SCORED] += 1
                        counts[C_SCORED_SIG + sig] += 1
                        sums[S_RETURN + sig] += fwd
                        good_buy = fwd >= target_return
                        good_sell = fwd <= -target_return
                        if good_buy:
                            counts[C_GOOD_BUY] += 1
                            if sig == 0:
                                counts[C_HIT_BUY] += 1
                        if good_sell:
                            counts[C_GOOD_SELL] += 1
                            if sig == 2:
                                counts[C_HIT_SELL] += 1
                    if i + 1 < n:
                        next_price = prices[i + 1]
                        next_fair = fair[i + 1]
                        if next_fair == next_fair:
                            bits |= ROW_FORECAST
                            counts[C_FORECAST] += 1
                            err_fair = next_fair - next_price
                            err_naive = price - next_price
                            sums[S_APE_FAIR] += abs(err_fair) / next_price
                            sums[S_APE_NAIVE] += abs(err_naive) / next_price
                            sums[S_SQ_FAIR] += err_fair ** 2
                            sums[S_SQ_NAIVE] += err_naive ** 2
        if with_rows:
            forward_return[i] = fwd
            flags[i] = bits
    if counts[C_SCORED] > 0:
        counts[C_SERIES] = 1
    counts[C_FIRST_DAY] = first_day


@njit(types.void(_F8, _I4, _F8, _I1, _I8, types.int64, types.int64, types.int64, types.int64, types.int64,
                 types.float64, types.float64, types.boolean, types.int64[:, ::1], types.float64[:, ::1], _OUT_F8,
                 _OUT_U1), cache=True, nogil=True)
def _backtest_into(prices, days, fair, codes, bounds, first, last, horizon, start_day, end_day, min_price,
                   target_return, with_rows, counts, sums, forward_return, flags):
    for s in range(first, last):
        lo, hi = bounds[s], bounds[s + 1]
        if with_rows:
            _score_series(prices[lo:hi], days[lo:hi], fair[lo:hi], codes[lo:hi], horizon, start_day, end_day,
                          min_price, target_return, counts[s], sums[s], forward_return[lo:hi], flags[lo:hi], True)
        else:
            _score_series(prices[lo:hi], days[lo:hi], fair[lo:hi], codes[lo:hi], horizon, start_day, end_day,
                          min_price, target_return, counts[s], sums[s], forward_return, flags, False)


def backtest_partials(prices, days, fair, codes, bounds, horizon, start_day, end_day, min_price, target_return,
                      with_rows, threads=None):
    """Per-series backtest counts and sums, plus per-row forward returns and flags.

    Returns:
        ``counts`` int64 (n_series, len(COUNT_COLUMNS)), ``sums`` float64
        (n_series, len(SUM_COLUMNS)), ``forward_return`` float64 and ``flags`` uint8
        per row (empty unless ``with_rows``). Summing the tables over series, in
        series order, gives the KPIs; any sharding of series gives the same tables.
    """
    n_series = len(bounds) - 1
    counts = np.zeros((n_series, len(COUNT_COLUMNS)), np.int64)
    sums = np.zeros((n_series, len(SUM_COLUMNS)))
    n_rows = len(prices) if with_rows else 0
    forward_return = np.empty(n_rows)
    flags = np.zeros(n_rows, np.uint8)
    run_by_series(lambda first, last: _backtest_into(
        prices, days, fair, codes, bounds, first, last, horizon, start_day, end_day, min_price, target_return,
        with_rows, counts, sums, forward_return, flags), bounds, threads)
    return counts, sums, forward_return, flags


@njit(_TABLES(_F8, _I4, _I8, types.int64, types.int64, types.float64, types.float64, types.float64,
              types.float64, types.int64, types.int64, types.int64, types.float64), cache=True, nogil=True)
def candidate_partials(prices, days, bounds, method, window, com, buy_cut, sell_cut, min_price, horizon,
                       start_day, end_day, target_return):
    """Fair value, signal and backtest of one candidate fused per series: no per-row arrays.

    The same tables as :func:`backtest_partials` on the output of
    :func:`signal_rows`, with memory for one series only.
    """
    n_series = len(bounds) - 1
    counts = np.zeros((n_series, len(COUNT_COLUMNS)), np.int64)
    sums = np.zeros((n_series, len(SUM_COLUMNS)))
    longest = 0
    for s in range(n_series):
        longest = max(longest, bounds[s + 1] - bounds[s])
    fair = np.empty(longest)
    codes = np.empty(longest, np.int8)
    buffer = np.empty(window + 1)
    unused_rows = np.empty(0)
    unused_flags = np.zeros(0, np.uint8)
    for s in range(n_series):
        lo, hi = bounds[s], bounds[s + 1]
        n = hi - lo
        _series_fair(prices[lo:hi], method, window, com, buffer, fair[:n])
        for i in range(n):
            codes[i] = _classify(prices[lo + i], fair[i], buy_cut, sell_cut, min_price)[1]
        _score_series(prices[lo:hi], days[lo:hi], fair[:n], codes[:n], horizon, start_day, end_day, min_price,
                      target_return, counts[s], sums[s], unused_rows, unused_flags, False)
    return counts, sums


@njit([types.Tuple((types.int32[::1], types.int64[::1]))(types.Array(t, 1, "A", readonly=True), types.int64)
       for t in (types.int8, types.int16, types.int32)], cache=True, nogil=True)
def local_codes(codes, n_categories):
    """Codes re-numbered over just the categories they use (in order), and those categories.

    ``codes`` index ``n_categories`` categories (-1 = null, kept). Returns
    ``(local, used)`` with ``categories[used][local] == categories[codes]``.
    """
    mark = np.full(n_categories, -1, np.int64)
    for c in codes:
        if c >= 0:
            mark[c] = 0
    used = np.empty(n_categories, np.int64)
    k = 0
    for j in range(n_categories):
        if mark[j] == 0:
            mark[j] = k
            used[k] = j
            k += 1
    local = np.empty(len(codes), np.int32)
    for i in range(len(codes)):
        c = codes[i]
        local[i] = mark[c] if c >= 0 else -1
    return local, used[:k]


@njit(types.int32[::1](types.Array(types.int64, 1, "A", readonly=True), types.int64), cache=True, nogil=True)
def floor_divide_to_int32(ticks, per_day):
    """``floor(ticks / per_day)`` as int32, without an int64 temporary (timestamps to day numbers)."""
    out = np.empty(len(ticks), np.int32)
    for i in range(len(ticks)):
        out[i] = ticks[i] // per_day
    return out


# -- threads ------------------------------------------------------------------------------
#: Threads for the in-process passes (``POKEWATCH_THREADS``; default: the machine's cores, at most 8).
THREADS = max(1, min(int(os.environ.get("POKEWATCH_THREADS", 0)) or (os.cpu_count() or 1), 8))
_MIN_ROWS_PER_THREAD = 250_000
_POOL: ThreadPoolExecutor | None = None


def series_ranges(bounds: np.ndarray, parts: int) -> list[tuple[int, int]]:
    """Up to ``parts`` contiguous series ranges of about equal row counts."""
    n_series, n_rows = len(bounds) - 1, int(bounds[-1])
    parts = max(1, min(parts, n_series, n_rows // _MIN_ROWS_PER_THREAD or 1))
    cuts = np.searchsorted(bounds, np.arange(1, parts) * (n_rows / parts))
    edges = np.unique(np.concatenate(([0], np.clip(cuts, 0, n_series), [n_series])))
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def run_by_series(work, bounds: np.ndarray, threads: int | None = None) -> None:
    """``work(first, last)`` over series ranges, on ``threads`` threads (the kernels release the GIL).

    Each range writes its own rows and series of preallocated outputs, so the result
    does not depend on the number of threads.
    """
    global _POOL
    ranges = series_ranges(bounds, THREADS if threads is None else threads)
    if len(ranges) == 1:
        work(*ranges[0])
        return
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="pokewatch-kernel")
    for future in [_POOL.submit(work, first, last) for first, last in ranges]:
        future.result()


# -- layout helpers ----------------------------------------------------------------------
@njit(types.boolean(_I4, _I4), cache=True, nogil=True)
def is_sorted_by_series_and_day(codes, days):
    """True when rows are ordered by series code, then strictly by day."""
    for i in range(1, len(codes)):
        if codes[i] < codes[i - 1] or (codes[i] == codes[i - 1] and days[i] <= days[i - 1]):
            return False
    return True


@njit([types.int8[::1](types.Array(types.int8, 1, "C", readonly=True), _I8, types.int64, types.int8[::1]),
       types.int16[::1](types.Array(types.int16, 1, "C", readonly=True), _I8, types.int64, types.int16[::1]),
       types.int32[::1](_I4, _I8, types.int64, types.int32[::1])], cache=True, nogil=True)
def expand_runs(values, heads, n, out):
    """``out[heads[k]:heads[k+1]] = values[k]`` (the last run ends at ``n``)."""
    for k in range(len(heads)):
        end = heads[k + 1] if k + 1 < len(heads) else n
        for i in range(heads[k], end):
            out[i] = values[k]
    return out
