"""Fair value of every series on every day, computed for all series at once.

Why "prior" windows by default: judging today's price against a mean that
includes today's price drags the fair value towards the price being judged.
With the seed project's 3-day mean including today, BUY (10% below fair) only
fires once the price is 14.3% or more under the prior two days' mean. The seed's
rule survives as ``seed_mean3`` so the two can be compared in a backtest.

Methods (``window`` = N):

* ``rolling_mean``   mean of the prior N observations of the series
* ``ewm``            exponentially weighted mean of prior observations (span N)
* ``rolling_median`` median of the prior N observations (robust to spikes)
* ``seed_mean3``     the seed's rule: mean of the last 3 observations *including today*

All work on a :class:`PriceFrame`: the long table sorted by series and date with an
integer series code, so windows never cross from one series into the next. No
Python loop over series anywhere; pandas' grouped windows and numpy cumulative
sums do the work.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pokewatch import params
from pokewatch.errors import SchemaError
from pokewatch.schema import SERIES_KEY

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PriceFrame:
    """A price table sorted by (series, date) with integer series codes.

    Attributes:
        frame: the sorted table, with a ``series`` int32 column added.
        starts: row position of each series' first row, shape (n_series,).
        row_start: for each row, the position of its series' first row.
    """

    frame: pd.DataFrame
    starts: np.ndarray
    row_start: np.ndarray

    @classmethod
    def from_history(cls, history: pd.DataFrame) -> "PriceFrame":
        """Sort and code ``history`` (long schema); a no-op sort when already ordered."""
        missing = [c for c in [*SERIES_KEY, "date", "market_price"] if c not in history.columns]
        if missing:
            raise SchemaError(f"price history lacks column(s) {missing}; see pokewatch.schema")
        codes = history.groupby(SERIES_KEY, sort=True, observed=True).ngroup().to_numpy(np.int32)
        order = np.lexsort((history["date"].to_numpy(), codes))
        if len(order) and np.any(np.diff(order) < 0):
            frame = history.iloc[order].reset_index(drop=True)
            codes = codes[order]
        else:
            frame = history.reset_index(drop=True)
        frame = frame.assign(series=codes)
        n = len(frame)
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if n else np.zeros(0, np.int64)
        lengths = np.diff(np.r_[starts, n])
        return cls(frame=frame, starts=starts, row_start=np.repeat(starts, lengths))

    @property
    def prices(self) -> np.ndarray:
        return self.frame["market_price"].to_numpy(np.float64)

    def shift_within_series(self, values: np.ndarray, periods: int = 1) -> np.ndarray:
        """``values`` moved ``periods`` rows later inside each series (NaN where none)."""
        out = np.full(len(values), np.nan)
        if periods <= 0 or len(values) <= periods:
            return out
        out[periods:] = values[:-periods]
        position = np.arange(len(values))
        out[position - self.row_start < periods] = np.nan
        return out

    def lead_within_series(self, values: np.ndarray, periods: int = 1) -> np.ndarray:
        """``values`` from ``periods`` rows later in the same series (NaN past the end)."""
        out = np.full(len(values), np.nan)
        if periods <= 0 or len(values) <= periods:
            return out
        out[:-periods] = values[periods:]
        same = np.zeros(len(values), dtype=bool)
        same[:-periods] = self.row_start[periods:] == self.row_start[:-periods]
        out[~same] = np.nan
        return out


def _rolling_mean(pf: PriceFrame, window: int, include_today: bool) -> np.ndarray:
    values = pf.prices
    n = len(values)
    position = np.arange(n)
    # Cumulative sums restart per series, so large early totals never eat the
    # precision of cheap cards late in the table.
    cumulative = np.cumsum(values)
    base = np.where(pf.row_start > 0, cumulative[pf.row_start - 1], 0.0)
    csum = np.r_[0.0, cumulative - base]  # csum[i+1] = sum of series values up to row i
    end = position + 1 if include_today else position
    lo = np.maximum(pf.row_start, end - window)
    count = end - lo
    # Rows [lo, end) belong to one series; relative cumsum differences stay exact there.
    total = csum[end] - np.where(lo > pf.row_start, csum[lo], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _grouped(pf: PriceFrame, window: int, how: str) -> np.ndarray:
    series = pd.Series(pf.prices)
    grouped = series.groupby(pf.frame["series"].to_numpy(), sort=False)
    if how == "ewm":
        result = grouped.ewm(span=window, adjust=True).mean()
    else:
        result = grouped.rolling(window, min_periods=1).median()
    # Rows are sorted by series, so the grouped result comes back in row order.
    return result.to_numpy(np.float64)


def fair_value(pf: PriceFrame, method: str = "rolling_mean", window: int = 7) -> np.ndarray:
    """Fair value per row of ``pf`` using only what the method may see.

    Returns:
        float64 array aligned with ``pf.frame``; NaN where a series has no prior
        observation yet (its first day).

    Raises:
        ParameterError: unknown method or a window below 1.
    """
    params.method("method", method)
    window = params.positive_int("window", window, maximum=365)
    if method == "seed_mean3":
        return _rolling_mean(pf, 3, include_today=True)
    if method == "rolling_mean":
        return _rolling_mean(pf, window, include_today=False)
    including_today = _grouped(pf, window, "ewm" if method == "ewm" else "median")
    return pf.shift_within_series(including_today)
