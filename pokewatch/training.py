"""Choosing the fair-value method and window by backtest on the training window.

Why by backtest and not by forecast error alone: on a market where three days in
four are flat, "tomorrow = today" is a forecast that is hard to beat, yet says
nothing about which deviations are worth acting on. The model exists to raise
flags, so candidates are ranked by how much better than chance their flags are
(mean of BUY and SELL lift), with forecast MAPE as the tie-breaker. A candidate
whose BUY or SELL side raised fewer than ``min_flags`` scored flags cannot win:
a lift measured on a handful of flags is luck.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from pokewatch import parallel, params
from pokewatch.backtest import kpis_from_partials, scoring_window
from pokewatch.errors import UnknownDateError
from pokewatch.fair_value import PriceFrame, kernel_arguments
from pokewatch.model import FairValueModel
from pokewatch.signals import thresholds

logger = logging.getLogger(__name__)

DEFAULT_CANDIDATES: tuple[tuple[str, int], ...] = (
    ("rolling_mean", 3), ("rolling_mean", 7), ("rolling_mean", 14), ("rolling_mean", 28),
    ("ewm", 3), ("ewm", 7), ("ewm", 14),
    ("rolling_median", 3), ("rolling_median", 7), ("rolling_median", 14),
    ("seed_mean3", 3),
)


def evaluate_candidates(history: pd.DataFrame | PriceFrame, candidates=DEFAULT_CANDIDATES, *,
                        buy_threshold: float = 0.10, sell_threshold: float = 0.15, min_price: float = 1.0,
                        horizon_days: int = 7, target_return: float = 0.05, min_flags: int = 30,
                        workers: int = 1, engine: str = "loky") -> pd.DataFrame:
    """Backtest every (method, window) candidate on ``history``; one row of KPIs each, best first.

    Each candidate is one compiled pass per series (fair value, signal and backtest
    fused, no per-row arrays), so the search costs about one backtest per candidate
    and little memory. ``workers``/``engine`` shard the series (see :mod:`pokewatch.parallel`);
    the table is the same whatever they are.
    """
    pf = history if isinstance(history, PriceFrame) else PriceFrame.from_history(history)
    horizon_days = params.positive_int("horizon_days", horizon_days, maximum=365)
    target_return = params.fraction("target_return", target_return)
    cuts = thresholds(buy_threshold, sell_threshold, min_price)
    candidates = tuple((str(m), int(w)) for m, w in candidates)
    for method, window in candidates:
        kernel_arguments(method, window)
    if len(pf) == 0:
        raise UnknownDateError("cannot train on an empty price history; collect prices first")
    start_day, end_day, end_ts = scoring_window(pf.days, horizon_days)
    tables = parallel.candidate_partials(pf, candidates, cuts, horizon_days, start_day, end_day, target_return,
                                         workers=workers, engine=engine)
    rows = [{"method": method, "window": window,
             **kpis_from_partials(counts, sums, horizon_days, target_return, end_ts)}
            for (method, window), (counts, sums) in zip(candidates, tables)]
    table = pd.DataFrame(rows)
    enough = (table["buy_flags"] >= min_flags) & (table["sell_flags"] >= min_flags)
    table["score"] = np.where(enough, table[["buy_lift", "sell_lift"]].mean(axis=1), np.nan)
    table["eligible"] = enough
    return table.sort_values(["score", "mape_fair"], ascending=[False, True], na_position="last") \
        .reset_index(drop=True)


def train(history: pd.DataFrame | PriceFrame, run_date, *, method: str = "auto", window: int = 7,
          buy_threshold: float = 0.10, sell_threshold: float = 0.15, min_price: float = 1.0,
          horizon_days: int = 7, target_return: float = 0.05, keep_days: int = 90,
          candidates=DEFAULT_CANDIDATES, workers: int = 1, engine: str = "loky"
          ) -> tuple[FairValueModel, pd.DataFrame]:
    """Pick method and window (unless given), fit the model, and say why.

    Returns:
        The fitted model (its ``selection`` dict holds the reason and the winner's
        KPIs) and the candidate table.
    """
    if method != "auto":
        candidates = ((method, window),)
    pf = history if isinstance(history, PriceFrame) else PriceFrame.from_history(history)
    table = evaluate_candidates(pf, candidates, buy_threshold=buy_threshold,
                                sell_threshold=sell_threshold, min_price=min_price,
                                horizon_days=horizon_days, target_return=target_return,
                                workers=workers, engine=engine)
    best = table.iloc[0]
    if method != "auto":
        reason = f"{method}({window}) was fixed by the run parameters; no search was made"
    elif pd.isna(best["score"]):
        best = table.sort_values("mape_fair").iloc[0]
        reason = (f"no candidate raised enough BUY and SELL flags to measure lift; chose {best['method']}"
                  f"({best['window']}) for the lowest MAPE {best['mape_fair']:.2%}")
    else:
        reason = (f"chose {best['method']}({best['window']}) out of {len(table)} candidates for the best mean "
                  f"lift {best['score']:.2f} (BUY {best['buy_lift']:.2f}, SELL {best['sell_lift']:.2f}); "
                  f"fair-value MAPE {best['mape_fair']:.2%} vs naive last price {best['mape_naive']:.2%}")
    logger.info(reason)
    model = FairValueModel(method=str(best["method"]), window=int(best["window"]), buy_threshold=buy_threshold,
                           sell_threshold=sell_threshold, min_price=min_price, keep_days=keep_days,
                           trained_on=f"{pd.Timestamp(run_date):%Y-%m-%d}")
    model.selection = {"reason": reason, "horizon_days": horizon_days, "target_return": target_return,
                       "kpis": {k: (None if isinstance(v, float) and np.isnan(v) else v)
                                for k, v in best.to_dict().items()}}
    return model.fit(pf), table
