"""BUY / SELL / HOLD flags of every row of a price history under one :class:`~pokewatch.core.rules.Rule`.

deviation = (market - fair) / fair. BUY when deviation <= -buy_threshold, SELL
when deviation >= +sell_threshold, HOLD otherwise, and only when the rule's
confirmations for that kind hold (see :mod:`pokewatch.core.rules`). The thresholds are
asymmetric (10% / 15% by default) because selling into a spike is costlier to get
wrong than buying a dip: fees and shipping eat the first few percent of any resale.

Cards under ``min_price`` (default $1), on the day or anywhere in the fair-value
window, are never flagged: a 10% move on a 25-cent card is one cent of noise, and a
card that just crossed up through $1 is judged against prices it did not have. Days
without a fair value (a series' first observation) are HOLD and marked
``has_fair=False`` so coverage can be measured.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from pokewatch.core import kernels
from pokewatch.core.frame import PriceFrame
from pokewatch.core.fair_value import kernel_arguments
from pokewatch.core.rules import SIGNALS, Rule, thresholds

SIGNAL_DTYPE = pd.CategoricalDtype(list(SIGNALS))

__all__ = ["SIGNALS", "SIGNAL_DTYPE", "as_labels", "compute_signals", "deviation", "signal_arrays", "signals_frame"]


def deviation(market: np.ndarray, fair: np.ndarray) -> np.ndarray:
    """(market - fair) / fair, NaN where fair is missing or not positive."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(fair > 0, (market - fair) / fair, np.nan)


def as_labels(codes: np.ndarray) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, dtype=SIGNAL_DTYPE)


def signal_arrays(pf: PriceFrame, rule: Rule) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fair value, deviation (float64) and signal code (int8: 0 BUY, 1 HOLD, 2 SELL) of every row of ``pf``.

    One compiled pass per series computes all three (see :func:`pokewatch.core.kernels.rule_rows`).
    """
    code, window, com = kernel_arguments(rule.method, rule.window)
    cuts = thresholds(rule.buy_threshold, rule.sell_threshold, rule.min_price)
    return kernels.rule_rows(pf.prices, pf.low, pf.bounds, code, window, com, *cuts, *rule.kernel_filters())


def signals_frame(pf: PriceFrame, fair: np.ndarray, codes: np.ndarray,
                  dev: np.ndarray | None = None) -> pd.DataFrame:
    """The long table of ``pf`` with fair value, deviation, signal and has_fair columns."""
    frame = pf.frame
    columns = {name: frame[name] for name in frame.columns}
    columns.update(fair_value=fair, deviation=dev if dev is not None else kernels.deviations(pf.prices, fair),
                   signal=as_labels(codes), has_fair=~np.isnan(fair))
    return pd.DataFrame(columns, index=frame.index, copy=False)


def compute_signals(history: pd.DataFrame | PriceFrame, rule: Rule | str = "rolling_mean", window: int = 7,
                    **rule_fields) -> pd.DataFrame:
    """Fair value, deviation and signal for every row of ``history``.

    Args:
        history: the long price table (or its :class:`PriceFrame`).
        rule: the rule to apply, or a fair-value method name: then
            ``Rule(rule, window, **rule_fields)`` (10% / 15% thresholds and no further
            confirmation unless given).

    Returns:
        ``history`` sorted by series and date, plus ``series`` (int code),
        ``fair_value``, ``deviation``, ``signal`` (categorical) and ``has_fair``.
    """
    pf = history if isinstance(history, PriceFrame) else PriceFrame.from_history(history)
    fair, dev, codes = signal_arrays(pf, rule if isinstance(rule, Rule) else Rule(rule, window, **rule_fields))
    return signals_frame(pf, fair, codes, dev)
