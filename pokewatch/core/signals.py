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

from pokewatch.core import kernels, parallel
from pokewatch.core.frame import PriceFrame, dates_of, rows_of_cards
from pokewatch.core.rules import SIGNALS, Rule
from pokewatch.core.schema import SIGNAL_DTYPE

__all__ = ["SIGNALS", "SIGNAL_DTYPE", "SignalHistory", "as_labels", "compute_signals", "deviation", "signals_frame"]


def deviation(market: np.ndarray, fair: np.ndarray) -> np.ndarray:
    """(market - fair) / fair per row, NaN where fair is missing or not positive.

    The compiled definition (:func:`pokewatch.core.kernels.deviation_of`), so a deviation
    shown anywhere is the one the rule tested.
    """
    return kernels.deviations(np.ascontiguousarray(market, np.float64), np.ascontiguousarray(fair, np.float64))


def as_labels(codes: np.ndarray) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, dtype=SIGNAL_DTYPE)


def signals_frame(pf: PriceFrame, fair: np.ndarray, codes: np.ndarray,
                  dev: np.ndarray | None = None, rows: np.ndarray | None = None) -> pd.DataFrame:
    """The long table of ``pf`` (or its ``rows`` only) with fair value, deviation, signal and has_fair columns."""
    frame = pf.frame if rows is None else pf.rows(rows)
    if rows is not None:
        fair, codes, dev = fair[rows], codes[rows], None if dev is None else dev[rows]
    dev = dev if dev is not None else deviation(frame["market_price"].to_numpy(np.float64), fair)
    columns = {name: frame[name] for name in frame.columns}
    columns.update(fair_value=fair, deviation=dev, signal=as_labels(codes), has_fair=~np.isnan(fair))
    return pd.DataFrame(columns, index=frame.index, copy=False)


class SignalHistory:
    """Fair value, deviation and signal of every row of ``pf``, as arrays; a table only of the rows asked for.

    Why: the evaluate notebook draws a handful of cards (today's candidates and the held
    ones) over their whole history. At 45,000 series x 730 days the whole signals table
    is 32 million rows and about 1.4 GB, built only to be narrowed again.
    :meth:`of_cards` reads just those cards' rows from the store, and works out their
    deviations then (``dev`` None), so no array of every row's deviation is kept either.
    """

    def __init__(self, pf: PriceFrame, fair: np.ndarray, codes: np.ndarray, dev: np.ndarray | None = None) -> None:
        self.pf, self.fair, self.codes, self.dev = pf, fair, codes, dev
        self._card_of_series: pd.Series | None = None

    def __len__(self) -> int:
        return len(self.pf)

    @property
    def first_day(self) -> pd.Timestamp:
        """The first day with a price (NaT for an empty history)."""
        return pd.Timestamp(dates_of(np.array([self.pf.days.min()], np.int32))[0]) if len(self.pf) else pd.NaT

    def of_cards(self, card_ids) -> pd.DataFrame:
        """The signals table's rows of every printing of the cards ``card_ids`` (case as stored)."""
        if self._card_of_series is None:
            self._card_of_series = self.pf.rows(self.pf.starts)["card_id"].reset_index(drop=True)
        series = np.flatnonzero(rows_of_cards(self._card_of_series.to_frame(), card_ids))
        return signals_frame(self.pf, self.fair, self.codes, self.dev, rows=self.pf.rows_of_series(series))

    def table(self) -> pd.DataFrame:
        """Every row: the whole signals table (:func:`signals_frame`)."""
        return signals_frame(self.pf, self.fair, self.codes, self.dev)


def compute_signals(history: pd.DataFrame | PriceFrame, rule: Rule | str = "rolling_mean", window: int = 7, *,
                    workers: int = 1, engine: str = "loky", **rule_fields) -> pd.DataFrame:
    """Fair value, deviation and signal for every row of ``history``.

    The pipeline's own path (:func:`pokewatch.run.steps.signals_step`): one
    :func:`pokewatch.core.parallel.rule_arrays` pass, then :func:`signals_frame`.

    Args:
        history: the long price table (or its :class:`PriceFrame`).
        rule: the rule to apply, or a fair-value method name: then
            ``Rule(rule, window, **rule_fields)`` (10% / 15% thresholds and no further
            confirmation unless given).
        workers, engine: shards of cards (see :mod:`pokewatch.core.parallel`); the result is the same.

    Returns:
        ``history`` sorted by series and date, plus ``series`` (int code),
        ``fair_value``, ``deviation``, ``signal`` (categorical) and ``has_fair``.
    """
    pf = history if isinstance(history, PriceFrame) else PriceFrame.from_history(history)
    rule = rule if isinstance(rule, Rule) else Rule(rule, window, **rule_fields)
    fair, dev, codes = parallel.rule_arrays(pf, rule, workers=workers, engine=engine, with_dev=True)
    return signals_frame(pf, fair, codes, dev)
