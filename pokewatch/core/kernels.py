"""Compiled single passes over series-sorted price arrays (numba).

Why compiled loops: fair value, signal, training and backtest are all "walk each
series once, in date order". Expressed as numpy array operations over 14 million rows
they take a dozen full passes and allocations each, and a rolling median or EWM
through pandas' grouped windows takes seconds. One numba loop per series does the
same work in one pass with no temporaries, and it parallelises trivially by sharding
series (see :mod:`pokewatch.core.parallel`).

Every kernel takes the same layout: ``prices`` (float64), ``days`` (int32, days
since 1970-01-01), ``low`` (float64 lowest listing price per row, or an empty array
when the source has none) and ``bounds`` (int64, ``n_series + 1`` offsets: series
``s`` owns rows ``bounds[s]:bounds[s+1]``, sorted by day). Fair values mirror the
reference implementations operation for operation so results are identical:

* rolling mean: pandas' ``roll_mean`` (Kahan-compensated add/remove, exact
  result on windows of equal values);
* EWM: pandas' ``ewm`` with ``adjust=True``;
* rolling median: exact order statistics, ``(lower + upper) / 2`` on even counts.

The signal rule itself (thresholds, eligibility, confirmations) is
:mod:`pokewatch.core.rules`; :func:`series_rows` is its one implementation, shared by
the rule pass (:func:`rule_rows`), the training pass (:func:`candidate_histogram`)
and, through :func:`classify`, the model's single-card lookups.

Compiled code is cached on disk (``cache=True``), so only the first process after
an install pays the few seconds of compilation.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit, types

from pokewatch.core import methods, rules
from pokewatch.core.columnar import THREADS

# Entry points are compiled eagerly for one signature each, with read-only inputs
# (writable arrays convert to them), so memory-mapped and fresh arrays share one
# compiled version, cached on disk, and no call ever pauses to compile.
_F8 = types.Array(types.float64, 1, "C", readonly=True)
_I4 = types.Array(types.int32, 1, "C", readonly=True)
_I8 = types.Array(types.int64, 1, "C", readonly=True)
_I1 = types.Array(types.int8, 1, "C", readonly=True)
_OUT_F8, _OUT_I1, _OUT_U1 = types.float64[::1], types.int8[::1], types.uint8[::1]

#: The fair-value computations, by the codes of the method registry (:mod:`pokewatch.core.methods`).
MEAN_PRIOR, MEAN_INCLUDING_TODAY, EWM_PRIOR, MEDIAN_PRIOR = (methods.MEAN_PRIOR, methods.MEAN_INCLUDING_TODAY,
                                                         methods.EWM_PRIOR, methods.MEDIAN_PRIOR)

# The rule's constants as plain module globals, which numba freezes into the compiled code.
_BUY, _HOLD, _SELL = rules.BUY, rules.HOLD, rules.SELL
_LISTING, _PERSISTENCE, _NO_JUMP, _VOL_SCALED = rules.LISTING, rules.PERSISTENCE, rules.NO_JUMP, rules.VOL_SCALED
_ACTIVITY_WINDOW = rules.ACTIVITY_WINDOW
_LEVEL_1, _LEVEL_2, _LEVEL_3 = rules.ACTIVITY_LEVELS[1:]
_JUMP_MULTIPLE, _JUMP_FLOOR, _Z_MIN = rules.JUMP_MULTIPLE, rules.JUMP_FLOOR, rules.Z_MIN
_N_PATTERNS = rules.N_PATTERNS
_TOLERANCE = rules.TOLERANCE

#: Columns of the per-series count table returned by :func:`backtest_partials`.
COUNT_COLUMNS = (
    "eligible", "covered", "scored", "series_scored", "good_buy", "good_sell",
    "scored_buy", "scored_hold", "scored_sell", "right_buy", "wrong_buy", "right_sell", "wrong_sell",
    "covered_buy", "covered_hold", "covered_sell", "forecast", "flip_pairs", "flips", "first_day", "last_day",
)
#: Columns of the per-series sum table returned by :func:`backtest_partials`.
SUM_COLUMNS = (
    "return_buy", "return_hold", "return_sell",
    "abs_pct_error_fair", "abs_pct_error_naive", "sq_error_fair", "sq_error_naive",
)
_C = {name: i for i, name in enumerate(COUNT_COLUMNS)}
_S = {name: i for i, name in enumerate(SUM_COLUMNS)}
C_ELIGIBLE, C_COVERED, C_SCORED, C_SERIES = _C["eligible"], _C["covered"], _C["scored"], _C["series_scored"]
C_GOOD_BUY, C_GOOD_SELL, C_SCORED_SIG = _C["good_buy"], _C["good_sell"], _C["scored_buy"]
C_RIGHT_BUY, C_WRONG_BUY, C_RIGHT_SELL, C_WRONG_SELL = (_C["right_buy"], _C["wrong_buy"], _C["right_sell"],
                                                        _C["wrong_sell"])
C_COVERED_SIG, C_FORECAST, C_PAIRS, C_FLIPS = _C["covered_buy"], _C["forecast"], _C["flip_pairs"], _C["flips"]
C_FIRST_DAY, C_LAST_DAY = _C["first_day"], _C["last_day"]
S_RETURN, S_APE_FAIR, S_APE_NAIVE = _S["return_buy"], _S["abs_pct_error_fair"], _S["abs_pct_error_naive"]
S_SQ_FAIR, S_SQ_NAIVE = _S["sq_error_fair"], _S["sq_error_naive"]
#: ``first_day`` / ``last_day`` of a series with no row in the scored window.
NO_DAY = np.iinfo(np.int64).max
NO_LAST_DAY = np.iinfo(np.int64).min

#: Bits of the per-row flags written by :func:`backtest_partials`.
ROW_IN_WINDOW, ROW_ELIGIBLE, ROW_COVERED, ROW_SCORED, ROW_FORECAST = 1, 2, 4, 8, 16
#: Outcomes counted by :func:`candidate_histogram`: the flag was right, wrong, or neither.
OUTCOME_RIGHT, OUTCOME_WRONG, OUTCOME_FLAT = 0, 1, 2
#: Columns of the per-day universe table of :func:`candidate_histogram`.
UNIVERSE_COLUMNS = ("scored", "rise", "fall")
#: Columns of the per-day forecast-error table of :func:`candidate_histogram`.
ERROR_COLUMNS = ("abs_pct_error_fair", "abs_pct_error_naive", "sq_error_fair", "sq_error_naive", "forecast")

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



# -- the signal rule, one series at a time --------------------------------------------
@njit(types.float64(types.float64, types.float64), cache=True, nogil=True)
def deviation_of(market, fair):
    """(market - fair) / fair, NaN where fair is missing or not positive: the one definition of a deviation."""
    return (market - fair) / fair if fair > 0 else np.nan


@njit(cache=True, nogil=True)
def classify(market, fair, buy_cut, sell_cut):
    """(deviation, side) of one price: side 0 at or below the BUY cut, 2 at or above the SELL cut, else 1.

    The one threshold test: the row passes call it for every row, and the model (so the
    API) through :func:`classify_rows` (cuts from :func:`pokewatch.core.rules.thresholds`).
    """
    dev = deviation_of(market, fair)
    side = _HOLD
    if dev == dev:
        if dev <= buy_cut:
            side = _BUY
        elif dev >= sell_cut:
            side = _SELL
    return dev, side


@njit(types.Tuple((_OUT_F8, _OUT_I1))(_F8, _F8, types.float64, types.float64), cache=True, nogil=True)
def classify_rows(market, fair, buy_cut, sell_cut):
    """:func:`classify` of every row: (deviation, side) arrays, for lookups outside the row passes."""
    n = len(market)
    dev = np.empty(n)
    side = np.empty(n, np.int8)
    for i in range(n):
        dev[i], side[i] = classify(market[i], fair[i], buy_cut, sell_cut)
    return dev, side


@njit(cache=True, nogil=True)
def _activity_level(changes, priors):
    # Changes among the last ACTIVITY_WINDOW prices, or among all earlier ones while a series is younger.
    if priors == 0:
        return 0
    # The rule's tolerance, as for the thresholds: a share exactly on a level reaches it.
    share = changes / min(priors, _ACTIVITY_WINDOW)
    level = 0
    if share >= _LEVEL_1 - _TOLERANCE:
        level = 1
    if share >= _LEVEL_2 - _TOLERANCE:
        level = 2
    if share >= _LEVEL_3 - _TOLERANCE:
        level = 3
    return level


#: Bit of ``needed`` (beside rules.LISTING ... rules.VOL_SCALED) asking for the activity level.
ACTIVITY = 16
#: ``needed`` of a pass that scores every confirmation pattern (training).
ALL_CONFIRMATIONS = rules.LISTING | rules.PERSISTENCE | rules.NO_JUMP | rules.VOL_SCALED | ACTIVITY
_ACTIVITY = ACTIVITY
_LOG_MOVES = rules.NO_JUMP | rules.VOL_SCALED


@njit(types.int64(types.int64, types.int64), cache=True, nogil=True)
def demands(mask, level):
    """The ``needed`` bits of a pass applying a rule kind with this (mask, level); 0 for ``rules.OFF``.

    A pass computes only the confirmations some rule can test: the pattern bits outside
    ``needed`` stay 0, which no rule demanding only ``needed`` bits can tell apart. A
    pass serving several kinds or days needs the union of their demands.
    """
    if mask < 0:
        return 0
    return mask | (_ACTIVITY if level > 0 else 0)


@njit(cache=True, nogil=True)
def _confirmations(values, low, fair, moves, i, side, prev_dev, buy_cut, sell_cut, needed):
    """Confirmation bits (rules.LISTING ... rules.VOL_SCALED) of row ``i`` on ``side``, those in ``needed``.

    ``moves[j]`` is the log move into row j, filled for rows ``i - ACTIVITY_WINDOW .. i``.
    """
    p = values[i]
    bits = 0
    if needed & _LISTING and len(low):
        lo = low[i]
        if lo == lo and ((side == _SELL and lo < p) or (side == _BUY and lo >= p)):
            bits |= _LISTING
    if needed & _PERSISTENCE and prev_dev == prev_dev and (
            (side == _BUY and prev_dev <= buy_cut) or (side == _SELL and prev_dev >= sell_cut)):
        bits |= _PERSISTENCE
    if needed & _LOG_MOVES:
        # Usual move and volatility over the log moves ending at the prior observations,
        # summed afresh for each row beyond a threshold (they are few), so no running sum drifts.
        first = max(1, i - _ACTIVITY_WINDOW)
        n_moves = i - first
        total = 0.0
        total_abs = 0.0
        for j in range(first, i):
            move = moves[j]
            total += move
            total_abs += abs(move)
        usual = total_abs / n_moves if n_moves > 0 else 0.0
        if needed & _NO_JUMP and abs(moves[i]) <= _JUMP_MULTIPLE * max(usual, _JUMP_FLOOR):
            bits |= _NO_JUMP
        if needed & _VOL_SCALED and n_moves >= 2:
            mean = total / n_moves
            var = 0.0
            for j in range(first, i):
                move = moves[j] - mean
                var += move * move
            sd = np.sqrt(var / (n_moves - 1))
            gap = abs(np.log(p / fair[i]))
            if (sd == 0.0 and gap > 0.0) or (sd > 0.0 and gap / sd >= _Z_MIN):
                bits |= _VOL_SCALED
    return bits


@njit(cache=True, nogil=True)
def series_rows(values, low, method, window, com, buy_cut, sell_cut, min_price, needed, buffer, moves, fair, dev,
                side, pattern):
    """Fair value, deviation, threshold side and confirmation pattern of every row of one series.

    ``side`` is -1 where the row may not be flagged at all (no earlier observation, a
    price under ``min_price`` on the day or in the fair-value window, no fair value,
    or a deviation inside the thresholds), else 0 (beyond the BUY cut) or 2 (SELL).
    ``pattern`` is the row's confirmation bits plus its activity level times 16
    (see :mod:`pokewatch.core.rules`), of the confirmations in ``needed`` only (the others
    read 0); a rule flags a row when the pattern holds every confirmation the rule
    demands for that side. ``buffer`` and ``moves`` are scratch space (window + 1 and
    len(values) floats).
    """
    n = len(values)
    if n == 0:
        return
    _series_fair(values, method, window, com, buffer, fair)
    prior_window = window - 1 if method == MEAN_INCLUDING_TODAY else window
    with_activity = (needed & _ACTIVITY) != 0
    with_moves = (needed & _LOG_MOVES) != 0
    moved = 1          # log moves are filled for rows [1, moved)
    below = 0          # prices under min_price among the prior fair-value window
    changes = 0        # prior ACTIVITY_WINDOW observations whose price changed
    prev_dev = np.nan
    for i in range(n):
        p = values[i]
        d, s = classify(p, fair[i], buy_cut, sell_cut)
        dev[i] = d
        code = -1
        pat = 0
        if s != _HOLD and i >= 1 and p >= min_price and below == 0:
            code = s
            if needed:
                if with_moves:
                    for j in range(max(moved, i - _ACTIVITY_WINDOW), i + 1):
                        moves[j] = np.log(values[j] / values[j - 1])
                    moved = i + 1
                pat = _confirmations(values, low, fair, moves, i, s, prev_dev, buy_cut, sell_cut, needed)
                if with_activity:
                    pat |= _activity_level(changes, i) << 4
        side[i] = code
        pattern[i] = pat
        prev_dev = d
        # Slide the windows so that they are row i + 1's prior observations.
        if prior_window > 0:
            if p < min_price:
                below += 1
            if i - prior_window >= 0 and values[i - prior_window] < min_price:
                below -= 1
        if with_activity:
            if i >= 1 and values[i] != values[i - 1]:
                changes += 1
            gone = i - _ACTIVITY_WINDOW
            if gone >= 1 and values[gone] != values[gone - 1]:
                changes -= 1


@njit(cache=True, nogil=True)
def _plain_rule_series(values, method, window, com, buy_cut, sell_cut, min_price, buy_on, sell_on, buffer, fair,
                       dev, codes):
    """:func:`series_rows` plus the rule's codes, for a rule that demands no confirmation (the common case).

    The same fair values, deviations and eligibility as :func:`series_rows`, in one loop
    with no pattern: a kind is either on without conditions (``buy_on``) or off.
    """
    n = len(values)
    if n == 0:
        return
    _series_fair(values, method, window, com, buffer, fair)
    prior_window = window - 1 if method == MEAN_INCLUDING_TODAY else window
    below = 0
    for i in range(n):
        p = values[i]
        d, s = classify(p, fair[i], buy_cut, sell_cut)
        dev[i] = d
        code = _HOLD
        if s != _HOLD and i >= 1 and p >= min_price and below == 0:
            if (s == _BUY and buy_on) or (s == _SELL and sell_on):
                code = s
        codes[i] = code
        if prior_window > 0:
            if p < min_price:
                below += 1
            if i - prior_window >= 0 and values[i - prior_window] < min_price:
                below -= 1


@njit(cache=True, nogil=True)
def _passes(pattern, mask, level):
    return mask >= 0 and (pattern & mask) == mask and (pattern >> 4) >= level


@njit(types.void(_F8, _F8, _I8, types.int64, types.int64, types.int64, types.int64, types.float64, types.float64,
                 types.float64, types.float64, types.int64, types.int64, types.int64, types.int64, _OUT_F8, _OUT_F8,
                 _OUT_I1), cache=True, nogil=True)
def _rule_rows_into(prices, low, bounds, first, last, method, window, com, buy_cut, sell_cut, min_price,
                    buy_mask, buy_level, sell_mask, sell_level, fair, dev, codes):
    longest = 0
    for s in range(first, last):
        longest = max(longest, bounds[s + 1] - bounds[s])
    needed = demands(buy_mask, buy_level) | demands(sell_mask, sell_level)
    buffer = np.empty(window + 1)
    moves = np.empty(longest)
    scratch = np.empty(longest if len(dev) == 0 else 0)   # deviations nobody asked for
    side = np.empty(longest, np.int8)
    pattern = np.empty(longest, np.int64)
    for s in range(first, last):
        lo, hi = bounds[s], bounds[s + 1]
        n = hi - lo
        series_dev = dev[lo:hi] if len(dev) else scratch[:n]
        if needed == 0:
            _plain_rule_series(prices[lo:hi], method, window, com, buy_cut, sell_cut, min_price, buy_mask == 0,
                               sell_mask == 0, buffer, fair[lo:hi], series_dev, codes[lo:hi])
            continue
        series_low = low[lo:hi] if len(low) else low
        series_rows(prices[lo:hi], series_low, method, window, com, buy_cut, sell_cut, min_price, needed, buffer,
                    moves, fair[lo:hi], series_dev, side[:n], pattern[:n])
        for i in range(n):
            code = _HOLD
            if side[i] == _BUY and _passes(pattern[i], buy_mask, buy_level):
                code = _BUY
            elif side[i] == _SELL and _passes(pattern[i], sell_mask, sell_level):
                code = _SELL
            codes[lo + i] = code


def rule_rows(prices, low, bounds, method, window, com, buy_cut, sell_cut, min_price, buy_mask, buy_level,
              sell_mask, sell_level, threads=None, with_dev=True):
    """Fair value, deviation and signal code (0 BUY, 1 HOLD, 2 SELL) of every row under one rule.

    Only the confirmations the rule demands are computed (see :func:`series_rows`).
    ``with_dev=False`` returns an empty deviation array instead of writing one per row.
    """
    n = len(prices)
    fair, dev, codes = np.empty(n), np.empty(n if with_dev else 0), np.empty(n, np.int8)
    run_by_series(lambda first, last: _rule_rows_into(
        prices, low, bounds, first, last, method, window, com, buy_cut, sell_cut, min_price, buy_mask, buy_level,
        sell_mask, sell_level, fair, dev, codes), bounds, threads)
    return fair, dev, codes


#: Columns of the per-day rule table of :func:`walk_rows`.
WALK_COLUMNS = ("active", "buy_mask", "buy_level", "sell_mask", "sell_level")


@njit(cache=True, nogil=True)
def _table_needs(table):
    """The ``needed`` confirmations of every active day's rule in a :data:`WALK_COLUMNS` table."""
    needed = 0
    for d in range(table.shape[0]):
        if table[d, 0] == 0:
            continue
        needed |= demands(table[d, 1], table[d, 2]) | demands(table[d, 3], table[d, 4])
    return needed


@njit(types.void(_F8, _F8, _I4, _I8, types.int64, types.int64, types.int64, types.int64, types.float64,
                 types.float64, types.float64, types.float64, types.int64, types.Array(types.int64, 2, "C",
                                                                                          readonly=True),
                 types.float64[::1], types.int8[::1]), cache=True, nogil=True)
def _walk_rows_into(prices, low, days, bounds, first, last, method, window, com, buy_cut, sell_cut, min_price,
                    day0, table, fair, codes):
    n_days = table.shape[0]
    longest = 0
    for s in range(first, last):
        longest = max(longest, bounds[s + 1] - bounds[s])
    needed = _table_needs(table)
    buffer = np.empty(window + 1)
    moves = np.empty(longest)
    series_fair = np.empty(longest)
    dev = np.empty(longest)
    side = np.empty(longest, np.int8)
    pattern = np.empty(longest, np.int64)
    for s in range(first, last):
        lo, hi = bounds[s], bounds[s + 1]
        n = hi - lo
        d_first, d_last = days[lo] - day0, days[hi - 1] - day0
        if n == 0 or d_last < 0 or d_first >= n_days:
            continue
        series_low = low[lo:hi] if len(low) else low
        series_rows(prices[lo:hi], series_low, method, window, com, buy_cut, sell_cut, min_price, needed, buffer,
                    moves, series_fair[:n], dev[:n], side[:n], pattern[:n])
        for i in range(n):
            d = days[lo + i] - day0
            if d < 0 or d >= n_days or table[d, 0] == 0:
                continue
            code = _HOLD
            if side[i] == _BUY and _passes(pattern[i], table[d, 1], table[d, 2]):
                code = _BUY
            elif side[i] == _SELL and _passes(pattern[i], table[d, 3], table[d, 4]):
                code = _SELL
            fair[lo + i] = series_fair[i]
            codes[lo + i] = code


def walk_rows(prices, low, days, bounds, method, window, com, buy_cut, sell_cut, min_price, day0, table, fair,
              codes, threads=None):
    """Write fair value and signal code into ``fair``/``codes`` for the rows of days whose rule uses this method.

    ``table`` (int64, n_days x :data:`WALK_COLUMNS`, day ``day0`` first) says per day
    whether that day's rule uses this fair-value method (``active``) and the
    confirmations it demands of each kind. One pass per method serves every week that
    uses it, so a year of weekly rules costs a few passes, not fifty-two.
    """
    run_by_series(lambda first, last: _walk_rows_into(
        prices, low, days, bounds, first, last, method, window, com, buy_cut, sell_cut, min_price, day0, table, fair,
        codes), bounds, threads)


@njit(_OUT_F8(_F8, _F8), cache=True, nogil=True)
def deviations(prices, fair):
    """:func:`deviation_of` of every row."""
    out = np.empty(len(prices))
    for i in range(len(prices)):
        out[i] = deviation_of(prices[i], fair[i])
    return out


# -- training: every confirmation pattern of one fair-value method in one pass ---------
@njit(types.void(_F8, _F8, _I4, _I8, types.int64, types.int64, types.int64, types.int64, types.float64,
                 types.float64, types.float64, types.float64, types.int64, types.float64, types.int64,
                 types.int64[:, :, :, ::1], types.float64[:, :, ::1], types.int64[:, ::1], types.float64[:, ::1]),
      cache=True, nogil=True)
def _histogram_into(prices, low, days, bounds, first, last, method, window, com, buy_cut, sell_cut, min_price,
                    horizon, target_return, day0, hist, returns, universe, errors):
    n_days = hist.shape[0]
    longest = 0
    for s in range(first, last):
        longest = max(longest, bounds[s + 1] - bounds[s])
    buffer = np.empty(window + 1)
    moves = np.empty(longest)
    fair = np.empty(longest)
    dev = np.empty(longest)
    side = np.empty(longest, np.int8)
    pattern = np.empty(longest, np.int64)
    for s in range(first, last):
        lo, hi = bounds[s], bounds[s + 1]
        n = hi - lo
        series_low = low[lo:hi] if len(low) else low
        series_rows(prices[lo:hi], series_low, method, window, com, buy_cut, sell_cut, min_price,
                    ALL_CONFIRMATIONS, buffer, moves, fair[:n], dev[:n], side[:n], pattern[:n])
        ahead = 0
        for i in range(n):
            day = days[lo + i]
            target_day = day + horizon
            while ahead < n and days[lo + ahead] < target_day:
                ahead += 1
            d = day - day0
            p = prices[lo + i]
            if d < 0 or d >= n_days or i == 0 or p < min_price:
                continue
            f = fair[i]
            if i + 1 < n and f == f and days[lo + i + 1] <= target_day:
                following = prices[lo + i + 1]
                errors[d, 0] += abs(f - following) / following
                errors[d, 1] += abs(p - following) / following
                errors[d, 2] += (f - following) ** 2
                errors[d, 3] += (p - following) ** 2
                errors[d, 4] += 1.0
            if not (ahead < n and days[lo + ahead] == target_day):
                continue
            fwd = prices[lo + ahead] / p - 1.0
            universe[d, 0] += 1
            if fwd >= target_return:
                universe[d, 1] += 1
            if fwd <= -target_return:
                universe[d, 2] += 1
            if side[i] < 0:
                continue
            k = 0 if side[i] == _BUY else 1
            up, down = fwd >= target_return, fwd <= -target_return
            outcome = OUTCOME_FLAT
            if (k == 0 and up) or (k == 1 and down):
                outcome = OUTCOME_RIGHT
            elif (k == 0 and down) or (k == 1 and up):
                outcome = OUTCOME_WRONG
            hist[d, k, pattern[i], outcome] += 1
            returns[d, k, pattern[i]] += fwd


def candidate_histogram(prices, low, days, bounds, method, window, com, buy_cut, sell_cut, min_price, horizon,
                        target_return, day0, n_days, threads=None):
    """Per flag day, side and confirmation pattern: how many flags were right, wrong or flat.

    Every filter combination of one fair-value method is scored from this one table:
    a rule's flags on a day are the rows of the patterns that hold all its
    confirmations. Rows count only when they are in the scored universe (an earlier
    observation, at least ``min_price``, a price exactly ``horizon`` days later), which
    is the same for every candidate.

    Returns:
        ``hist`` int64 (n_days, 2 sides BUY/SELL, N_PATTERNS, 3 outcomes), ``returns``
        float64 (n_days, 2, N_PATTERNS) summed forward returns, ``universe`` int64
        (n_days, 3: scored rows, rises, falls of at least ``target_return``) and
        ``errors`` float64 (n_days, 5: see :data:`ERROR_COLUMNS`) of the fair value
        known on the day against the next observed price.
    """
    def empty():
        return (np.zeros((n_days, 2, _N_PATTERNS, 3), np.int64), np.zeros((n_days, 2, _N_PATTERNS)),
                np.zeros((n_days, len(UNIVERSE_COLUMNS)), np.int64), np.zeros((n_days, len(ERROR_COLUMNS))))

    def work(first, last):
        out = empty()
        _histogram_into(prices, low, days, bounds, first, last, method, window, com, buy_cut, sell_cut, min_price,
                        horizon, target_return, day0, *out)
        return out

    parts = map_series(work, bounds, threads)
    if not parts:
        return empty()
    return tuple(sum(p[i] for p in parts) for i in range(4))


# -- backtest: score a fixed set of fair values and signal codes ------------------------
@njit(cache=True, nogil=True)
def _bin(value, edges):
    """Bin of ``value`` among ``edges`` as ``np.histogram(values, edges)`` counts it (-1: outside; last bin closed)."""
    last = len(edges) - 1
    if not (value >= edges[0] and value <= edges[last]):
        return -1
    b = np.searchsorted(edges, value, side="right") - 1
    return last - 1 if b == last else b


@njit(cache=True, nogil=True)
def _score_series(prices, days, fair, codes, horizon, start_day, end_day, min_price, target_return,
                  counts, sums, forward_return, flags, with_rows, summary, edges, errors, out_return, out_code,
                  pos, pos_end, flagged, k, row0):
    """Accumulate one series' backtest counts and sums, and optionally fill per-row or summary outputs.

    With ``with_rows``: ``forward_return`` and ``flags`` per row. With ``summary``: the
    forward return and code of each scored row at ``out_return[pos:pos_end]`` /
    ``out_code`` (in row order), each scored BUY or SELL as a ``flagged`` row (row index
    ``row0 + i``, fair value, forward return, code) from index ``k``, and the absolute
    forecast errors of the fair value and of the naive last price counted into
    ``errors[0]`` / ``errors[1]`` per bin of ``edges`` (clipped to the last edge).

    Returns:
        (k, pos) after this series.
    """
    n = len(prices)
    begin = 0
    if not with_rows:         # nothing before the window is counted: start at its first row
        hi = n
        while begin < hi:
            mid = (begin + hi) // 2
            if days[mid] < start_day:
                begin = mid + 1
            else:
                hi = mid
    ahead = begin             # first row at or after day + horizon (days only increase)
    previous_signal = -1      # signal of the previous covered row of this series
    first_day = NO_DAY
    last_day = NO_LAST_DAY
    clip = edges[len(edges) - 1] if summary else 0.0
    for i in range(begin, n):
        if not with_rows and days[i] > end_day:
            break
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
            if price >= min_price and i >= 1:
                bits |= ROW_ELIGIBLE
                counts[C_ELIGIBLE] += 1
                f = fair[i]
                if f == f:
                    bits |= ROW_COVERED
                    counts[C_COVERED] += 1
                    first_day = min(first_day, days[i])
                    last_day = max(last_day, days[i])
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
                        up, down = fwd >= target_return, fwd <= -target_return
                        if up:
                            counts[C_GOOD_BUY] += 1
                        if down:
                            counts[C_GOOD_SELL] += 1
                        if sig == _BUY:
                            counts[C_RIGHT_BUY] += up
                            counts[C_WRONG_BUY] += down
                        elif sig == _SELL:
                            counts[C_RIGHT_SELL] += down
                            counts[C_WRONG_SELL] += up
                        if summary:
                            if pos < pos_end:
                                out_return[pos] = fwd
                                out_code[pos] = sig
                            pos += 1
                            if sig != _HOLD:
                                flagged[k, 0] = row0 + i
                                flagged[k, 1] = f
                                flagged[k, 2] = fwd
                                flagged[k, 3] = sig
                                k += 1
                    if i + 1 < n and days[i + 1] <= target_day:
                        following = prices[i + 1]
                        bits |= ROW_FORECAST
                        counts[C_FORECAST] += 1
                        err_fair = f - following       # the fair value known today, not tomorrow's
                        err_naive = price - following
                        ape_fair = abs(err_fair) / following
                        ape_naive = abs(err_naive) / following
                        sums[S_APE_FAIR] += ape_fair
                        sums[S_APE_NAIVE] += ape_naive
                        sums[S_SQ_FAIR] += err_fair ** 2
                        sums[S_SQ_NAIVE] += err_naive ** 2
                        if summary:
                            b = _bin(min(ape_fair, clip) if ape_fair == ape_fair else ape_fair, edges)
                            if b >= 0:
                                errors[0, b] += 1
                            b = _bin(min(ape_naive, clip) if ape_naive == ape_naive else ape_naive, edges)
                            if b >= 0:
                                errors[1, b] += 1
        if with_rows:
            forward_return[i] = fwd
            flags[i] = bits
    if counts[C_SCORED] > 0:
        counts[C_SERIES] = 1
    counts[C_FIRST_DAY] = first_day
    counts[C_LAST_DAY] = last_day
    return k, pos


@njit(types.void(_F8, _I4, _F8, _I1, _I8, types.int64, types.int64, types.int64, types.int64, types.int64,
                 types.float64, types.float64, types.boolean, types.int64[:, ::1], types.float64[:, ::1], _OUT_F8,
                 _OUT_U1), cache=True, nogil=True)
def _backtest_into(prices, days, fair, codes, bounds, first, last, horizon, start_day, end_day, min_price,
                   target_return, with_rows, counts, sums, forward_return, flags):
    no_edges = np.zeros(2)
    no_errors = np.zeros((2, 1), np.int64)
    no_return = np.empty(0)
    no_code = np.empty(0, np.int8)
    no_flagged = np.empty((0, 4))
    for s in range(first, last):
        lo, hi = bounds[s], bounds[s + 1]
        if with_rows:
            _score_series(prices[lo:hi], days[lo:hi], fair[lo:hi], codes[lo:hi], horizon, start_day, end_day,
                          min_price, target_return, counts[s], sums[s], forward_return[lo:hi], flags[lo:hi], True,
                          False, no_edges, no_errors, no_return, no_code, 0, 0, no_flagged, 0, lo)
        else:
            _score_series(prices[lo:hi], days[lo:hi], fair[lo:hi], codes[lo:hi], horizon, start_day, end_day,
                          min_price, target_return, counts[s], sums[s], forward_return, flags, False, False,
                          no_edges, no_errors, no_return, no_code, 0, 0, no_flagged, 0, lo)


def backtest_partials(prices, days, fair, codes, bounds, horizon, start_day, end_day, min_price, target_return,
                      with_rows, threads=None):
    """Per-series backtest counts and sums, plus per-row forward returns and flags.

    Scored rows are those in ``[start_day, end_day]`` with an earlier observation, a
    price of at least ``min_price``, a fair value and a price exactly ``horizon`` days
    later. The fair value of a row forecasts the series' next observed price (MAPE)
    when that comes within ``horizon`` days: it is the value published that day, so a
    rule including today's price is not credited with tomorrow's, and no price past
    the horizon is ever looked at.

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


# -- the track record: each week's rule and its scoring in one pass -----------------------
_I8_3D = types.Array(types.int64, 3, "C", readonly=True)
_B1 = types.Array(types.boolean, 1, "C", readonly=True)


@njit(types.void(_F8, _I4, _I8, types.int64, types.int64, _B1, types.int64, types.int64, types.int64, types.int64,
                 types.float64, types.int64[::1]), cache=True, nogil=True)
def _scored_rows_into(prices, days, bounds, first, last, active, day0, horizon, start_day, end_day, min_price, out):
    """Per series, the rows :func:`_track_into` will score: what :func:`_score_series` counts as scored
    when every row of an ``active`` day has a fair value (all do from a series' second row on)."""
    n_days = len(active)
    for s in range(first, last):
        lo, hi = bounds[s], bounds[s + 1]
        n = hi - lo
        ahead = 0
        scored = 0
        for i in range(n):
            day = days[lo + i]
            target_day = day + horizon
            while ahead < n and days[lo + ahead] < target_day:
                ahead += 1
            if day < start_day or day > end_day or i == 0 or prices[lo + i] < min_price:
                continue
            d = day - day0
            if d < 0 or d >= n_days or not active[d]:
                continue
            if ahead < n and days[lo + ahead] == target_day:
                scored += 1
        out[s] = scored


@njit(types.Tuple((types.int64[:, ::1], types.float64[:, ::1]))(
    _F8, _F8, _I4, _I8, types.int64, types.int64, _I8, _I8, _F8, _I8_3D, types.int64, types.float64, types.float64,
    types.float64, types.int64, types.int64, types.int64, types.float64, _F8, _I8, types.int64[:, ::1],
    types.float64[:, ::1], _OUT_F8, _OUT_I1), cache=True, nogil=True)
def _track_into(prices, low, days, bounds, first, last, methods, windows, coms, tables, day0, buy_cut, sell_cut,
                min_price, horizon, start_day, end_day, target_return, edges, offsets, counts, sums, out_return,
                out_code):
    n_days = tables.shape[1]
    n_methods = len(methods)
    longest = 0
    for s in range(first, last):
        longest = max(longest, bounds[s + 1] - bounds[s])
    needs = np.zeros(n_methods, np.int64)
    widest = 1
    for m in range(n_methods):
        needs[m] = _table_needs(tables[m])
        widest = max(widest, windows[m])
    buffer = np.empty(widest + 1)
    moves = np.empty(longest)
    method_fair = np.empty(longest)
    dev = np.empty(longest)
    side = np.empty(longest, np.int8)
    pattern = np.empty(longest, np.int64)
    fair = np.empty(longest)
    codes = np.empty(longest, np.int8)
    errors = np.zeros((2, len(edges) - 1), np.int64)
    flagged = np.empty((1024, 4))
    k = 0
    no_return = np.empty(0)
    no_flags = np.empty(0, np.uint8)
    for s in range(first, last):
        lo, hi = bounds[s], bounds[s + 1]
        n = hi - lo
        if n == 0 or days[hi - 1] < start_day or days[lo] > end_day:   # nothing of this series is scored
            counts[s, C_FIRST_DAY] = NO_DAY
            counts[s, C_LAST_DAY] = NO_LAST_DAY
            continue
        for i in range(n):
            fair[i] = np.nan
            codes[i] = _HOLD
        series_low = low[lo:hi] if len(low) else low
        for m in range(n_methods):
            table = tables[m]
            used = False
            for i in range(n):
                day = days[lo + i]
                d = day - day0
                if start_day <= day <= end_day and 0 <= d < n_days and table[d, 0] != 0:
                    used = True
                    break
            if not used:
                continue
            series_rows(prices[lo:hi], series_low, methods[m], windows[m], coms[m], buy_cut, sell_cut, min_price,
                        needs[m], buffer, moves, method_fair[:n], dev[:n], side[:n], pattern[:n])
            for i in range(n):
                d = days[lo + i] - day0
                if d < 0 or d >= n_days or table[d, 0] == 0:
                    continue
                code = _HOLD
                if side[i] == _BUY and _passes(pattern[i], table[d, 1], table[d, 2]):
                    code = _BUY
                elif side[i] == _SELL and _passes(pattern[i], table[d, 3], table[d, 4]):
                    code = _SELL
                fair[i] = method_fair[i]
                codes[i] = code
        if k + n > flagged.shape[0]:
            grown = np.empty((max(2 * flagged.shape[0], k + n), 4))
            grown[:k] = flagged[:k]
            flagged = grown
        k, pos = _score_series(prices[lo:hi], days[lo:hi], fair[:n], codes[:n], horizon, start_day, end_day,
                               min_price, target_return, counts[s], sums[s], no_return, no_flags, False, True, edges,
                               errors, out_return, out_code, offsets[s], offsets[s + 1], flagged, k, lo)
        if pos != offsets[s + 1]:
            counts[s, C_SCORED] = -1     # the caller checks: the pre-pass and the scoring disagreed
    return errors, flagged[:k].copy()


#: Columns of the ``flagged`` table of :func:`track_record_pass`.
FLAGGED_COLUMNS = ("row", "fair_value", "forward_return", "signal")


def track_record_pass(prices, low, days, bounds, methods, windows, coms, tables, day0, buy_cut, sell_cut, min_price,
                      horizon, start_day, end_day, target_return, edges, threads=None):
    """Walk-forward flags and their scores in one pass, with no per-row output.

    Each day's rule is given by ``tables[m]`` (a :data:`WALK_COLUMNS` table per
    fair-value method ``methods[m]``, day ``day0`` first): per series, the methods in
    use are computed as in :func:`walk_rows` and the rows are scored as in
    :func:`backtest_partials`, in the series' own buffers, so nothing of size
    "every row" is written.

    Returns:
        ``counts`` and ``sums`` (as :func:`backtest_partials`), ``scored_return`` and
        ``scored_code`` (the forward return and code of every scored row, in row order),
        ``flagged`` (float64, one row per scored BUY or SELL: :data:`FLAGGED_COLUMNS`) and
        ``errors`` (int64 2 x bins: fair value's and naive forecast's absolute errors per
        bin of ``edges``, clipped to the last edge).

    Raises:
        RuntimeError: the rows scored disagree with the pre-pass that sized the outputs (a bug).
    """
    n_series = len(bounds) - 1
    active = np.ascontiguousarray(tables[:, :, 0].any(axis=0)) if len(tables) else np.zeros(0, bool)
    per_series = np.zeros(n_series, np.int64)
    run_by_series(lambda first, last: _scored_rows_into(prices, days, bounds, first, last, active, day0, horizon,
                                                        start_day, end_day, min_price, per_series), bounds, threads)
    offsets = np.zeros(n_series + 1, np.int64)
    np.cumsum(per_series, out=offsets[1:])
    counts = np.zeros((n_series, len(COUNT_COLUMNS)), np.int64)
    sums = np.zeros((n_series, len(SUM_COLUMNS)))
    scored_return = np.empty(int(offsets[-1]))
    scored_code = np.empty(int(offsets[-1]), np.int8)
    parts = map_series(lambda first, last: _track_into(
        prices, low, days, bounds, first, last, methods, windows, coms, tables, day0, buy_cut, sell_cut, min_price,
        horizon, start_day, end_day, target_return, edges, offsets, counts, sums, scored_return, scored_code),
        bounds, threads)
    if len(counts) and counts[:, C_SCORED].min() < 0:
        raise RuntimeError("track_record_pass: the rows scored disagree with the rows sized for; please report this")
    errors = sum(p[0] for p in parts) if parts else np.zeros((2, len(edges) - 1), np.int64)
    flagged = np.concatenate([p[1] for p in parts]) if parts else np.empty((0, 4))
    return counts, sums, scored_return, scored_code, flagged, errors


# -- threads ------------------------------------------------------------------------------
_MIN_ROWS_PER_THREAD = 250_000
_POOL: ThreadPoolExecutor | None = None


def series_ranges(bounds: np.ndarray, parts: int) -> list[tuple[int, int]]:
    """Up to ``parts`` contiguous series ranges of about equal row counts."""
    n_series, n_rows = len(bounds) - 1, int(bounds[-1])
    parts = max(1, min(parts, n_series, n_rows // _MIN_ROWS_PER_THREAD or 1))
    cuts = np.searchsorted(bounds, np.arange(1, parts) * (n_rows / parts))
    edges = np.unique(np.concatenate(([0], np.clip(cuts, 0, n_series), [n_series])))
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def map_series(work, bounds: np.ndarray, threads: int | None = None) -> list:
    """``[work(first, last), ...]`` over series ranges, on ``threads`` threads, in series order."""
    global _POOL
    ranges = series_ranges(bounds, THREADS if threads is None else threads)
    if len(ranges) <= 1:
        return [work(*r) for r in ranges]
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="pokewatch-kernel")
    return [future.result() for future in [_POOL.submit(work, first, last) for first, last in ranges]]


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


@njit(types.Tuple((types.int64[::1], types.int64))(_I4, _I8, types.int64), cache=True, nogil=True)
def recent_starts(days, bounds, first_day):
    """Per series, its first row on or after ``first_day`` (its end when none), and the earliest such day.

    Rows are sorted by day within each series, so the recent rows are a suffix of it.
    """
    n_series = len(bounds) - 1
    out = np.empty(n_series, np.int64)
    earliest = np.iinfo(np.int64).max
    for s in range(n_series):
        lo, hi = bounds[s], bounds[s + 1]
        a, b = lo, hi
        while a < b:
            mid = (a + b) // 2
            if days[mid] < first_day:
                a = mid + 1
            else:
                b = mid
        out[s] = a
        if a < hi and days[a] < earliest:
            earliest = days[a]
    return out, earliest


@njit(types.void(_F8, _I4, _F8, _I1, _I8, types.Array(types.int64, 1, "C", readonly=True),
                 types.Array(types.int64, 1, "C", readonly=True), types.int64, types.float64[:, ::1],
                 types.float64[:, ::1], types.int8[:, ::1]), cache=True, nogil=True)
def fill_recent(prices, days, fair, codes, bounds, starts, positions, first_day, market_out, fair_out, codes_out):
    """Copy each series' rows from ``starts[s]`` into row ``positions[s]`` (skipped when -1) of dense day grids."""
    for s in range(len(bounds) - 1):
        p = positions[s]
        if p < 0:
            continue
        for r in range(starts[s], bounds[s + 1]):
            c = days[r] - first_day
            market_out[p, c] = prices[r]
            fair_out[p, c] = fair[r]
            codes_out[p, c] = codes[r]


# -- the backtest's summaries -----------------------------------------------------------------
@njit(types.UniTuple(_OUT_F8, 3)(_F8, _I1), cache=True, nogil=True)
def returns_by_code(returns, codes):
    """``returns`` split by ``codes`` (BUY, HOLD, SELL), each part in row order: one pass, no masks."""
    counts = np.zeros(3, np.int64)
    for i in range(len(codes)):
        counts[codes[i]] += 1
    buy, hold, sell = np.empty(counts[0]), np.empty(counts[1]), np.empty(counts[2])
    at = np.zeros(3, np.int64)
    for i in range(len(codes)):
        c = codes[i]
        if c == _BUY:
            buy[at[0]] = returns[i]
        elif c == _HOLD:
            hold[at[1]] = returns[i]
        else:
            sell[at[2]] = returns[i]
        at[c] += 1
    return buy, hold, sell


#: Above this rate, :func:`poisson_weighted_sums` would walk a long CDF; such columns are drawn by numpy.
POISSON_TABLE_MAX = 10.0


@njit(types.float64[:, ::1](types.Array(types.float64, 2, "C", readonly=True), _F8,
                            types.Array(types.float64, 2, "C", readonly=True)), cache=True, nogil=True)
def poisson_weighted_sums(uniforms, rates, tuples):
    """``P @ tuples`` where ``P[r, t]`` ~ Poisson(``rates[t]``) by inversion of ``uniforms[t, r]``.

    Why not numpy's ``poisson`` and a matrix product: a bootstrap of 1,000 replicates
    over 5,000 count tuples is 5 million draws, and inverting one uniform against a
    rate of at most :data:`POISSON_TABLE_MAX` takes about rate + 1 steps with no
    temporary matrix, several times faster than drawing, converting and multiplying.
    """
    n_tuples, replicates = uniforms.shape
    out = np.zeros((replicates, tuples.shape[1]))
    for t in range(n_tuples):
        rate = rates[t]
        p0 = np.exp(-rate)
        for r in range(replicates):
            u = uniforms[t, r]
            k = 0
            p = p0
            cdf = p0
            while u > cdf and k < 200:
                k += 1
                p *= rate / k
                cdf += p
            if k:
                for j in range(tuples.shape[1]):
                    out[r, j] += k * tuples[t, j]
    return out
