"""BUY / SELL / HOLD flags from the gap between market price and fair value.

deviation = (market - fair) / fair. BUY when deviation <= -buy_threshold, SELL
when deviation >= +sell_threshold, HOLD otherwise. The thresholds are asymmetric
(10% / 15% by default) because selling into a spike is costlier to get wrong than
buying a dip: fees and shipping eat the first few percent of any resale.

Cards under ``min_price`` (default $1) are never flagged: a 10% move on a
25-cent card is one cent of noise, not an opportunity. Days without a fair value
(a series' first observation) are HOLD and marked ``has_fair=False`` so coverage
can be measured.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from pokewatch import kernels, params
from pokewatch.fair_value import PriceFrame, kernel_arguments

SIGNALS = ("BUY", "HOLD", "SELL")
SIGNAL_DTYPE = pd.CategoricalDtype(list(SIGNALS))


def deviation(market: np.ndarray, fair: np.ndarray) -> np.ndarray:
    """(market - fair) / fair, NaN where fair is missing or not positive."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(fair > 0, (market - fair) / fair, np.nan)


def classify(dev: np.ndarray, market: np.ndarray, buy_threshold: float = 0.10,
             sell_threshold: float = 0.15, min_price: float = 1.0) -> np.ndarray:
    """Signal codes (0 BUY, 1 HOLD, 2 SELL) as int8, vectorized over all rows.

    Raises:
        ParameterError: a threshold outside (0, 1) / (0, 10) or a negative ``min_price``.
    """
    buy_cut, sell_cut, min_price = thresholds(buy_threshold, sell_threshold, min_price)
    eligible = (market >= min_price) & ~np.isnan(dev)
    codes = np.ones(len(dev), dtype=np.int8)
    codes[eligible & (dev <= buy_cut)] = 0
    codes[eligible & (dev >= sell_cut)] = 2
    return codes


def as_labels(codes: np.ndarray) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, dtype=SIGNAL_DTYPE)


def thresholds(buy_threshold: float = 0.10, sell_threshold: float = 0.15, min_price: float = 1.0
               ) -> tuple[float, float, float]:
    """The (buy cut, sell cut, min price) that :func:`classify` compares deviations with.

    A small tolerance keeps a price exactly on the threshold (0.90 * fair) a BUY
    despite binary floating point.

    Raises:
        ParameterError: a threshold outside (0, 1) / (0, 10) or a negative ``min_price``.
    """
    buy_threshold = params.fraction("buy_threshold", buy_threshold)
    sell_threshold = params.fraction("sell_threshold", sell_threshold, high=10.0)
    min_price = params.non_negative("min_price", min_price)
    return -buy_threshold + 1e-12, sell_threshold - 1e-12, min_price


def signal_arrays(pf: PriceFrame, method: str = "rolling_mean", window: int = 7, buy_threshold: float = 0.10,
                  sell_threshold: float = 0.15, min_price: float = 1.0
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fair value, deviation (float64) and signal code (int8: 0 BUY, 1 HOLD, 2 SELL) of every row of ``pf``.

    One compiled pass per series computes all three (see :mod:`pokewatch.kernels`).
    """
    code, window, com = kernel_arguments(method, window)
    cuts = thresholds(buy_threshold, sell_threshold, min_price)
    return kernels.signal_rows(pf.prices, pf.bounds, code, window, com, *cuts)


def signals_frame(pf: PriceFrame, fair: np.ndarray, codes: np.ndarray,
                  dev: np.ndarray | None = None) -> pd.DataFrame:
    """The long table of ``pf`` with fair value, deviation, signal and has_fair columns."""
    frame = pf.frame
    columns = {name: frame[name] for name in frame.columns}
    columns.update(fair_value=fair, deviation=dev if dev is not None else kernels.deviations(pf.prices, fair),
                   signal=as_labels(codes), has_fair=~np.isnan(fair))
    return pd.DataFrame(columns, index=frame.index, copy=False)


def compute_signals(history: pd.DataFrame | PriceFrame, method: str = "rolling_mean", window: int = 7,
                    buy_threshold: float = 0.10, sell_threshold: float = 0.15,
                    min_price: float = 1.0) -> pd.DataFrame:
    """Fair value, deviation and signal for every row of ``history``.

    Returns:
        ``history`` sorted by series and date, plus ``series`` (int code),
        ``fair_value``, ``deviation``, ``signal`` (categorical) and ``has_fair``.
    """
    pf = history if isinstance(history, PriceFrame) else PriceFrame.from_history(history)
    fair, dev, codes = signal_arrays(pf, method, window, buy_threshold, sell_threshold, min_price)
    return signals_frame(pf, fair, codes, dev)
