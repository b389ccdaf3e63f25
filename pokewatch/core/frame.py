"""The price history as series-sorted arrays: the one shape every compiled pass reads.

Why a module of its own: the store builds a :class:`PriceFrame` straight from its
memory-mapped columns, and every pass in :mod:`pokewatch.core` reads one, so the
storage layer depends on this shape and not on the model. A PriceFrame holds the long
table sorted by series and date with an integer series code, as plain arrays (series
code, day number, price and the offsets where each series starts), so windows never
cross from one series into the next.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from pokewatch.core import columnar
from pokewatch.core.schema import SERIES_KEY
from pokewatch.errors import SchemaError


_NS_PER_DAY = 86_400_000_000_000


def day_numbers(dates) -> np.ndarray:
    """Days since 1970-01-01 (int32) of a date column or array, whatever its resolution."""
    values = pd.to_datetime(dates) if not pd.api.types.is_datetime64_any_dtype(dates) else dates
    array = values.to_numpy() if hasattr(values, "to_numpy") else np.asarray(values)
    if array.dtype.kind != "M":  # time-zone aware: drop the zone, keep the wall-clock day
        array = pd.DatetimeIndex(values).tz_localize(None).to_numpy()
    if np.isnat(array).any():
        return array.astype("datetime64[D]").view(np.int64).astype(np.int32)
    per_day = np.timedelta64(1, "D") // np.timedelta64(1, np.datetime_data(array.dtype)[0])
    return columnar.floor_divide_to_int32(array.view(np.int64), int(per_day))


def dates_of(days: np.ndarray) -> np.ndarray:
    """datetime64[ns] midnights of day numbers (the inverse of :func:`day_numbers`)."""
    days = np.asarray(days)
    if days.dtype == np.int32 and days.ndim == 1:
        return columnar.scale_to_int64(days, _NS_PER_DAY).view("datetime64[ns]")
    return (days.astype(np.int64) * _NS_PER_DAY).view("datetime64[ns]")


def series_bounds(codes: np.ndarray) -> np.ndarray:
    """Offsets (int64, n_series + 1) where each run of equal series codes starts, then the row count."""
    n = len(codes)
    if n == 0:
        return np.zeros(1, np.int64)
    starts = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    return np.concatenate(([0], starts, [n])).astype(np.int64)


class PriceFrame:
    """A price table sorted by (series, date) with integer series codes, as arrays.

    Attributes:
        codes: int32 series code of each row (0..n_series-1, non-decreasing); may be given as a
            function that builds it, called on first use.
        days: int32 day number of each row (days since 1970-01-01).
        prices: float64 market price of each row.
        bounds: int64 offsets, ``n_series + 1``: series ``s`` owns rows ``bounds[s]:bounds[s+1]``.
        frame: the long table itself (built on first use when the arrays came from the
            store's compacted history), with a ``series`` int32 column added.
    """

    def __init__(self, codes: np.ndarray | Callable[[], np.ndarray], days: np.ndarray, prices: np.ndarray,
                 bounds: np.ndarray, frame: pd.DataFrame | Callable[[], pd.DataFrame] | None = None, *,
                 low: Callable[[], np.ndarray] | None = None,
                 rows: Callable[[np.ndarray], pd.DataFrame] | None = None) -> None:
        self._codes = codes
        self.days = days
        self.prices = prices
        self.bounds = bounds
        self._frame = frame
        self._low: np.ndarray | Callable[[], np.ndarray] | None = low
        self._rows = rows

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_history(cls, history: pd.DataFrame) -> PriceFrame:
        """Sort and code ``history`` (long schema); no copy when it is already ordered.

        Raises:
            SchemaError: a required column is missing, or a series key or price is null.
        """
        missing = [c for c in [*SERIES_KEY, "date", "market_price"] if c not in history.columns]
        if missing:
            raise SchemaError(f"price history lacks column(s) {missing}; see pokewatch.core.schema")
        codes = series_codes(history)
        days = day_numbers(history["date"])
        if columnar.is_sorted_by_series_and_day(codes, days):
            frame = history.reset_index(drop=True)
        else:
            order = np.lexsort((days, codes))
            frame = history.iloc[order].reset_index(drop=True)
            codes, days = codes[order], days[order]
        frame = frame.assign(series=codes)
        prices = np.ascontiguousarray(frame["market_price"].to_numpy(np.float64))
        if np.isnan(prices).any():
            raise SchemaError(f"market_price has {int(np.isnan(prices).sum())} null value(s); run the rows "
                              "through pokewatch.core.schema.validate_observations first")
        return cls(codes, days, prices, series_bounds(codes), frame)

    @property
    def codes(self) -> np.ndarray:
        """Each row's series code; a store builds it on first use, since the passes read ``bounds`` instead."""
        if callable(self._codes):
            self._codes = self._codes()
        return self._codes

    # -- the long table -------------------------------------------------------------------
    @property
    def frame(self) -> pd.DataFrame:
        if callable(self._frame):
            self._frame = self._frame()
        if self._frame is None:
            self._frame = pd.DataFrame({"series": self.codes, "date": dates_of(self.days),
                                        "market_price": self.prices})
        return self._frame

    def rows(self, positions) -> pd.DataFrame:
        """The long table's rows at ``positions`` (index: the positions), all columns.

        Why: each series' newest row, the scored flags or a few cards' history are a
        sliver of the table; a store reads just those rows of each column instead of
        building the whole table (32 million rows at 45,000 series x 730 days).
        """
        positions = np.asarray(positions, np.int64)
        if self._rows is not None and callable(self._frame):
            return self._rows(positions)
        return self.frame.iloc[positions]

    def rows_of_series(self, series: np.ndarray) -> np.ndarray:
        """Row positions (int64, in table order) of the series ``series`` (sorted codes)."""
        series = np.asarray(series, np.int64)
        first, lengths = self.bounds[series], np.diff(self.bounds)[series]
        offsets = np.repeat(first - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
        return offsets + np.arange(int(lengths.sum()), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.prices)

    @property
    def low(self) -> np.ndarray:
        """Lowest listing price per row (``low_price``), float64, or an empty array when the source has none.

        A store gives the column on its own (``low``), so reading it never builds the long table.
        """
        if callable(self._low):
            self._low = self._low()
        if self._low is None:
            column = self.frame["low_price"] if "low_price" in self.frame.columns else None
            self._low = (np.ascontiguousarray(pd.to_numeric(column, errors="coerce").to_numpy(np.float64))
                         if column is not None else np.zeros(0))
        return self._low

    @property
    def n_series(self) -> int:
        return len(self.bounds) - 1

    @property
    def starts(self) -> np.ndarray:
        """Row position of each series' first row, shape (n_series,)."""
        return self.bounds[:-1]


def series_codes(history: pd.DataFrame) -> np.ndarray:
    """int32 code of each row's series, numbered in sorted (card_id, variant, currency) order.

    The same numbering as ``groupby(SERIES_KEY, sort=True).ngroup()``, without the
    groupby: each key column is factorized (categorical columns for free) and the
    combined key is ranked with a bitmap.

    Raises:
        SchemaError: a series key is null.
    """
    if len(history) == 0:
        return np.zeros(0, np.int32)
    combined = np.zeros(len(history), np.int64)
    for name in SERIES_KEY:
        codes, uniques = pd.factorize(history[name], sort=True)
        if (codes < 0).any():
            raise SchemaError(f"{int((codes < 0).sum())} row(s) have no {name}; run the rows through "
                              "pokewatch.core.schema.validate_observations first")
        combined = combined * max(len(uniques), 1) + codes
    return rank_keys(combined)[0]


def rank_keys(keys: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense rank (int32, in sorted key order) of non-negative int64 ``keys``, and the number of distinct keys."""
    if len(keys) == 0:
        return np.zeros(0, np.int32), 0
    space = int(keys.max()) + 1
    if space <= 64 * len(keys) + 1_000_000:
        present = np.zeros(space, bool)
        present[keys] = True
        rank = np.cumsum(present, dtype=np.int64) - 1
        return rank[keys].astype(np.int32), int(rank[-1]) + 1
    uniques, inverse = np.unique(keys, return_inverse=True)
    return inverse.astype(np.int32), len(uniques)


def rows_of_cards(history: pd.DataFrame, card_ids) -> np.ndarray:
    """Boolean mask of ``history``'s rows whose ``card_id`` is one of ``card_ids``.

    Why: plots and the portfolio narrow a history of millions of rows to a handful of
    cards before any string work. With ``card_id`` categorical (as the store gives it)
    the test runs once per category and the rows take one lookup each, about 20× faster
    than :meth:`pandas.Series.isin` on 32 million rows.
    """
    ids = history["card_id"]
    wanted = pd.Index(pd.Series(list(card_ids), dtype="object").astype(str).unique())
    if isinstance(ids.dtype, pd.CategoricalDtype):
        hit = np.append(ids.cat.categories.astype(str).isin(wanted), False)   # the last slot: code -1 (null)
        return hit[ids.array.codes]   # the codes themselves: .cat.codes would copy them into a new Series
    return ids.isin(wanted).to_numpy(dtype=bool, na_value=False)


def history_of_cards(history, card_ids) -> pd.DataFrame:
    """The rows of ``history`` that belong to the cards ``card_ids``.

    ``history`` is a long table, or a table that builds rows only when asked for
    (:class:`pokewatch.core.signals.SignalHistory`: anything with ``of_cards``).
    """
    if isinstance(history, pd.DataFrame):
        return history[rows_of_cards(history, card_ids)]
    return history.of_cards(card_ids)


def first_day_of(history) -> pd.Timestamp:
    """The first day of ``history`` (a long table or a :class:`pokewatch.core.signals.SignalHistory`); NaT if none."""
    if isinstance(history, pd.DataFrame):
        return pd.Timestamp(history["date"].min()) if len(history) and "date" in history.columns else pd.NaT
    return history.first_day
