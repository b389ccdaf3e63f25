"""What a price source is: fetch raw responses, then parse them into the long schema.

Splitting fetch from parse is what makes "nothing is lost" true: ``fetch`` only
downloads and writes every response to the run's :class:`RawArchive`; ``parse`` is
a pure function of that archive. A replay is ``parse`` alone.

This module also holds what every parser needs to read untrusted records without
crashing on one bad record: JSON decoding that keeps duplicate keys visible
(:func:`loads_json`), and readers of ids, text fields and nested objects that say
what is wrong instead of raising (:func:`source_id`, :func:`text_of`,
:func:`object_of`). A parser turns such a problem into a row whose
:data:`pokewatch.core.schema.MALFORMED` column says what was wrong; validation then
rejects it as ``malformed_record``.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from pokewatch.data.raw_archive import RawArchive
from pokewatch.data.sources.options import Option, check_options
from pokewatch.data.watchlist import Selection, check_watchlist_option


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
    """Base class: subclasses set ``name`` and ``OPTIONS`` and implement ``fetch`` and ``parse``."""

    name: str = ""
    #: True for sources whose fetch touches the network (shown in --help and docs).
    remote: bool = False
    #: True when the source can produce past days on demand (the demo market, a
    #: folder of archives): a first run then backfills ``history_days`` at once.
    history_capable: bool = False
    #: Every option the source reads (see :mod:`pokewatch.data.sources.options`).
    OPTIONS: tuple[Option, ...] = ()

    @classmethod
    def check_options(cls, options: Mapping[str, Any] | None, *, files: bool = True) -> dict[str, Any]:
        """Validate and normalise every option this source reads; fill in defaults.

        The pipeline calls this in its plan step, before anything runs; ``fetch`` and
        ``parse`` call it again and read their settings only from its result.

        Args:
            options: what :func:`pokewatch.run.collect.source_options` built from the
                collect notebook's parameters and ``source_options``.
            files: check that file and folder options exist (``parse`` turns it off:
                a replay needs only the run's raw responses).

        Returns:
            ``{name: value}`` for every option in :attr:`OPTIONS`.

        Raises:
            ParameterError: an unknown option (listing the known ones) or a bad value,
                naming the option as the user typed it.
        """
        return check_options(cls.OPTIONS, options, source=cls.name, files=files)

    def can_backfill(self, options: dict) -> bool:
        """Whether, with these options, past days can be collected on a first run."""
        return self.history_capable

    def fetch(self, request: CollectRequest, raw: RawArchive) -> FetchReport:
        """Download everything ``request`` needs into ``raw``; never parse here."""
        raise NotImplementedError

    def parse(self, request: CollectRequest, raw: RawArchive) -> pd.DataFrame:
        """Turn the responses in ``raw`` into long-schema rows (before validation)."""
        raise NotImplementedError


# --------------------------------------------------------------------------- options every source may share

WATCHLIST_OPTION = Option("watchlist", "custom", help="watchlist .yaml or .csv naming what to collect",
                          parse=check_watchlist_option)


def rate_option(default: int | None) -> Option:
    """The ``rate_limit_per_minute`` option of a network source (``None``: the source decides)."""
    return Option("rate_limit_per_minute", "int", default, "client-side request limit per minute",
                  minimum=1, maximum=100_000)


# --------------------------------------------------------------------------- reading untrusted records

class DuplicateKeyObject(dict):
    """A decoded JSON object that gave a key more than once.

    It behaves as the dict ``json`` would have built (the last value wins), and also
    keeps ``pairs`` (every key and value, in order) and ``duplicates`` (the repeated
    keys), so a parser can reject the record instead of silently keeping one value.
    """

    pairs: list[tuple[str, Any]]
    duplicates: list[str]


def _json_object(pairs: list[tuple[str, Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    flagged = DuplicateKeyObject(obj)
    flagged.pairs = pairs
    flagged.duplicates = sorted(k for k, n in Counter(k for k, _ in pairs).items() if n > 1)
    return flagged


def loads_json(data: bytes | str) -> Any:
    """Decode JSON, keeping objects with a repeated key visible as :class:`DuplicateKeyObject`.

    Raises:
        ValueError: not JSON (``json.JSONDecodeError`` or ``UnicodeDecodeError``).
    """
    return json.loads(data, object_pairs_hook=_json_object)


def duplicate_keys(value: Any, path: str = "") -> list[str]:
    """Dotted paths of every key given twice anywhere inside ``value`` (empty when none)."""
    found: list[str] = []
    stack = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item, DuplicateKeyObject):
                found.extend(f"{where}.{k}" if where else str(k) for k in item.duplicates)
            stack.extend((f"{where}.{k}" if where else str(k), v) for k, v in item.items()
                         if isinstance(v, (dict, list)))
        elif isinstance(item, list):
            stack.extend((f"{where}[{i}]", v) for i, v in enumerate(item) if isinstance(v, (dict, list)))
    return sorted(found)


def kind_of(value: Any) -> str:
    """How a JSON value reads in an error message: ``a list``, ``a string``, ``true/false`` ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (int, float)):
        return "a number"
    return f"a {type(value).__name__}"


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def source_id(value: Any, field_name: str = "id") -> tuple[str | None, str | None]:
    """A source's id as text, or why it is not one.

    Ids must be strings or whole numbers in the source; ``123`` and ``123.0`` become
    ``"123"``. A list, an object, true/false or a fractional number is not an id.

    Returns:
        ``(text, None)``, ``(None, None)`` when missing (validation then says
        ``missing_key``), or ``(None, problem)``.
    """
    if _is_missing(value):
        return None, None
    if isinstance(value, str):
        return value.strip(), None
    if isinstance(value, bool):
        return None, f"{field_name} is true/false, not a string or whole number"
    if isinstance(value, int):
        return str(value), None
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return str(int(value)), None
    return None, f"{field_name} is {kind_of(value)} ({_short(value)}), not a string or whole number"


def source_ids(values: pd.Series, field_name: str = "id") -> tuple[pd.Series, pd.Series]:
    """:func:`source_id` over a column: (ids as ``string``, problems as ``string``, NA when none)."""
    if pd.api.types.is_integer_dtype(values.dtype):
        return values.astype("string"), pd.Series(pd.NA, index=values.index, dtype="string")
    if pd.api.types.is_string_dtype(values.dtype) and not pd.api.types.is_object_dtype(values.dtype):
        return values.astype("string").str.strip(), pd.Series(pd.NA, index=values.index, dtype="string")
    pairs = [source_id(v, field_name) for v in values.tolist()]
    ids = pd.Series([p[0] for p in pairs], index=values.index, dtype="string")
    problems = pd.Series([p[1] for p in pairs], index=values.index, dtype="string")
    return ids, problems


def text_of(value: Any, field_name: str) -> tuple[str | None, str | None]:
    """A descriptive text field (name, number, rarity ...): text, or why it is not text.

    Strings are kept; numbers become text; null is missing. Lists and objects are
    problems (a record in an undocumented shape).
    """
    if _is_missing(value):
        return None, None
    if isinstance(value, str):
        return value, None
    if isinstance(value, bool):
        return None, f"{field_name} is true/false, not text"
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return str(value), None
    return None, f"{field_name} is {kind_of(value)} ({_short(value)}), not text"


def object_of(value: Any, field_name: str) -> tuple[dict, str | None]:
    """A nested JSON object: itself, ``{}`` when missing, or ``({}, problem)`` when not an object."""
    if _is_missing(value):
        return {}, None
    if isinstance(value, dict):
        return value, None
    return {}, f"{field_name} is {kind_of(value)} ({_short(value)}), not an object"


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def as_day(value) -> pd.Timestamp | None:
    """A source's date or timestamp as a naive UTC day; None when empty or unparseable."""
    if _is_missing(value) or value == "" or not isinstance(value, (str, int, float, pd.Timestamp)) \
            or isinstance(value, bool):
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        return None
    if pd.isna(stamp):
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
    Objects with a repeated key come back as :class:`DuplicateKeyObject`.
    """
    for entry in raw.entries():
        if entry.get("kind") != kind or not entry.get("ok", True):
            continue
        try:
            yield entry, loads_json(raw.get(entry["name"]))
        except ValueError:
            continue
