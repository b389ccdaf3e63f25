"""The watchlist: which sets, cards or queries to collect, and why each is watched.

Why: a collector tracks a few hundred cards, not all 43,000 TCGplayer series, and
the backtest should say how the flags do on *grails* separately from *personal*
picks. The watchlist names what to fetch (together with the ``source``) and labels
each observation with a ``category`` column that evaluate groups its KPIs by.

Format (YAML; see ``watchlist.example.yaml`` at the repo root)::

    default_category: personal          # optional, for entries without one
    items:
      - set: sv3pt5                     # a whole set ...
        category: chase
      - card: sv3pt5-199                # ... one card ...
        category: grail
      - query: 'name:"Charizard ex"'    # ... or a pokemontcg.io q query
        category: meta
      - set: {pokemontcg: sv3pt5, tcgcsv: 23237, pokemonpricetracker: 23237}

Each entry has exactly one of ``set``, ``card`` or ``query``. A value is either a
plain id, used by every source, or a mapping from source name to that source's id,
because the sources number things differently. (A plain ``query`` is pokemontcg.io
``q`` syntax and goes to pokemontcg only; give PokemonPriceTracker's ``search`` text
as ``query: {pokemonpricetracker: charizard}``.)

* ``tcgcsv``: set = TCGplayer groupId (``23237``) or group name
  (``SV: Scarlet & Violet 151``); card = TCGplayer productId (``517045``).
* ``pokemontcg``: set = set id (``sv3pt5``); card = card id (``sv3pt5-199``).
* ``pokemonpricetracker``: set = ``setId`` (TCGplayer groupId); card =
  ``tcgPlayerId`` (productId).
* ``file``: set = the file's ``set_id``; card = the file's ``card_id``.

A CSV watchlist has the columns ``kind,value,category`` and optionally ``source``
(one row per entry and source; an empty ``source`` means every source)::

    kind,value,category,source
    set,sv3pt5,chase,pokemontcg
    set,23237,chase,tcgcsv
    card,sv3pt5-199,grail,

``category`` is one of :data:`CATEGORIES` or empty. When a card matches several
entries the most specific wins: card, then set, then query.
"""
from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from pokewatch.errors import ParameterError

logger = logging.getLogger(__name__)

#: The categories of the original project; evaluate reports KPIs per category.
CATEGORIES = ("grail", "chase", "meta", "personal")
KINDS = ("set", "card", "query")
_PRIORITY = {"card": 0, "set": 1, "query": 2}


@dataclass(frozen=True)
class WatchItem:
    """One entry: what (``kind``), which ids per source (``values``), its category."""

    kind: str
    values: Mapping[str, str]  # source name -> id; "*" is "every source"
    category: str | None = None

    def value_for(self, source: str) -> str | None:
        """This entry's id for ``source``; a plain ``query`` is pokemontcg.io syntax, for it alone."""
        if source in self.values:
            return self.values[source]
        if self.kind == "query" and source != "pokemontcg":
            return None
        return self.values.get("*")


@dataclass(frozen=True)
class Selection:
    """What one source should collect: ids with their categories (``None`` = uncategorised)."""

    source: str
    sets: dict[str, str | None] = field(default_factory=dict)
    cards: dict[str, str | None] = field(default_factory=dict)
    queries: dict[str, str | None] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.sets or self.cards or self.queries)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Selection:
        return cls(**json.loads(data))

    def restrict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Rows of watched sets or watched cards; all rows when neither is given."""
        if not (self.sets or self.cards):
            return frame
        keep = frame["card_id"].astype("string").isin(list(self.cards))
        if self.sets and "set_id" in frame.columns:
            keep |= frame["set_id"].astype("string").isin(list(self.sets))
        return frame.loc[keep.fillna(False).astype(bool)]

    def assign_categories(self, frame: pd.DataFrame, query_category: pd.Series | None = None) -> pd.DataFrame:
        """Fill ``category``: the card's entry, else its set's, else its query's, else the old value."""
        out = frame.copy(deep=False)  # copy-on-write: the new column never reaches ``frame``
        category = pd.Series(pd.NA, index=out.index, dtype="string")
        card_map = {k: v for k, v in self.cards.items() if v}
        set_map = {k: v for k, v in self.sets.items() if v}
        if card_map:
            category = category.fillna(out["card_id"].astype("string").map(card_map))
        if set_map and "set_id" in out.columns:
            category = category.fillna(out["set_id"].astype("string").map(set_map))
        if query_category is not None:
            category = category.fillna(query_category.astype("string"))
        if "category" in out.columns:
            category = category.fillna(out["category"].astype("string"))
        out["category"] = category.astype("string")
        return out


@dataclass(frozen=True)
class Watchlist:
    """A parsed watchlist file."""

    items: tuple[WatchItem, ...]
    path: str = ""

    def for_source(self, source: str) -> Selection:
        """The ids this watchlist names for ``source``, most specific category first."""
        sets: dict[str, str | None] = {}
        cards: dict[str, str | None] = {}
        queries: dict[str, str | None] = {}
        target = {"set": sets, "card": cards, "query": queries}
        for item in self.items:
            value = item.value_for(source)
            if value is None:
                continue
            bucket = target[item.kind]
            # first non-empty category wins for a repeated id
            if bucket.get(value) is None:
                bucket[value] = item.category
        return Selection(source=source, sets=sets, cards=cards, queries=queries)


def _item_from_mapping(entry: Mapping, position: str, default_category: str | None) -> WatchItem:
    if not isinstance(entry, Mapping):
        raise ParameterError(f"watchlist {position} must be a mapping like {{set: sv3pt5}}, got {entry!r}")
    kinds = [k for k in KINDS if k in entry]
    unknown = sorted(set(entry) - set(KINDS) - {"category", "note", "name"})
    if unknown:
        raise ParameterError(f"watchlist {position} has unknown key(s) {unknown}; allowed: "
                             f"{list(KINDS)} plus category, name, note")
    if len(kinds) != 1:
        raise ParameterError(f"watchlist {position} must have exactly one of {list(KINDS)}, has {kinds or 'none'}")
    kind = kinds[0]
    raw_value = entry[kind]
    if isinstance(raw_value, Mapping):
        values = {str(src): str(v).strip() for src, v in raw_value.items() if v not in (None, "")}
    elif raw_value in (None, ""):
        values = {}
    else:
        values = {"*": str(raw_value).strip()}
    if not values:
        raise ParameterError(f"watchlist {position}: {kind} is empty")
    category = entry.get("category", default_category)
    return WatchItem(kind=kind, values=values, category=_category(category, position))


def _category(value, position: str) -> str | None:
    if value in (None, ""):
        return None
    text = str(value).strip().lower()
    if text not in CATEGORIES:
        raise ParameterError(f"watchlist {position}: category {value!r} is not one of {list(CATEGORIES)}")
    return text


def parse_yaml(text: str, path: str = "<string>") -> Watchlist:
    """Parse the YAML format (module docstring).

    Raises:
        ParameterError: malformed YAML or an invalid entry, naming the entry.
    """
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ParameterError(f"watchlist {path} is not valid YAML: {exc}") from None
    if document is None:
        document = {"items": []}
    if isinstance(document, list):
        document = {"items": document}
    if not isinstance(document, Mapping):
        raise ParameterError(f"watchlist {path} must be a mapping with 'items:' (or a list of entries)")
    unknown = sorted(set(document) - {"items", "default_category", "description"})
    if unknown:
        raise ParameterError(f"watchlist {path} has unknown top-level key(s) {unknown}; "
                             "allowed: items, default_category, description")
    default = _category(document.get("default_category"), f"{path} default_category")
    entries = document.get("items") or []
    if not isinstance(entries, list):
        raise ParameterError(f"watchlist {path}: 'items' must be a list")
    items = tuple(_item_from_mapping(e, f"{path} item {i + 1}", default) for i, e in enumerate(entries))
    return Watchlist(items=items, path=path)


def parse_csv(text: str, path: str = "<string>") -> Watchlist:
    """Parse the CSV format ``kind,value,category[,source]`` (module docstring).

    Raises:
        ParameterError: missing columns or an invalid row, naming the row.
    """
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip().lower() for c in (reader.fieldnames or [])]
    missing = [c for c in ("kind", "value") if c not in columns]
    if missing:
        raise ParameterError(f"watchlist {path} needs the CSV columns kind,value[,category,source]; "
                             f"missing {missing}, found {columns}")
    items = []
    for line_no, row in enumerate(reader, start=2):
        row = {str(k).strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
        if not any(row.values()) or row.get("kind", "").startswith("#"):
            continue
        position = f"{path} line {line_no}"
        kind = row.get("kind", "").lower()
        if kind not in KINDS:
            raise ParameterError(f"watchlist {position}: kind {row.get('kind')!r} is not one of {list(KINDS)}")
        if not row.get("value"):
            raise ParameterError(f"watchlist {position}: value is empty")
        items.append(WatchItem(kind=kind, values={row.get("source") or "*": row["value"]},
                               category=_category(row.get("category"), position)))
    return Watchlist(items=tuple(items), path=path)


def load_watchlist(path: str | Path) -> Watchlist:
    """Read a ``.yaml``/``.yml`` or ``.csv`` watchlist.

    Raises:
        ParameterError: the file is missing, of another type, or invalid.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise ParameterError(f"watchlist {file} does not exist; see watchlist.example.yaml for the format")
    text = file.read_text(encoding="utf-8")
    suffix = file.suffix.lower()
    if suffix in {".yaml", ".yml"}:
        return parse_yaml(text, str(file))
    if suffix == ".csv":
        return parse_csv(text, str(file))
    raise ParameterError(f"watchlist {file} must be .yaml, .yml or .csv, not {suffix or 'without suffix'}")


def check_watchlist_option(value, *, files: bool = True) -> str:
    """The ``watchlist`` option checked: a path to a readable, valid watchlist file.

    With ``files`` off (re-parsing a stored run) only the type is checked.

    Raises:
        ParameterError: not text, a missing file, or an invalid watchlist (naming the entry).
    """
    if isinstance(value, bool) or not isinstance(value, (str, Path)):
        raise ParameterError(f"option watchlist must be the path of a .yaml or .csv file, got {value!r}")
    text = str(value).strip()
    if files:
        load_watchlist(text)
    return text


def selection_from_options(options: Mapping, source: str) -> Selection:
    """The :class:`Selection` of ``options["watchlist"]`` for ``source`` (empty when absent)."""
    path = options.get("watchlist")
    if path in (None, ""):
        return Selection(source=source)
    selection = load_watchlist(path).for_source(source)
    logger.info("watchlist %s for %s: %d set(s), %d card(s), %d quer(y/ies)", path, source,
                len(selection.sets), len(selection.cards), len(selection.queries))
    return selection
