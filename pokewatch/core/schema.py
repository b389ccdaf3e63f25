"""The one long price format every PokeWatch step speaks, and its validation.

Sources differ wildly (tcgcsv keys prices by product and sub-type, pokemontcg.io
nests them per variant, trackers write ``{card: {date: price}}``); everything
downstream only ever sees this table, so a new source is a parser and nothing else.

One row is one observation: a card, in one printing variant, on one day, at one
market price in one currency, from one source.

============== ============== ====================================================
column         dtype          meaning
============== ============== ====================================================
card_id        string         pokemontcg.io-style id (``sv3pt5-199``) or source id
variant        string         printing: Normal, Holofoil, Reverse Holofoil, ...
date           datetime64[ns] trading day (midnight, no time zone)
market_price   float64        market price in ``currency``; > 0
currency       string         ``USD`` (TCGplayer) or ``EUR`` (Cardmarket)
source         string         ``demo``, ``tcgcsv``, ``pokemontcg``, ...
name           string         card name (``Charizard ex``)          [descriptive]
set_id         string         set id (``sv3pt5``)                    [descriptive]
set_name       string         set name (``151``)                     [descriptive]
number         string         collector number                        [descriptive]
rarity         string         rarity                                  [descriptive]
category       string         watchlist category (grail, chase, ...)  [descriptive]
============== ============== ====================================================

Sources may add further descriptive columns (``low_price``, ``product_id``,
``updated_at`` ...); they are carried through untouched.

A parser that meets a record it cannot read (a price block that is a string, an
id that is a list, a JSON key given twice) does not raise: it emits a row with a
description of the problem in the :data:`MALFORMED` column, and validation rejects
that row as ``malformed_record``. So one bad record never costs the rest of a day,
and every bad record is counted in the run's quality report and rejected rows.

A *series* is ``(card_id, variant, currency)``: USD and EUR prices of one card are
never mixed. The primary key of an observation is a series plus ``date``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pokewatch.core.rules import SIGNALS
from pokewatch.errors import ParameterError, SchemaError

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ["card_id", "variant", "date", "market_price", "currency", "source"]
DESCRIPTIVE_COLUMNS = ["name", "set_id", "set_name", "number", "rarity", "category"]
SERIES_KEY = ["card_id", "variant", "currency"]
PRIMARY_KEY = [*SERIES_KEY, "date"]
CURRENCIES = frozenset({"USD", "EUR"})
#: Key columns whose surrounding spaces are stripped, so "Holofoil " and "Holofoil" are one series.
STRIPPED_COLUMNS = ("card_id", "variant", "currency")
#: Column a parser fills with what was wrong with an unreadable source record; never in valid rows.
MALFORMED = "malformed"
#: The ``signal`` column's dtype wherever a table carries one (signals.csv, the model, the backtest).
SIGNAL_DTYPE = pd.CategoricalDtype(list(SIGNALS))
#: Plausible market prices, inclusive, in any currency: outside them a price is a data error.
PRICE_BOUNDS = (0.01, 1_000_000.0)

#: Why a row was rejected, in the order the rules are applied; the quality report counts rows per reason.
REJECT_REASONS = {
    "malformed_record": "the source record could not be read (a field of the wrong type or shape, an id that is "
                        "not a string or whole number, a JSON key given twice); its malformed column says what",
    "missing_key": "card_id or variant is empty",
    "bad_date": "date is missing or not a date",
    "missing_price": "market_price is null",
    "non_numeric_price": "market_price is not a number",
    "non_positive_price": "market_price is zero or negative",
    "non_finite_price": "market_price is infinite",
    "implausible_price": f"market_price is outside the plausible range {PRICE_BOUNDS[0]:g} to "
                         f"{PRICE_BOUNDS[1]:,.0f} (schema.PRICE_BOUNDS)",
    "unknown_currency": f"currency is not one of {sorted(CURRENCIES)}",
    "duplicate_key": "same card, variant, currency and date seen earlier in the batch",
}


@dataclass
class ValidationResult:
    """Rows that passed, rows that did not (with a ``reason``), and counts per reason."""

    valid: pd.DataFrame
    rejected: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def n_input(self) -> int:
        return len(self.valid) + len(self.rejected)

    def summary(self) -> dict:
        """JSON-ready summary for the run's data-quality report."""
        return {
            "rows_in": self.n_input,
            "rows_valid": len(self.valid),
            "rows_rejected": len(self.rejected),
            "rejected_by_reason": {
                reason: {"count": n, "meaning": REJECT_REASONS[reason]}
                for reason, n in self.counts.items()
            },
        }


def empty_prices() -> pd.DataFrame:
    """An empty, correctly typed price table."""
    frame = pd.DataFrame({c: pd.Series(dtype="string") for c in REQUIRED_COLUMNS + DESCRIPTIVE_COLUMNS})
    frame["date"] = pd.Series(dtype="datetime64[ns]")
    frame["market_price"] = pd.Series(dtype="float64")
    return frame


def conform(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` with the schema's dtypes and every descriptive column present.

    Raises:
        SchemaError: a required column is missing, naming the ones present.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"price table is missing required column(s) {missing}; it has {list(frame.columns)}. "
            f"Map your columns to {REQUIRED_COLUMNS} (see pokewatch.core.schema)."
        )
    out = frame.copy(deep=False)  # copy-on-write: every column below is replaced, never changed in place
    for col in ("card_id", "variant", "currency", "source", *DESCRIPTIVE_COLUMNS):
        if col not in out.columns:
            out[col] = pd.NA
        out[col] = out[col].astype("string")
    for col in STRIPPED_COLUMNS:
        out[col] = out[col].str.strip()
    out["date"] = _as_days(out["date"])
    out["market_price"] = _as_prices(out["market_price"])
    return out


def _as_prices(values: pd.Series) -> pd.Series:
    """Prices as float64; anything that is not a number (text, lists, true/false) becomes NaN."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return pd.Series(np.nan, index=values.index, dtype="float64")
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) not in (
            "floating", "integer", "mixed-integer-float", "decimal", "empty"):
        values = values.where(~values.map(lambda v: isinstance(v, (bool, np.bool_))), "not a number")
    return pd.to_numeric(values, errors="coerce").astype("float64")


def _as_days(values: pd.Series) -> pd.Series:
    """Dates as naive midnight ``datetime64[ns]``; unparseable values become NaT."""
    if not pd.api.types.is_datetime64_any_dtype(values):
        values = pd.to_datetime(values, errors="coerce", format="mixed")
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_localize(None)
    # pandas may parse a date like 0001-01-01 at second resolution; it has no
    # nanosecond form, so it is as unusable as text and becomes NaT.
    representable = values.isna() | values.between(pd.Timestamp.min, pd.Timestamp.max)
    return values.where(representable).dt.normalize().astype("datetime64[ns]")


def validate_observations(frame: pd.DataFrame, *,
                          price_bounds: tuple[float, float] = PRICE_BOUNDS) -> ValidationResult:
    """Split a batch of observations into valid rows and rejected rows with reasons.

    Invalid rows never raise and are never dropped silently: each rejected row keeps
    its original values plus a ``reason`` (the first rule it broke, in the order of
    :data:`REJECT_REASONS`). Of rows sharing a primary key the first is kept. A row
    whose :data:`MALFORMED` column is filled is ``malformed_record``; that column is
    kept in the rejected rows (it says what was wrong) and dropped from the valid ones.
    ``card_id``, ``variant`` and ``currency`` are compared and stored stripped of
    surrounding spaces.

    Args:
        frame: observations in the long schema, as a parser emits them.
        price_bounds: the inclusive (low, high) range of plausible prices; a finite
            positive price outside it is ``implausible_price``.

    Raises:
        SchemaError: only when required columns are missing altogether.
        ParameterError: ``price_bounds`` is not 0 < low <= high.
    """
    low, high = price_bounds
    if not 0 < low <= high:
        raise ParameterError(f"price_bounds must be 0 < low <= high, got {price_bounds!r}")
    raw_price = frame["market_price"] if "market_price" in frame.columns else None
    table = conform(frame)
    reason = pd.Series(pd.NA, index=table.index, dtype="string")

    def mark(mask: pd.Series, why: str) -> None:
        reason[mask.fillna(False).astype(bool) & reason.isna()] = why

    if MALFORMED in table.columns:
        problem = table[MALFORMED]
        mark(problem.notna() & problem.astype("string").str.len().gt(0), "malformed_record")
    mark(table["card_id"].fillna("").eq("") | table["variant"].fillna("").eq(""), "missing_key")
    mark(table["date"].isna(), "bad_date")
    price_was_null = raw_price.isna() if raw_price is not None else pd.Series(True, index=table.index)
    mark(price_was_null, "missing_price")
    mark(table["market_price"].isna(), "non_numeric_price")
    mark(table["market_price"] <= 0, "non_positive_price")
    mark(~np.isfinite(table["market_price"].fillna(0.0)), "non_finite_price")
    mark(~table["market_price"].between(low, high), "implausible_price")
    mark(~table["currency"].isin(CURRENCIES), "unknown_currency")
    # The later rows of a key among the still-valid ones; comparing only those rows (rather than
    # masking the others to NA) took 0.10 s instead of 0.38 s on 770,000 rows.
    still_ok = np.flatnonzero(reason.isna().to_numpy())
    repeated = np.zeros(len(table), dtype=bool)
    repeated[still_ok[table[PRIMARY_KEY].take(still_ok).duplicated(keep="first").to_numpy()]] = True
    mark(pd.Series(repeated, index=table.index), "duplicate_key")

    rejected_mask = reason.notna()
    rejected = frame.loc[rejected_mask].copy()
    rejected["reason"] = reason[rejected_mask].to_numpy()
    valid = table.loc[~rejected_mask].drop(columns=[MALFORMED], errors="ignore").reset_index(drop=True)
    counts = {r: int(n) for r, n in reason[rejected_mask].value_counts().items()}
    counts = {r: counts[r] for r in REJECT_REASONS if r in counts}
    if counts:
        logger.warning("rejected %d of %d rows: %s", int(rejected_mask.sum()), len(table), counts)
    return ValidationResult(valid=valid, rejected=rejected.reset_index(drop=True), counts=counts)


# -- stored columns: what the price store keeps ------------------------------------------------
# Why a policy: a file with 200,000 unmapped columns once went into the store and its
# compacted history whole (85 KB became 596 MB; every later load took 32 s). The store
# keeps the schema's columns, the extra columns sources are known to add, and at most
# MAX_EXTRA_COLUMNS columns a user declared (the file source's ``columns=`` option).

#: Extra columns the built-in sources add, kept beside the schema's columns.
KNOWN_EXTRA_COLUMNS = (
    "low_price", "mid_price", "high_price", "direct_low_price", "product_id", "updated_at",  # tcgcsv, pokemontcg
    "variant_key", "avg1", "avg7", "avg30",                                                 # pokemontcg
    "condition", "volume", "price_kind",                                                    # pokemonpricetracker
)
#: Most user-declared extra columns the store keeps (the known ones do not count).
MAX_EXTRA_COLUMNS = 16
#: Longest text (characters) the store keeps in a descriptive or extra column; longer text is cut.
MAX_TEXT_CHARS = 256


def stored_columns(columns, declared=()) -> tuple[list[str], list[str]]:
    """Split column names into those the store keeps and those it drops.

    Kept: :data:`REQUIRED_COLUMNS`, :data:`DESCRIPTIVE_COLUMNS`,
    :data:`KNOWN_EXTRA_COLUMNS`, and the first :data:`MAX_EXTRA_COLUMNS` of
    ``declared`` that are present, in the order of ``columns``.

    Args:
        columns: the column names of a price table.
        declared: extra column names a user asked to keep.

    Returns:
        (kept, dropped), each in the order of ``columns``.
    """
    names = [str(c) for c in columns]
    present = set(names)
    allowed = set(REQUIRED_COLUMNS) | set(DESCRIPTIVE_COLUMNS) | set(KNOWN_EXTRA_COLUMNS)
    extra = [name for name in dict.fromkeys(str(d) for d in declared) if name in present and name not in allowed]
    allowed |= set(extra[:MAX_EXTRA_COLUMNS])
    kept = [name for name in names if name in allowed]
    dropped = [name for name in names if name not in allowed]
    return kept, dropped
