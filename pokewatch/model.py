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
from dataclasses import dataclass, field
from datetime import date as date_type

import numpy as np
import pandas as pd

from pokewatch import params
from pokewatch.errors import UnknownCardError, UnknownDateError
from pokewatch.schema import DESCRIPTIVE_COLUMNS, SERIES_KEY
from pokewatch.signals import SIGNALS, classify, compute_signals, deviation

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

    # -- persistence: the prediction cache is process-local --------------------------
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for key in ("_cache", "_card_index", "_date_index", "cache_hits", "cache_misses", "_asof"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._reset_cache()
        if self.series is not None:
            self._build_index()

    def _reset_cache(self) -> None:
        self._cache: dict = {}
        self.cache_hits = 0
        self.cache_misses = 0

    @property
    def params(self) -> dict:
        return {k: getattr(self, k) for k in
                ("method", "window", "buy_threshold", "sell_threshold", "min_price", "keep_days")}

    # -- fitting -----------------------------------------------------------------------
    def fit(self, history: pd.DataFrame | None = None, signals: pd.DataFrame | None = None) -> "FairValueModel":
        """Build the lookup table from ``history`` (or precomputed ``signals``).

        Pass ``signals`` when they were already computed with this model's
        parameters (the cached pipeline step does), to skip recomputing them.
        """
        if signals is None:
            signals = compute_signals(history, self.method, self.window, self.buy_threshold,
                                      self.sell_threshold, self.min_price)
        if signals.empty:
            raise UnknownDateError("cannot fit a model on an empty price history; collect prices first")
        last = signals["date"].max()
        first = last - pd.Timedelta(days=self.keep_days - 1)
        recent = signals[signals["date"] >= first]
        series_codes, series_pos = np.unique(recent["series"].to_numpy(), return_inverse=True)
        descriptive = [c for c in DESCRIPTIVE_COLUMNS if c in recent.columns]
        firsts = recent.drop_duplicates("series", keep="last").set_index("series")
        self.series = (firsts.loc[series_codes, [*SERIES_KEY, *descriptive]]
                       .reset_index(drop=True).astype("object"))
        self.dates = pd.date_range(first, last, freq="D")
        day_pos = (recent["date"] - first).dt.days.to_numpy()
        shape = (len(series_codes), len(self.dates))
        self.market = np.full(shape, np.nan)
        self.fair = np.full(shape, np.nan)
        self.market[series_pos, day_pos] = recent["market_price"].to_numpy()
        self.fair[series_pos, day_pos] = recent["fair_value"].to_numpy()
        self.fitted_through = f"{last:%Y-%m-%d}"
        self._build_index()
        self._reset_cache()
        logger.info("fitted %s(%d) on %d series through %s", self.method, self.window, shape[0], self.fitted_through)
        return self

    def _build_index(self) -> None:
        """Card -> row positions (preferred printing first), date -> column, and as-of columns."""
        frame = self.series.assign(position=np.arange(len(self.series)))
        rank = {v: i for i, v in enumerate(VARIANT_PREFERENCE)}
        frame["variant_rank"] = frame["variant"].map(rank).fillna(len(rank))
        frame["currency_rank"] = (frame["currency"] != "USD").astype(int)
        frame = frame.sort_values(["card_id", "currency_rank", "variant_rank", "variant"])
        self._card_index = {card: list(zip(group["variant"], group["currency"], group["position"]))
                            for card, group in frame.groupby("card_id", sort=False)}
        self._date_index = {f"{d:%Y-%m-%d}": i for i, d in enumerate(self.dates)}
        # For each (series, day), the latest column on or before it with a price.
        observed = ~np.isnan(self.market)
        cols = np.where(observed, np.arange(observed.shape[1]), -1)
        self._asof = np.maximum.accumulate(cols, axis=1)

    # -- prediction ----------------------------------------------------------------------
    def _require_fitted(self) -> None:
        if self.series is None:
            raise UnknownDateError("this model has not been fitted; call fit(history) first")

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
            return dict(hit)
        self.cache_misses += 1
        self._require_fitted()
        position = self._series_position(card_id, variant, currency)
        col = int(self._asof[position, self._column(date)])
        if col < 0:
            raise UnknownDateError(f"card {card_id!r} has no price on or before {date} in this model's window")
        market = float(self.market[position, col])
        fair = float(self.fair[position, col])
        dev = float(deviation(np.array([market]), np.array([fair]))[0])
        code = classify(np.array([dev]), np.array([market]), self.buy_threshold, self.sell_threshold,
                        self.min_price)[0]
        row = self.series.iloc[position]
        result = {
            "card_id": card_id, "variant": row["variant"], "currency": row["currency"],
            "date": f"{self.dates[col]:%Y-%m-%d}", "market_price": market,
            "fair_value": None if np.isnan(fair) else fair,
            "deviation": None if np.isnan(dev) else dev, "signal": SIGNALS[code],
        }
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = result
        return dict(result)

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
        out = self.series.iloc[rows].reset_index(drop=True)
        out["date"] = self.dates[cols]
        out["market_price"] = market
        out["fair_value"] = fair
        out["deviation"] = dev
        out["signal"] = pd.Categorical.from_codes(codes, categories=list(SIGNALS))
        return out

    def cards(self) -> pd.DataFrame:
        """The model's series with descriptive columns (id, name, set, variant ...)."""
        self._require_fitted()
        return self.series.copy()

    def cache_stats(self) -> dict:
        total = self.cache_hits + self.cache_misses
        return {"hits": self.cache_hits, "misses": self.cache_misses,
                "hit_rate": self.cache_hits / total if total else float("nan"), "entries": len(self._cache)}
