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
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pokewatch import params
from pokewatch.fair_value import PriceFrame

logger = logging.getLogger(__name__)


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


def _precision_recall(flagged: np.ndarray, good: np.ndarray) -> dict:
    n_flagged = int(flagged.sum())
    n_good = int(good.sum())
    hits = int((flagged & good).sum())
    base = n_good / len(good) if len(good) else float("nan")
    precision = hits / n_flagged if n_flagged else float("nan")
    return {
        "flags": n_flagged,
        "precision": precision,
        "recall": hits / n_good if n_good else float("nan"),
        "base_rate": base,
        "lift": precision / base if n_flagged and base > 0 else float("nan"),
    }


@dataclass
class BacktestResult:
    """KPIs as a flat dict plus the scored rows (for plots and per-category tables)."""

    kpis: dict
    scored: pd.DataFrame = field(repr=False)
    by_signal: pd.DataFrame = field(repr=False)
    errors: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    def by_category(self) -> pd.DataFrame:
        """BUY/SELL precision and lift per watchlist category (rows without one are 'uncategorised')."""
        frame = self.scored.assign(category=self.scored["category"].fillna("uncategorised")
                                   if "category" in self.scored else "uncategorised")
        rows = []
        for category, part in frame.groupby("category", observed=True):
            buy = _precision_recall(part["signal"].eq("BUY").to_numpy(), part["good_buy"].to_numpy())
            sell = _precision_recall(part["signal"].eq("SELL").to_numpy(), part["good_sell"].to_numpy())
            rows.append({"category": category, "rows": len(part),
                         **{f"buy_{k}": v for k, v in buy.items()}, **{f"sell_{k}": v for k, v in sell.items()}})
        return pd.DataFrame(rows)


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
        return BacktestResult(kpis={"rows_scored": 0}, scored=signals, by_signal=pd.DataFrame())

    market = signals["market_price"].to_numpy(np.float64)
    fair = signals["fair_value"].to_numpy(np.float64)
    future = forward_price(signals, horizon_days)
    forward_return = future / market - 1.0
    # Forecast check: the fair value that will judge the next observation (it sees
    # everything up to today) against today's price as the naive forecast.
    pf = PriceFrame(signals, *_starts(signals))
    next_price = pf.lead_within_series(market)
    next_fair = pf.lead_within_series(fair)

    last_date = signals["date"].max()
    end_ts = pd.Timestamp(end) if end is not None else last_date - pd.Timedelta(days=horizon_days)
    in_window = (signals["date"] <= end_ts).to_numpy()
    if start is not None:
        in_window &= (signals["date"] >= pd.Timestamp(start)).to_numpy()
    eligible = in_window & (market >= min_price)
    covered = eligible & ~np.isnan(fair)
    scored_mask = covered & ~np.isnan(forward_return)

    signal = signals["signal"].to_numpy()
    scored = signals.loc[scored_mask].assign(forward_return=forward_return[scored_mask])
    scored["good_buy"] = scored["forward_return"] >= target_return
    scored["good_sell"] = scored["forward_return"] <= -target_return
    buy = _precision_recall(scored["signal"].eq("BUY").to_numpy(), scored["good_buy"].to_numpy())
    sell = _precision_recall(scored["signal"].eq("SELL").to_numpy(), scored["good_sell"].to_numpy())

    forecast = covered & ~np.isnan(next_price) & ~np.isnan(next_fair)
    err_fair = next_fair[forecast] - next_price[forecast]
    err_naive = market[forecast] - next_price[forecast]
    denom = next_price[forecast]

    flips = _flip_rate(signals.loc[covered, ["series", "signal"]])
    dist = pd.Series(signal[covered]).value_counts(normalize=True)
    by_signal = scored.groupby("signal", observed=False)["forward_return"].agg(["count", "mean", "median"])

    kpis = {
        "horizon_days": horizon_days,
        "target_return": target_return,
        "scored_from": f"{signals['date'][in_window].min():%Y-%m-%d}" if in_window.any() else None,
        "scored_to": f"{end_ts:%Y-%m-%d}",
        "rows_eligible": int(eligible.sum()),
        "rows_scored": int(scored_mask.sum()),
        "series_scored": int(scored["series"].nunique()),
        **{f"buy_{k}": v for k, v in buy.items()},
        **{f"sell_{k}": v for k, v in sell.items()},
        **{f"mean_forward_return_{s.lower()}": float(by_signal.loc[s, "mean"]) if s in by_signal.index
           and by_signal.loc[s, "count"] else float("nan") for s in ("BUY", "HOLD", "SELL")},
        "mape_fair": float(np.mean(np.abs(err_fair) / denom)) if forecast.any() else float("nan"),
        "mape_naive": float(np.mean(np.abs(err_naive) / denom)) if forecast.any() else float("nan"),
        "rmse_fair": float(np.sqrt(np.mean(err_fair ** 2))) if forecast.any() else float("nan"),
        "rmse_naive": float(np.sqrt(np.mean(err_naive ** 2))) if forecast.any() else float("nan"),
        "coverage": float(covered.sum() / eligible.sum()) if eligible.any() else float("nan"),
        "signal_rate": float(np.isin(signal[covered], ["BUY", "SELL"]).mean()) if covered.any() else float("nan"),
        "signal_flip_rate": flips,
        "share_buy": float(dist.get("BUY", 0.0)),
        "share_hold": float(dist.get("HOLD", 0.0)),
        "share_sell": float(dist.get("SELL", 0.0)),
    }
    errors = pd.DataFrame({"abs_error_fair": np.abs(err_fair) / denom, "abs_error_naive": np.abs(err_naive) / denom})
    return BacktestResult(kpis=kpis, scored=scored, by_signal=by_signal, errors=errors)


def _starts(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    codes = frame["series"].to_numpy()
    n = len(codes)
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if n else np.zeros(0, np.int64)
    return starts, np.repeat(starts, np.diff(np.r_[starts, n]))


def _flip_rate(frame: pd.DataFrame) -> float:
    """Share of consecutive observations of a series whose signal changes."""
    if len(frame) < 2:
        return float("nan")
    codes = frame["series"].to_numpy()
    sig = frame["signal"].cat.codes.to_numpy() if hasattr(frame["signal"], "cat") else frame["signal"].to_numpy()
    same_series = codes[1:] == codes[:-1]
    if not same_series.any():
        return float("nan")
    return float((sig[1:] != sig[:-1])[same_series].mean())
