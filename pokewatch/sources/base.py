"""What a price source is: fetch raw responses, then parse them into the long schema.

Splitting fetch from parse is what makes "nothing is lost" true: ``fetch`` only
downloads and writes every response to the run's :class:`RawArchive`; ``parse`` is
a pure function of that archive. A replay is ``parse`` alone.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import pandas as pd

from pokewatch.raw_archive import RawArchive
from pokewatch.watchlist import Selection


@dataclass(frozen=True)
class CollectRequest:
    """What to collect: the days [start, end] (one day unless backfilling) and options.

    ``options`` holds source-specific settings (``n_series`` for demo, ``category``
    and ``archives`` for tcgcsv, a watchlist ...). Secrets never travel here; sources
    read them from environment variables themselves.
    """

    start: pd.Timestamp
    end: pd.Timestamp
    options: dict = field(default_factory=dict)

    @property
    def days(self) -> pd.DatetimeIndex:
        return pd.date_range(self.start, self.end, freq="D")


@dataclass
class FetchReport:
    """What fetching achieved, for the data-quality report.

    ``failures`` lists items (cards, sets, days) that could not be fetched, each as
    ``{"item": ..., "error": ...}``; ``expected`` counts items attempted, so the
    collect step can compute completeness and fail only below its threshold.
    ``notes`` carries other findings worth reporting (stale prices, skipped rows).
    """

    expected: int = 0
    failures: list[dict] = field(default_factory=list)
    notes: list[dict] = field(default_factory=list)

    @property
    def completeness(self) -> float:
        if self.expected == 0:
            return 1.0
        return 1.0 - len(self.failures) / self.expected


class PriceSource:
    """Base class: subclasses set ``name`` and implement ``fetch`` and ``parse``."""

    name: str = ""
    #: True for sources whose fetch touches the network (shown in --help and docs).
    remote: bool = False
    #: True when the source can produce past days on demand (the demo market, a
    #: folder of archives): a first run then backfills ``history_days`` at once.
    history_capable: bool = False

    def can_backfill(self, options: dict) -> bool:
        """Whether, with these options, past days can be collected on a first run."""
        return self.history_capable

    def fetch(self, request: CollectRequest, raw: RawArchive) -> FetchReport:
        """Download everything ``request`` needs into ``raw``; never parse here."""
        raise NotImplementedError

    def parse(self, request: CollectRequest, raw: RawArchive) -> pd.DataFrame:
        """Turn the responses in ``raw`` into long-schema rows (before validation)."""
        raise NotImplementedError


def int_option(options: dict, name: str, default: int, minimum: int | None = 1,
               maximum: int | None = None) -> int:
    """``options[name]`` as an int (``--param`` values arrive as strings), range-checked.

    Raises:
        ParameterError: not a whole number, or outside [minimum, maximum].
    """
    from pokewatch.errors import ParameterError

    value = options.get(name, default)
    if value in (None, ""):
        value = default
    try:
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise ParameterError(f"option {name} must be a whole number, got {value!r}") from None
    if minimum is not None and number < minimum or maximum is not None and number > maximum:
        bounds = f"{minimum if minimum is not None else '-inf'}..{maximum if maximum is not None else 'inf'}"
        raise ParameterError(f"option {name} must be in {bounds}, got {number}")
    return number


def as_day(value) -> pd.Timestamp | None:
    """A source's date or timestamp as a naive UTC day; None when empty or unparseable."""
    if value in (None, ""):
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        return None
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.normalize()


def stored_selection(raw: RawArchive, source: str) -> Selection:
    """The watchlist selection a fetch recorded in ``raw`` (everything, when none was)."""
    return Selection.from_json(raw.get("selection.json")) if raw.has("selection.json") \
        else Selection(source=source)


def fetched_payloads(raw: RawArchive, kind: str) -> Iterator[tuple[dict, object]]:
    """(index entry, decoded JSON) of every good response of ``kind`` in fetch order.

    Error responses and bodies that are not JSON were counted when fetched; a
    parse skips them rather than fail on what the quality report already lists.
    """
    for entry in raw.entries():
        if entry.get("kind") != kind or not entry.get("ok", True):
            continue
        try:
            yield entry, json.loads(raw.get(entry["name"]))
        except ValueError:
            continue
