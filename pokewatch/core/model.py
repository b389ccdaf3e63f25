"""The fair-value model: the chosen rule plus a fast lookup of recent fair values and signals.

What gets saved in a run folder (``model.npz``: :meth:`FairValueModel.to_arrays`, written
by :mod:`pokewatch.run.model_file`) and served by the API. The
model is small on purpose: the :class:`~pokewatch.core.rules.Rule` (method, window,
thresholds, per-kind confirmations), why it was chosen, and for every series the
observed days of the last ``keep_days`` (no more days than were observed) of market
price, fair value and signal as dense arrays. ``predict`` is a few dictionary and
array look-ups (microseconds), and ``predict_all`` slices one column for every card.

Signals are computed once, by the rule's compiled pass (:mod:`pokewatch.core.signals`),
and stored: the model, ``signals.csv`` and the API therefore always agree. Deviations
and the "beyond a threshold" test of the notes use the same compiled rule
(:func:`pokewatch.core.kernels.classify`). A card
whose newest price is more than ``stale_days`` old is never flagged: it is HOLD and
marked ``stale``.

``fit`` recomputes the table from a price history with the model's own rule;
:mod:`pokewatch.core.training` decides the rule.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date as date_type

import numpy as np
import pandas as pd

from pokewatch.core import checks, kernels, parallel
from pokewatch.errors import ParameterError, UnknownCardError, UnknownDateError
from pokewatch.core.frame import PriceFrame, dates_of, day_numbers
from pokewatch.core.rules import BUY, HOLD, SIGNALS, Rule
from pokewatch.core.schema import DESCRIPTIVE_COLUMNS, SERIES_KEY
from pokewatch.core.signals import SIGNAL_DTYPE, deviation

logger = logging.getLogger(__name__)

#: When a card has several printings and no variant is asked for, the first
#: printing in this order answers (the one collectors usually mean).
VARIANT_PREFERENCE = ("Holofoil", "Normal", "Reverse Holofoil", "1st Edition Holofoil", "1st Edition Normal")
_CACHE_LIMIT = 200_000


@dataclass
class FairValueModel:
    """The rule, why it was chosen, and the fitted lookup table of recent days."""

    rule: Rule = field(default_factory=Rule)
    keep_days: int = 90
    stale_days: int = 2
    trained_on: str | None = None
    selection: dict = field(default_factory=dict)

    # Fitted state (set by fit).
    series: pd.DataFrame | None = field(default=None, repr=False)
    dates: pd.DatetimeIndex | None = field(default=None, repr=False)
    market: np.ndarray | None = field(default=None, repr=False)
    fair: np.ndarray | None = field(default=None, repr=False)
    codes: np.ndarray | None = field(default=None, repr=False)
    fitted_through: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.rule, Rule):
            raise ParameterError(f"a FairValueModel needs a pokewatch.core.rules.Rule, got {type(self.rule).__name__}")
        self.keep_days = checks.positive_int("keep_days", self.keep_days, maximum=3650)
        self.stale_days = checks.non_negative_int("stale_days", self.stale_days, maximum=3650)
        self._reset_cache()
        self._card_index = None
        self._asof = None

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
        self._asof = None

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict]:
        """The fitted model as plain numpy arrays plus JSON-ready metadata, for a file that needs no pickle.

        Nothing in the result names a Python class or module, so a saved model survives
        the package being reorganised. The day grids keep their dtypes (float64 prices and
        fair values, int8 signal codes); the days are int32 day numbers; the series columns
        are dictionary-encoded: ``series_codes`` (int32, one row per column, -1 for
        missing) index into that column's slice ``series_value_starts[i]:[i + 1]`` of
        ``series_values``, the distinct values of every column in one text array (few
        arrays load faster than many). :meth:`from_arrays` is the exact inverse:
        predictions are unchanged. A change to this layout needs a new format version in
        :mod:`pokewatch.run.model_file`, which writes it.

        Returns:
            ``(arrays, meta)``: ``meta`` holds the rule, the training facts and the column order.

        Raises:
            UnknownDateError: the model has not been fitted.
            ParameterError: a series value ends in a NUL character, which numpy text arrays drop.
        """
        if self.series is None:
            raise UnknownDateError("this model has not been fitted; call fit(history) first")
        encoded = [pd.factorize(self.series[column]) for column in self.series.columns]
        values = pd.Index(np.concatenate([np.asarray(distinct, object) for _codes, distinct in encoded]), dtype=object)
        text = np.asarray(values, dtype=str)
        if (np.char.str_len(text) != np.asarray(values.str.len(), np.int64)).any():
            raise ParameterError("a text value of the model's series ends in a NUL character, which cannot be "
                                 "saved; clean the source's text first")
        series_codes = np.array([codes for codes, _distinct in encoded], np.int32).reshape(len(encoded), -1)
        starts = np.cumsum([0, *(len(distinct) for _codes, distinct in encoded)], dtype=np.int32)
        arrays = {"days": day_numbers(self.dates), "market": self.market, "fair": self.fair,
                  "codes": np.asarray(self.codes, np.int8), "series_codes": series_codes, "series_values": text,
                  "series_value_starts": starts}
        meta = {"rule": self.rule.as_dict(), "keep_days": self.keep_days,
                "stale_days": self.stale_days, "trained_on": self.trained_on, "selection": self.selection,
                "fitted_through": self.fitted_through, "series_columns": list(self.series.columns)}
        return arrays, meta

    @classmethod
    def unfitted(cls, meta: dict) -> FairValueModel:
        """The rule, selection and settings :meth:`to_arrays` recorded in ``meta``, without the day grids.

        Raises:
            ParameterError: a metadata entry is missing.
        """
        try:
            return cls(Rule.from_dict(meta["rule"]), keep_days=meta["keep_days"], stale_days=meta["stale_days"],
                       trained_on=meta["trained_on"], selection=meta["selection"])
        except KeyError as exc:
            raise ParameterError(f"the model metadata lacks {exc.args[0]!r}; train the model again") from None

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], meta: dict) -> FairValueModel:
        """The model :meth:`to_arrays` described, ready to predict.

        Raises:
            ParameterError: an array or a metadata entry is missing, or the arrays do not
                fit together (the message says which).
        """
        model = cls.unfitted(meta)
        try:
            days = np.asarray(arrays["days"])
            grids = [np.asarray(arrays[name]) for name in ("market", "fair", "codes")]
            codes, starts = np.asarray(arrays["series_codes"]), np.asarray(arrays["series_value_starts"])
            values = pd.array(np.asarray(arrays["series_values"]), dtype="string")
            names = list(meta["series_columns"])
            fitted_through = meta["fitted_through"]
        except KeyError as exc:
            raise ParameterError(f"the model arrays lack {exc.args[0]!r}; train the model again") from None
        shape = (codes.shape[-1], len(days))
        sizes = np.diff(starts)
        if days.ndim != 1 or not len(days) or (np.diff(days) != 1).any() \
                or any(grid.shape != shape for grid in grids) or codes.shape != (len(names), shape[0]) \
                or starts.shape != (len(names) + 1,) or starts[0] != 0 or starts[-1] != len(values) \
                or (sizes < 0).any() or (codes.size and ((codes < -1) | (codes >= sizes[:, None])).any()):
            raise ParameterError(f"the model arrays do not fit together (days {days.shape}, grids "
                                 f"{[g.shape for g in grids]}, series codes {codes.shape} of {len(names)} "
                                 "columns); train the model again")
        positions = np.where(codes >= 0, codes + starts[:-1, None], -1)
        model.series = pd.DataFrame({name: values.take(at, allow_fill=True) for name, at in zip(names, positions)})
        model.dates = pd.date_range(pd.Timestamp(dates_of(days[:1])[0]), periods=len(days), freq="D")
        model.market = grids[0].astype(np.float64, copy=False)
        model.fair = grids[1].astype(np.float64, copy=False)
        model.codes = grids[2].astype(np.int8, copy=False)
        model.fitted_through = fitted_through
        return model

    def _reset_cache(self) -> None:
        self._cache: dict = {}
        self.cache_hits = 0
        self.cache_misses = 0

    # The rule's parameters, read through the model for callers that show them.
    method = property(lambda self: self.rule.method)
    window = property(lambda self: self.rule.window)
    buy_threshold = property(lambda self: self.rule.buy_threshold)
    sell_threshold = property(lambda self: self.rule.sell_threshold)
    min_price = property(lambda self: self.rule.min_price)

    @property
    def params(self) -> dict:
        return {**self.rule.as_dict(), "keep_days": self.keep_days, "stale_days": self.stale_days}

    # -- fitting -----------------------------------------------------------------------
    def fit(self, history: pd.DataFrame | PriceFrame, fair: np.ndarray | None = None,
            codes: np.ndarray | None = None, through=None) -> FairValueModel:
        """Build the lookup table from ``history`` under the model's rule.

        Pass ``fair`` and ``codes`` (aligned with the :class:`PriceFrame` of ``history``)
        when they were already computed with this rule (the cached pipeline step does),
        to skip recomputing them. ``through`` (the run date) extends the model's days
        past the newest price, so a card with no price since can be answered as stale.

        Raises:
            UnknownDateError: the history is empty.
        """
        pf = history if isinstance(history, PriceFrame) else PriceFrame.from_history(history)
        if len(pf) == 0:
            raise UnknownDateError("cannot fit a model on an empty price history; collect prices first")
        if fair is None or codes is None:
            fair, codes = parallel.rule_arrays(pf, self.rule)
        through_day = int(day_numbers(pd.Series([pd.Timestamp(through)]))[0]) if through is not None else None
        return self._fit_arrays(pf, fair, codes, through_day)

    def _fit_arrays(self, pf: PriceFrame, fair: np.ndarray, signal_codes: np.ndarray,
                    through_day: int | None = None) -> FairValueModel:
        """Fit from per-row arrays aligned with ``pf`` (sorted by series and date).

        Each series' recent rows are a suffix of it, found by binary search and copied
        straight into the day grids, so no array of every row is made here.
        """
        days, bounds = pf.days, pf.bounds
        last = int(days[bounds[1:] - 1].max())          # each series' newest day
        end = max(last, through_day) if through_day is not None else last
        first = max(last - (self.keep_days - 1), int(days[bounds[:-1]].min()))
        starts, first = kernels.recent_starts(days, bounds, first)
        first = int(first)                               # only days something was observed on
        has = starts < bounds[1:]
        positions = np.where(has, np.cumsum(has) - 1, -1).astype(np.int64)
        table = pf.rows(bounds[1:][has] - 1)            # each kept series' newest row
        descriptive = [c for c in ("source", *DESCRIPTIVE_COLUMNS) if c in table.columns]
        # Arrow-backed strings: the model pickles (and so loads from the cache) as a few
        # buffers instead of one Python object per cell.
        self.series = table[[*SERIES_KEY, *descriptive]].reset_index(drop=True).astype("string")
        first_ts = pd.Timestamp(dates_of(np.array([first]))[0])
        self.dates = pd.date_range(first_ts, periods=end - first + 1, freq="D")
        shape = (len(self.series), len(self.dates))
        self.market = np.full(shape, np.nan)
        self.fair = np.full(shape, np.nan)
        self.codes = np.full(shape, HOLD, np.int8)
        kernels.fill_recent(pf.prices, days, np.ascontiguousarray(fair, np.float64),
                            np.ascontiguousarray(signal_codes, np.int8), bounds, starts, positions, first,
                            self.market, self.fair, self.codes)
        self.fitted_through = f"{self.dates[-1]:%Y-%m-%d}"
        self._card_index = None
        self._asof = None
        self._reset_cache()
        logger.info("fitted %s on %d series through %s", self.rule.label, shape[0], self.fitted_through)
        return self

    def _build_index(self) -> None:
        """Card -> row positions (preferred printing first): what ``predict`` looks cards up in."""
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

    def _build_days(self) -> None:
        """Date -> column, and for each (series, day) the latest column on or before it with a price."""
        self._date_index = {f"{d:%Y-%m-%d}": i for i, d in enumerate(self.dates)}
        self._date_labels = list(self._date_index)
        observed = ~np.isnan(self.market)
        cols = np.where(observed, np.arange(observed.shape[1], dtype=np.int32), np.int32(-1))
        self._asof = np.maximum.accumulate(cols, axis=1)

    # -- prediction ----------------------------------------------------------------------
    def _require_fitted(self, cards: bool = True) -> None:
        """Raise when not fitted; build the day index and (with ``cards``) the card index on first use."""
        if self.series is None:
            raise UnknownDateError("this model has not been fitted; call fit(history) first")
        if getattr(self, "_asof", None) is None:
            self._build_days()
        if cards and self._card_index is None:
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
        model's window answers, and ``date`` in the result says which day that was;
        when that price is more than ``stale_days`` old the signal is HOLD and
        ``stale`` is True.

        Returns:
            dict with card_id, variant, currency, date, market_price, fair_value,
            deviation, signal and stale.

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
        dev = kernels.deviation_of(market, fair)
        age = int(self._column(date)) - col
        stale = age > self.stale_days
        code = HOLD if stale else int(self.codes[position, col])
        result = {
            "card_id": card_id, "variant": self._variants[position], "currency": self._currencies[position],
            "date": self._date_labels[col], "market_price": market,
            "fair_value": None if fair != fair else fair,
            "deviation": None if dev != dev else dev, "signal": SIGNALS[code], "stale": stale,
        }
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = result
        return result.copy()

    def predict_all(self, date=None) -> pd.DataFrame:
        """Every series' market price, fair value, deviation and signal on ``date``.

        Series without a price on that day use their latest earlier price in the
        window (``date`` column says which, ``days_old`` how old it is); series with
        none are left out. A price more than ``stale_days`` old is never flagged:
        ``signal`` is HOLD and ``stale`` is True.
        """
        self._require_fitted(cards=False)
        col = self._column(date)
        asof = self._asof[:, col]
        has = asof >= 0
        rows = np.flatnonzero(has)
        cols = asof[has]
        market = self.market[rows, cols]
        fair = self.fair[rows, cols]
        age = col - cols
        stale = age > self.stale_days
        codes = np.where(stale, HOLD, self.codes[rows, cols]).astype(np.int8)
        out = self.series.take(rows) if len(rows) < len(self.series) else self.series.copy(deep=False)
        out = out.reset_index(drop=True)
        out["date"] = self.dates.to_numpy()[cols]
        out["market_price"] = market
        out["fair_value"] = fair
        buy_cut, sell_cut, min_price = self.rule.cuts
        dev, side = kernels.classify_rows(market, fair, buy_cut, sell_cut)
        out["deviation"] = dev
        out["signal"] = pd.Categorical.from_codes(codes, dtype=SIGNAL_DTYPE)
        out["stale"] = stale
        out["days_old"] = age.astype(np.int64)
        out["note"] = self._notes(side, market >= min_price, codes, stale)
        return out

    def _notes(self, side: np.ndarray, priced: np.ndarray, codes: np.ndarray, stale: np.ndarray) -> np.ndarray:
        """Why a card past a threshold (``side``, of :func:`~pokewatch.core.kernels.classify`) is HOLD:
        a stale price, its kind switched off, or unconfirmed."""
        held = (codes == HOLD) & (side != HOLD) & priced
        off = np.where(side == BUY, self.rule.buy is None, self.rule.sell is None)
        kind = np.where(side == BUY, "BUY", "SELL")
        notes = np.full(len(side), "", dtype=object)
        notes[held & ~stale & ~off] = np.char.add(kind[held & ~stale & ~off].astype(str),
                                                  " not confirmed by this week's rule")
        notes[held & ~stale & off] = np.char.add(kind[held & ~stale & off].astype(str), " is off this week")
        notes[stale] = "price too old to flag"
        return notes

    def history(self, card_id: str, variant: str | None = None, currency: str | None = None) -> pd.DataFrame:
        """One series' kept days: date, market price, fair value, deviation and signal (observed days only).

        Raises:
            UnknownCardError: the card (or variant) is not in the model.
        """
        self._require_fitted()
        position = self._series_position(card_id, variant, currency)
        observed = ~np.isnan(self.market[position])
        market, fair = self.market[position, observed], self.fair[position, observed]
        return pd.DataFrame({"date": self.dates[observed], "market_price": market, "fair_value": fair,
                             "deviation": deviation(market, fair),
                             "signal": pd.Categorical.from_codes(self.codes[position, observed], dtype=SIGNAL_DTYPE),
                             "currency": self._currencies[position]})

    def cards(self) -> pd.DataFrame:
        """The model's series with descriptive columns (id, name, set, variant ...)."""
        self._require_fitted()
        return self.series.copy()

    def cache_stats(self) -> dict:
        total = self.cache_hits + self.cache_misses
        return {"hits": self.cache_hits, "misses": self.cache_misses,
                "hit_rate": self.cache_hits / total if total else float("nan"), "entries": len(self._cache)}
