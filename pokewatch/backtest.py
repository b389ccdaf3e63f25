"""Walk-forward backtest: did prices move the way the flags said?

No look-ahead by construction: fair values only see past prices (see
:mod:`pokewatch.fair_value`), and a flag raised on day t is scored against the
price on day t + H, which is only used when that day is inside the data. The
scored window ends H days before the last date so every scored flag has an outcome.

KPIs (``horizon_days`` = H, ``target_return`` = X):

* BUY precision: share of BUY flags whose price was at least X higher H days
  later; recall: share of such rises that were flagged BUY. SELL likewise for a
  fall of X or more. Base rate: share of all eligible rows with that outcome;
  lift = precision / base rate (1.0 = no better than flagging at random).
* Mean forward return at H per signal.
* MAPE and RMSE of fair value as a forecast of the next observed price, beside
  the naive forecast "next price = last price".
* Coverage (rows with a fair value), signal rate, stability (share of
  consecutive observations whose signal flips) and the signal distribution.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd

from pokewatch import kernels, params
from pokewatch.errors import RunError
from pokewatch.fair_value import PriceFrame, dates_of, day_numbers, series_bounds
from pokewatch.signals import SIGNAL_DTYPE, SIGNALS

logger = logging.getLogger(__name__)

_EPOCH = pd.Timestamp("1970-01-01")


def forward_price(scored: pd.DataFrame, horizon_days: int) -> np.ndarray:
    """Price of the same series exactly ``horizon_days`` calendar days later (NaN if unobserved).

    ``scored`` must be sorted by ``series`` then ``date`` (as signals are).
    """
    day = ((scored["date"] - scored["date"].min()).dt.days).to_numpy(np.int64)
    span = int(day.max()) + horizon_days + 1 if len(day) else 1
    key = scored["series"].to_numpy(np.int64) * span + day
    target = key + horizon_days
    pos = np.searchsorted(key, target)
    pos_clipped = np.minimum(pos, len(key) - 1)
    found = (pos < len(key)) & (key[pos_clipped] == target)
    out = np.full(len(key), np.nan)
    out[found] = scored["market_price"].to_numpy(np.float64)[pos_clipped[found]]
    return out


def _precision_recall(n_flagged: int, n_good: int, hits: int, n_scored: int) -> dict:
    base = n_good / n_scored if n_scored else float("nan")
    precision = hits / n_flagged if n_flagged else float("nan")
    return {
        "flags": n_flagged,
        "precision": precision,
        "recall": hits / n_good if n_good else float("nan"),
        "base_rate": base,
        "lift": precision / base if n_flagged and base > 0 else float("nan"),
    }


class BacktestResult:
    """KPIs as a flat dict plus the scored rows (for plots and per-category tables).

    Attributes:
        kpis: the flat KPI dict (see the module docstring).
        by_signal: count, mean and median forward return per signal.
        scored: the scored rows of the signals table, with ``forward_return``,
            ``good_buy`` and ``good_sell``. Built on first use: training never needs it.
        errors: per forecast row, the absolute % error of fair value and of the naive forecast.
    """

    def __init__(self, kpis: dict, scored: pd.DataFrame | None = None, by_signal: pd.DataFrame | None = None,
                 errors: pd.DataFrame | None = None, *, detail: Callable[[], tuple] | None = None) -> None:
        self.kpis = kpis
        self.by_signal = by_signal if by_signal is not None else pd.DataFrame()
        self._scored = scored
        self._errors = errors if errors is not None or detail is not None else pd.DataFrame()
        self._detail = detail

    def __repr__(self) -> str:
        return f"BacktestResult(kpis={self.kpis!r})"

    def __getstate__(self) -> dict:
        # The row-level detail is rebuilt from the signals, never cached on disk.
        return {"kpis": self.kpis, "by_signal": self.by_signal}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["kpis"], by_signal=state["by_signal"])
        self._errors = None

    def attach(self, detail: Callable[[], tuple]) -> BacktestResult:
        """Give a result loaded from the cache the function that rebuilds its scored rows."""
        self._detail = detail
        self._scored = self._errors = None
        return self

    def _materialize(self) -> None:
        if self._detail is None:
            raise RunError("this backtest result has no scored rows attached; recompute it with run_backtest "
                           "or pokewatch.steps.backtest_step")
        self._scored, self._errors = self._detail()
        self._detail = None

    @property
    def scored(self) -> pd.DataFrame:
        if self._scored is None:
            self._materialize()
        return self._scored

    @property
    def errors(self) -> pd.DataFrame:
        if self._errors is None:
            self._materialize()
        return self._errors

    def by_category(self) -> pd.DataFrame:
        """BUY/SELL precision and lift per watchlist category (rows without one are 'uncategorised')."""
        scored = self.scored
        if "category" in scored:
            column = scored["category"]
            if isinstance(column.dtype, pd.CategoricalDtype):
                codes, labels = column.cat.codes.to_numpy(), [str(c) for c in column.cat.categories]
            else:
                codes, uniques = pd.factorize(column)
                labels = [str(c) for c in uniques]
        else:
            codes, labels = np.full(len(scored), -1), []
        names, per_label = np.unique(np.array([*labels, "uncategorised"], dtype=object), return_inverse=True)
        category = per_label[np.where(codes < 0, len(labels), codes)]
        signal = _signal_codes(scored["signal"])
        good_buy, good_sell = scored["good_buy"].to_numpy(bool), scored["good_sell"].to_numpy(bool)

        def count(mask=None) -> np.ndarray:
            return np.bincount(category, weights=mask, minlength=len(names)).astype(np.int64)

        rows_per, buy_flags, sell_flags = count(), count(signal == 0), count(signal == 2)
        buy_good, sell_good = count(good_buy), count(good_sell)
        buy_hits, sell_hits = count((signal == 0) & good_buy), count((signal == 2) & good_sell)
        rows = []
        for i in np.flatnonzero(rows_per):
            buy = _precision_recall(int(buy_flags[i]), int(buy_good[i]), int(buy_hits[i]), int(rows_per[i]))
            sell = _precision_recall(int(sell_flags[i]), int(sell_good[i]), int(sell_hits[i]), int(rows_per[i]))
            rows.append({"category": names[i], "rows": int(rows_per[i]),
                         **{f"buy_{k}": v for k, v in buy.items()}, **{f"sell_{k}": v for k, v in sell.items()}})
        return pd.DataFrame(rows)


def _signal_codes(signal: pd.Series) -> np.ndarray:
    """Signal codes (0 BUY, 1 HOLD, 2 SELL; anything else 1) of a signal column."""
    if isinstance(signal.dtype, pd.CategoricalDtype) and list(signal.cat.categories) == list(SIGNALS):
        return signal.cat.codes.to_numpy(np.int8)
    codes = pd.Categorical(signal.astype("string"), categories=list(SIGNALS)).codes.astype(np.int8)
    return np.where(codes < 0, 1, codes).astype(np.int8)


def take_rows(frame: pd.DataFrame, rows: np.ndarray, **extra) -> pd.DataFrame:
    """``frame.iloc[rows]`` plus ``extra`` columns, taken column by column with plain numpy takes."""
    columns = {}
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            columns[name] = pd.Categorical.from_codes(column.cat.codes.to_numpy()[rows], dtype=column.dtype,
                                                      validate=False)
        elif isinstance(column.dtype, np.dtype):
            columns[name] = column.to_numpy()[rows]
        else:
            columns[name] = column.array.take(rows)
    columns.update(extra)
    return pd.DataFrame(columns, index=frame.index[rows], copy=False)


def scoring_window(days: np.ndarray, horizon_days: int, start=None, end=None) -> tuple[int, int, pd.Timestamp]:
    """First and last day number of flags to score, and the end as a timestamp."""
    last_date = pd.Timestamp(dates_of(np.array([days.max()]))[0])
    end_ts = pd.Timestamp(end) if end is not None else last_date - pd.Timedelta(days=horizon_days)
    end_day = int(np.floor((end_ts - _EPOCH) / pd.Timedelta(days=1)))
    start_day = int(np.ceil((pd.Timestamp(start) - _EPOCH) / pd.Timedelta(days=1))) if start is not None \
        else np.iinfo(np.int32).min
    return start_day, end_day, end_ts


def kpis_from_partials(counts: np.ndarray, sums: np.ndarray, horizon_days: int, target_return: float,
                       end_ts: pd.Timestamp) -> dict:
    """The KPI dict from per-series counts and sums (:func:`pokewatch.kernels.backtest_partials`).

    The tables are summed over series in series order, so any sharding of the series
    that keeps their order gives exactly the same KPIs.
    """
    first_day = int(counts[:, kernels.C_FIRST_DAY].min()) if len(counts) else kernels.NO_DAY
    total = counts.sum(axis=0)
    sums = sums.sum(axis=0)
    c = dict(zip(kernels.COUNT_COLUMNS, (int(v) for v in total)))
    scored, covered, eligible, forecast = c["scored"], c["covered"], c["eligible"], c["forecast"]
    buy = _precision_recall(c["scored_buy"], c["good_buy"], c["hit_buy"], scored)
    sell = _precision_recall(c["scored_sell"], c["good_sell"], c["hit_sell"], scored)
    nan = float("nan")
    mean_return = {}
    for i, name in enumerate(SIGNALS):
        n = c[f"scored_{name.lower()}"]
        mean_return[f"mean_forward_return_{name.lower()}"] = float(sums[kernels.S_RETURN + i] / n) if n else nan
    shares = {name: c[f"covered_{name.lower()}"] / covered if covered else 0.0 for name in SIGNALS}
    return {
        "horizon_days": horizon_days,
        "target_return": target_return,
        "scored_from": f"{pd.Timestamp(dates_of(np.array([first_day]))[0]):%Y-%m-%d}"
        if first_day != kernels.NO_DAY else None,
        "scored_to": f"{end_ts:%Y-%m-%d}",
        "rows_eligible": eligible,
        "rows_scored": scored,
        "series_scored": c["series_scored"],
        **{f"buy_{k}": v for k, v in buy.items()},
        **{f"sell_{k}": v for k, v in sell.items()},
        **mean_return,
        "mape_fair": float(sums[kernels.S_APE_FAIR] / forecast) if forecast else nan,
        "mape_naive": float(sums[kernels.S_APE_NAIVE] / forecast) if forecast else nan,
        "rmse_fair": float(np.sqrt(sums[kernels.S_SQ_FAIR] / forecast)) if forecast else nan,
        "rmse_naive": float(np.sqrt(sums[kernels.S_SQ_NAIVE] / forecast)) if forecast else nan,
        "coverage": float(covered / eligible) if eligible else nan,
        "signal_rate": float((c["covered_buy"] + c["covered_sell"]) / covered) if covered else nan,
        "signal_flip_rate": float(c["flips"] / c["flip_pairs"]) if c["flip_pairs"] else nan,
        "share_buy": float(shares["BUY"]),
        "share_hold": float(shares["HOLD"]),
        "share_sell": float(shares["SELL"]),
    }


def by_signal_table(codes: np.ndarray, forward_return: np.ndarray, scored: np.ndarray, counts: np.ndarray,
               sums: np.ndarray) -> pd.DataFrame:
    """count, mean and median forward return per signal over the scored rows."""
    total, sums = counts.sum(axis=0), sums.sum(axis=0)
    rows = []
    for i in range(len(SIGNALS)):
        n = int(total[kernels.C_SCORED_SIG + i])
        values = forward_return[scored & (codes == i)] if n else np.empty(0)
        rows.append({"count": n, "mean": sums[kernels.S_RETURN + i] / n if n else np.nan,
                     "median": float(np.median(values)) if n else np.nan})
    return pd.DataFrame(rows, index=pd.CategoricalIndex(SIGNALS, dtype=SIGNAL_DTYPE, name="signal"))


def scored_rows(frame: pd.DataFrame, prices: np.ndarray, fair: np.ndarray, forward_return: np.ndarray,
            flags: np.ndarray, target_return: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The scored rows and the forecast errors, built from the per-row kernel outputs."""
    picked = np.flatnonzero(flags & kernels.ROW_SCORED)
    returns = forward_return[picked]
    scored = take_rows(frame, picked, forward_return=returns, good_buy=returns >= target_return,
                       good_sell=returns <= -target_return)
    rows = np.flatnonzero(flags & kernels.ROW_FORECAST)
    following = rows + 1
    denom = prices[following]
    errors = pd.DataFrame({"abs_error_fair": np.abs(fair[following] - denom) / denom,
                           "abs_error_naive": np.abs(prices[rows] - denom) / denom})
    return scored, errors


def score(pf: PriceFrame, fair: np.ndarray, codes: np.ndarray, horizon_days: int = 7, target_return: float = 0.05,
          start=None, end=None, min_price: float = 1.0, *, rows: bool = True) -> tuple:
    """Backtest tables of one set of fair values and signal codes over ``pf``.

    Returns:
        (counts, sums, forward_return, flags, end_ts): the per-series tables, the
        per-row forward returns and flags (empty unless ``rows``), and the scoring end.
    """
    start_day, end_day, end_ts = scoring_window(pf.days, horizon_days, start, end)
    counts, sums, forward_return, flags = kernels.backtest_partials(
        pf.prices, pf.days, np.ascontiguousarray(fair, np.float64), np.ascontiguousarray(codes, np.int8), pf.bounds,
        horizon_days, start_day, end_day, min_price, target_return, rows)
    return counts, sums, forward_return, flags, end_ts


def backtest_arrays(pf: PriceFrame, fair: np.ndarray, codes: np.ndarray, horizon_days: int = 7,
                    target_return: float = 0.05, start=None, end=None, min_price: float = 1.0,
                    frame: pd.DataFrame | Callable[[], pd.DataFrame] | None = None) -> BacktestResult:
    """:func:`run_backtest` on arrays: fair values and signal codes aligned with ``pf``.

    ``frame`` (or a function returning it) is the signals table the scored rows are
    taken from when they are first asked for; by default ``pf.frame``.

    Raises:
        ParameterError: bad horizon, target return or min_price.
    """
    horizon_days = params.positive_int("horizon_days", horizon_days, maximum=365)
    target_return = params.fraction("target_return", target_return)
    min_price = params.non_negative("min_price", min_price)
    counts, sums, forward_return, flags, end_ts = score(pf, fair, codes, horizon_days, target_return, start, end,
                                                        min_price)
    kpis = kpis_from_partials(counts, sums, horizon_days, target_return, end_ts)
    by_signal = by_signal_table(codes, forward_return, (flags & kernels.ROW_SCORED).astype(bool), counts, sums)

    def detail() -> tuple[pd.DataFrame, pd.DataFrame]:
        table = frame() if callable(frame) else frame if frame is not None else pf.frame
        return scored_rows(table, pf.prices, fair, forward_return, flags, target_return)

    return BacktestResult(kpis, by_signal=by_signal, detail=detail)


def run_backtest(signals: pd.DataFrame, horizon_days: int = 7, target_return: float = 0.05,
                 start=None, end=None, min_price: float = 1.0) -> BacktestResult:
    """Score the flags in ``signals`` (from :func:`pokewatch.signals.compute_signals`).

    Args:
        signals: all rows with fair values and signals, sorted by series and date.
        horizon_days: H, calendar days between a flag and its outcome.
        target_return: X, the move that makes a flag right.
        start, end: flag dates to score; ``end`` defaults to the last date minus H.
        min_price: rows under this price are outside the scored universe.

    Raises:
        ParameterError: bad horizon, target return or min_price.
    """
    horizon_days = params.positive_int("horizon_days", horizon_days, maximum=365)
    target_return = params.fraction("target_return", target_return)
    min_price = params.non_negative("min_price", min_price)
    if signals.empty:
        return BacktestResult(kpis={"rows_scored": 0}, scored=signals, by_signal=pd.DataFrame(),
                              errors=pd.DataFrame())
    codes = signals["series"].to_numpy(np.int32)
    pf = PriceFrame(codes, day_numbers(signals["date"]),
                    np.ascontiguousarray(signals["market_price"].to_numpy(np.float64)), series_bounds(codes), signals)
    fair = np.ascontiguousarray(signals["fair_value"].to_numpy(np.float64))
    signal_codes = _signal_codes(signals["signal"])
    return backtest_arrays(pf, fair, signal_codes, horizon_days, target_return, start, end, min_price, signals)
