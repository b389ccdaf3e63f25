"""The fair-value model: chosen parameters plus a fast lookup of recent fair values.

What gets saved in a run folder (``model.joblib``) and served by the API. The
model is small on purpose: method, window, thresholds, why they were chosen, and
the last ``keep_days`` days of market and fair prices for every series as dense
arrays. ``predict`` is a few dictionary and array look-ups (microseconds), and
``predict_all`` slices one column of the arrays for every card at once.

``fit`` recomputes the table from a price history with the model's own
parameters; ``train`` (in :mod:`pokewatch.training`) decides those parameters.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import date as date_type

import numpy as np
import pandas as pd

from pokewatch import params
from pokewatch.errors import UnknownCardError, UnknownDateError
from pokewatch.fair_value import PriceFrame, dates_of, day_numbers, fair_value
from pokewatch.schema import DESCRIPTIVE_COLUMNS, SERIES_KEY
from pokewatch.signals import SIGNAL_DTYPE, SIGNALS, classify, deviation

logger = logging.getLogger(__name__)

#: When a card has several printings and no variant is asked for, the first
#: printing in this order answers (the one collectors usually mean).
VARIANT_PREFERENCE = ("Holofoil", "Normal", "Reverse Holofoil", "1st Edition Holofoil", "1st Edition Normal")
_CACHE_LIMIT = 200_000


@dataclass
class FairValueModel:
    """Parameters of the fair value and signal rules, and the fitted lookup table."""

    method: str = "rolling_mean"
    window: int = 7
    buy_threshold: float = 0.10
    sell_threshold: float = 0.15
    min_price: float = 1.0
    keep_days: int = 90
    trained_on: str | None = None
    selection: dict = field(default_factory=dict)

    # Fitted state (set by fit).
    series: pd.DataFrame | None = field(default=None, repr=False)
    dates: pd.DatetimeIndex | None = field(default=None, repr=False)
    market: np.ndarray | None = field(default=None, repr=False)
    fair: np.ndarray | None = field(default=None, repr=False)
    fitted_through: str | None = None

    def __post_init__(self) -> None:
        params.method("method", self.method)
        self.window = params.positive_int("window", self.window, maximum=365)
        self.buy_threshold = params.fraction("buy_threshold", self.buy_threshold)
        self.sell_threshold = params.fraction("sell_threshold", self.sell_threshold, high=10.0)
        self.min_price = params.non_negative("min_price", self.min_price)
        self.keep_days = params.positive_int("keep_days", self.keep_days, maximum=3650)
        self._reset_cache()
        self._card_index = None

    # -- persistence: the prediction cache and lookup indexes are process-local ----------
    _LOCAL = ("_cache", "_card_index", "_date_index", "_date_labels", "_variants", "_currencies", "_asof",
              "cache_hits", "cache_misses")

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for key in self._LOCAL:
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._reset_cache()
        self._card_index = None  # rebuilt on first use, so loading a model stays cheap

    def _reset_cache(self) -> None:
        self._cache: dict = {}
        self.cache_hits = 0
        self.cache_misses = 0

    @property
    def params(self) -> dict:
        return {k: getattr(self, k) for k in
                ("method", "window", "buy_threshold", "sell_threshold", "min_price", "keep_days")}

    # -- fitting -----------------------------------------------------------------------
    def fit(self, history: pd.DataFrame | PriceFrame | None = None,
            signals: pd.DataFrame | None = None) -> FairValueModel:
        """Build the lookup table from ``history`` (or precomputed ``signals``).

        Pass ``signals`` when they were already computed with this model's
        parameters (the cached pipeline step does), to skip recomputing them.
        """
        if signals is None:
            pf = history if isinstance(history, PriceFrame) else PriceFrame.from_history(history)
            if len(pf) == 0:
                raise UnknownDateError("cannot fit a model on an empty price history; collect prices first")
            fair = fair_value(pf, self.method, self.window)
            return self._fit_arrays(pf.codes, pf.days, pf.prices, fair, lambda rows: pf.frame.iloc[rows])
        if signals.empty:
            raise UnknownDateError("cannot fit a model on an empty price history; collect prices first")
        return self._fit_arrays(signals["series"].to_numpy(), day_numbers(signals["date"]),
                                signals["market_price"].to_numpy(np.float64),
                                signals["fair_value"].to_numpy(np.float64), lambda rows: signals.iloc[rows])

    def _fit_arrays(self, codes: np.ndarray, days: np.ndarray, market: np.ndarray, fair: np.ndarray,
                    rows_of) -> FairValueModel:
        """Fit from per-row arrays sorted by series and date; ``rows_of(positions)`` gives table rows."""
        last = int(days.max())
        first = last - (self.keep_days - 1)
        recent = np.flatnonzero(days >= first)
        recent_codes = codes[recent]
        new_series = np.r_[True, recent_codes[1:] != recent_codes[:-1]] if len(recent) else np.zeros(0, bool)
        series_pos = np.cumsum(new_series) - 1
        last_rows = recent[np.r_[np.flatnonzero(new_series)[1:] - 1, len(recent) - 1]] if len(recent) else recent
        table = rows_of(last_rows)
        descriptive = [c for c in DESCRIPTIVE_COLUMNS if c in table.columns]
        # Arrow-backed strings: the model pickles (and so loads from the cache) as a few
        # buffers instead of one Python object per cell.
        self.series = table[[*SERIES_KEY, *descriptive]].reset_index(drop=True).astype("string")
        first_ts = pd.Timestamp(dates_of(np.array([first]))[0])
        self.dates = pd.date_range(first_ts, periods=self.keep_days, freq="D")
        shape = (len(self.series), len(self.dates))
        self.market = np.full(shape, np.nan)
        self.fair = np.full(shape, np.nan)
        day_pos = days[recent] - first
        self.market[series_pos, day_pos] = market[recent]
        self.fair[series_pos, day_pos] = fair[recent]
        self.fitted_through = f"{self.dates[-1]:%Y-%m-%d}"
        self._card_index = None
        self._reset_cache()
        logger.info("fitted %s(%d) on %d series through %s", self.method, self.window, shape[0], self.fitted_through)
        return self

    def _build_index(self) -> None:
        """Card -> row positions (preferred printing first), date -> column, and as-of columns."""
        cards = self.series["card_id"].to_numpy(object)
        variants = self.series["variant"].to_numpy(object)
        currencies = self.series["currency"].to_numpy(object)
        rank = {v: i for i, v in enumerate(VARIANT_PREFERENCE)}
        variant_rank = np.array([rank.get(v, len(rank)) for v in variants], np.int64)
        currency_rank = (currencies != "USD").astype(np.int64)
        card_code, card_names = pd.factorize(cards, sort=True)
        card_names = list(card_names)
        variant_code = pd.factorize(variants, sort=True)[0]
        order = np.lexsort((variant_code, variant_rank, currency_rank, card_code))
        starts = np.flatnonzero(np.r_[True, card_code[order][1:] != card_code[order][:-1]])
        ends = np.r_[starts[1:], len(order)]
        options = list(zip(variants[order].tolist(), currencies[order].tolist(), order.tolist()))
        first_code = card_code[order[starts]].tolist()
        self._card_index = {card_names[c]: tuple(options[a:b])
                            for c, a, b in zip(first_code, starts.tolist(), ends.tolist())}
        self._variants, self._currencies = variants.tolist(), currencies.tolist()
        self._date_index = {f"{d:%Y-%m-%d}": i for i, d in enumerate(self.dates)}
        self._date_labels = list(self._date_index)
        # For each (series, day), the latest column on or before it with a price.
        observed = ~np.isnan(self.market)
        cols = np.where(observed, np.arange(observed.shape[1], dtype=np.int32), np.int32(-1))
        self._asof = np.maximum.accumulate(cols, axis=1)

    # -- prediction ----------------------------------------------------------------------
    def _require_fitted(self) -> None:
        if self.series is None:
            raise UnknownDateError("this model has not been fitted; call fit(history) first")
        if self._card_index is None:
            self._build_index()

    def _column(self, date) -> int:
        if date is None:
            return len(self.dates) - 1
        key = date if isinstance(date, str) else f"{pd.Timestamp(date):%Y-%m-%d}" \
            if isinstance(date, (date_type, pd.Timestamp, np.datetime64)) else str(date)
        col = self._date_index.get(key)
        if col is None:
            try:
                pd.Timestamp(key)
            except ValueError:
                raise UnknownDateError(f"date {date!r} is not a date; use YYYY-MM-DD") from None
            raise UnknownDateError(
                f"date {key} is outside this model's days {self.dates[0]:%Y-%m-%d}..{self.dates[-1]:%Y-%m-%d}")
        return col

    def _series_position(self, card_id: str, variant: str | None, currency: str | None) -> int:
        options = self._card_index.get(card_id)
        if options is None:
            known = ", ".join(list(self._card_index)[:5])
            raise UnknownCardError(
                f"card {card_id!r} is not in the model fitted through {self.fitted_through}; "
                f"known cards include {known} ({len(self._card_index)} in all)")
        for opt_variant, opt_currency, position in options:
            if (variant is None or opt_variant == variant) and (currency is None or opt_currency == currency):
                return position
        raise UnknownCardError(
            f"card {card_id!r} has no {variant or ''} {currency or ''} series; it has "
            + ", ".join(f"{v} ({c})" for v, c, _ in options))

    def predict(self, card_id: str, date=None, variant: str | None = None, currency: str | None = None) -> dict:
        """Fair value and signal of one card on ``date`` (default: the latest day).

        When the card has no price on ``date`` the latest earlier price in the
        model's window answers, and ``date`` in the result says which day that was.

        Returns:
            dict with card_id, variant, currency, date, market_price, fair_value,
            deviation and signal.

        Raises:
            UnknownCardError: the card (or the asked-for variant) is not in the model.
            UnknownDateError: the date is not a date or outside the model's window.
        """
        key = (card_id, date, variant, currency)
        hit = self._cache.get(key)
        if hit is not None:
            self.cache_hits += 1
            return hit.copy()
        self.cache_misses += 1
        self._require_fitted()
        position = self._series_position(card_id, variant, currency)
        col = int(self._asof[position, self._column(date)])
        if col < 0:
            raise UnknownDateError(f"card {card_id!r} has no price on or before {date} in this model's window")
        market = float(self.market[position, col])
        fair = float(self.fair[position, col])
        # Scalar versions of signals.deviation and signals.classify (same arithmetic).
        dev = (market - fair) / fair if fair > 0 else math.nan
        code = 1
        if market >= self.min_price and dev == dev:
            if dev <= -self.buy_threshold + 1e-12:
                code = 0
            if dev >= self.sell_threshold - 1e-12:
                code = 2
        result = {
            "card_id": card_id, "variant": self._variants[position], "currency": self._currencies[position],
            "date": self._date_labels[col], "market_price": market,
            "fair_value": None if fair != fair else fair,
            "deviation": None if dev != dev else dev, "signal": SIGNALS[code],
        }
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = result
        return result.copy()

    def predict_all(self, date=None) -> pd.DataFrame:
        """Every series' market price, fair value, deviation and signal on ``date``.

        Series without a price on that day use their latest earlier price in the
        window (``date`` column says which); series with none are left out.
        """
        self._require_fitted()
        col = self._column(date)
        asof = self._asof[:, col]
        has = asof >= 0
        rows = np.flatnonzero(has)
        cols = asof[has]
        market = self.market[rows, cols]
        fair = self.fair[rows, cols]
        dev = deviation(market, fair)
        codes = classify(dev, market, self.buy_threshold, self.sell_threshold, self.min_price)
        out = self.series.take(rows) if len(rows) < len(self.series) else self.series.copy(deep=False)
        out = out.reset_index(drop=True)
        out["date"] = self.dates.to_numpy()[cols]
        out["market_price"] = market
        out["fair_value"] = fair
        out["deviation"] = dev
        out["signal"] = pd.Categorical.from_codes(codes, dtype=SIGNAL_DTYPE)
        return out

    def cards(self) -> pd.DataFrame:
        """The model's series with descriptive columns (id, name, set, variant ...)."""
        self._require_fitted()
        return self.series.copy()

    def cache_stats(self) -> dict:
        total = self.cache_hits + self.cache_misses
        return {"hits": self.cache_hits, "misses": self.cache_misses,
                "hit_rate": self.cache_hits / total if total else float("nan"), "entries": len(self._cache)}
