"""The ``file`` source: import an analyst's CSV, Parquet or JSON export of prices.

Why: collectors already keep spreadsheets and simple trackers; their history should
feed the same validation, store and backtest as the APIs.

Accepted inputs (``options["path"]``; the pipeline passes ``--param input_path=PATH``):

* **CSV / TSV / Parquet / JSON records** in long form, one row per card and day.
  Columns are found by name (case, spaces and underscores ignored) from the aliases
  in :data:`COLUMN_ALIASES`, or mapped explicitly with ``options["columns"]``: a
  dict or the text ``"Their Column:card_id,Price:market_price"``.
* **Wide JSON** ``{card_id: {date: price}}``, as simple trackers write it (e.g.
  ``../shared/data/pokemontcg-daily/price-history.json``).

Defaults for what a file may not say: ``currency`` (``USD``), ``variant``
(``Normal``); a file without a date column is a snapshot of ``end``.
``options["cards_path"]`` may name a JSON list or CSV of card details (``id``,
``name``, ``set``, ``number``, ``rarity``; e.g. ``tracked-cards.json``) to fill the
descriptive columns.

Only rows dated within [start, end] are collected; the quality report notes how
many rows fell outside and the file's date span. A file with no row in the window
counts as a failed item, so the collect fails with that explanation instead of
silently storing nothing. Every row then goes through the same validation as any
source (null, zero or negative prices, unknown currencies, duplicates are rejected
with a reason).
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from pathlib import Path

import pandas as pd

from pokewatch.errors import ParameterError, SchemaError, SourceError
from pokewatch.raw_archive import RawArchive
from pokewatch.schema import REQUIRED_COLUMNS
from pokewatch.sources.base import CollectRequest, FetchReport, PriceSource, stored_selection
from pokewatch.watchlist import selection_from_options

logger = logging.getLogger(__name__)

#: Recognised column names per schema column, compared without case, spaces, "_" or "-".
COLUMN_ALIASES = {
    "card_id": ["card_id", "cardid", "id", "card", "tcgplayer_id", "tcgplayerid", "product_id", "productid", "sku"],
    "variant": ["variant", "printing", "finish", "subtype", "subtypename"],
    "date": ["date", "day", "as_of", "asof", "price_date", "pricedate", "timestamp"],
    "market_price": ["market_price", "marketprice", "market", "price", "value", "trend_price"],
    "currency": ["currency", "ccy", "cur"],
    "name": ["name", "card_name", "cardname"],
    "set_id": ["set_id", "setid", "set_code", "setcode"],
    "set_name": ["set_name", "setname", "set", "expansion"],
    "number": ["number", "card_number", "cardnumber", "no"],
    "rarity": ["rarity"],
    "category": ["category", "watch_category"],
}
SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet", ".json": "json"}


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", str(name)).lower()


def parse_column_mapping(value) -> dict[str, str]:
    """``{"their column": "schema column"}`` from a dict or ``"Their:card_id,Price:market_price"``.

    Raises:
        ParameterError: malformed text or a target that is not a schema column.
    """
    if value in (None, ""):
        return {}
    if isinstance(value, dict):
        mapping = {str(k): str(v) for k, v in value.items()}
    else:
        mapping = {}
        for pair in str(value).split(","):
            if not pair.strip():
                continue
            if ":" not in pair:
                raise ParameterError(f"option columns must look like 'Their Column:card_id,Price:market_price'; "
                                     f"{pair.strip()!r} has no ':'")
            source_col, target = pair.rsplit(":", 1)
            mapping[source_col.strip()] = target.strip()
    unknown = sorted(set(mapping.values()) - set(COLUMN_ALIASES))
    if unknown:
        raise ParameterError(f"option columns maps to unknown column(s) {unknown}; targets are "
                             f"{sorted(COLUMN_ALIASES)}")
    return mapping


def read_table(data: bytes, kind: str) -> pd.DataFrame:
    """A file's bytes as a DataFrame; wide ``{card: {date: price}}`` JSON is melted to long.

    Raises:
        SchemaError: unreadable content or an unsupported JSON shape.
    """
    try:
        if kind == "csv":
            return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=True)
        if kind == "tsv":
            return pd.read_csv(io.BytesIO(data), sep="\t", dtype=str, keep_default_na=True)
        if kind == "parquet":
            return pd.read_parquet(io.BytesIO(data))
        payload = json.loads(data)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise SchemaError(f"the input {kind} file could not be read: {type(exc).__name__}: {exc}") from None
    if isinstance(payload, list):
        return pd.DataFrame.from_records(payload)
    if isinstance(payload, dict) and payload and all(isinstance(v, dict) for v in payload.values()):
        rows = [(card, day, price) for card, series in payload.items() for day, price in series.items()]
        return pd.DataFrame(rows, columns=["card_id", "date", "market_price"])
    raise SchemaError("a JSON input must be a list of records or a wide {card_id: {date: price}} object")


def map_columns(frame: pd.DataFrame, explicit: dict[str, str]) -> tuple[pd.DataFrame, dict[str, str]]:
    """Rename ``frame``'s columns to schema names; return it and the mapping used."""
    used: dict[str, str] = {}
    missing_explicit = [c for c in explicit if c not in frame.columns]
    if missing_explicit:
        raise SchemaError(f"option columns names {missing_explicit}, which the file does not have; "
                          f"its columns are {list(frame.columns)}")
    used.update(explicit)
    by_norm = {_norm(c): c for c in frame.columns if c not in used}
    for target, aliases in COLUMN_ALIASES.items():
        if target in used.values():
            continue
        for alias in aliases:
            column = by_norm.get(_norm(alias))
            if column is not None and column not in used:
                used[column] = target
                break
    renamed = frame.rename(columns=used)
    # unmapped columns are carried through, unless they would collide with a schema name
    return renamed.loc[:, ~renamed.columns.duplicated()], used


def card_details(data: bytes, suffix: str) -> pd.DataFrame:
    """``card_id``, ``name``, ``set_name``, ``set_id``, ``number``, ``rarity`` from a cards file."""
    kind = SUFFIXES.get(suffix, "json")
    frame = read_table(data, kind)
    frame, _ = map_columns(frame, {})
    keep = [c for c in ("card_id", "name", "set_id", "set_name", "number", "rarity") if c in frame.columns]
    if "card_id" not in keep:
        raise SchemaError(f"the cards file needs an id column; it has {list(frame.columns)}")
    details = frame[keep].copy()
    details["card_id"] = details["card_id"].astype("string")
    return details.drop_duplicates("card_id")


class FileSource(PriceSource):
    """Prices from a local CSV, Parquet or JSON file."""

    name = "file"
    remote = False
    #: the file's rows carry their own dates, so a first run imports its history
    history_capable = True

    @staticmethod
    def _input(options: dict, key: str, required: bool = True) -> Path | None:
        value = options.get(key) or (options.get("input_path") if key == "path" else None)
        if value in (None, ""):
            if required:
                raise ParameterError("the file source needs a file: --param input_path=PATH (CSV, TSV, Parquet, "
                                     "or JSON records / wide {card_id: {date: price}})")
            return None
        path = Path(str(value)).expanduser()
        if not path.is_file():
            raise SourceError(f"input file {path} does not exist (option {key})")
        if path.suffix.lower() not in SUFFIXES:
            raise ParameterError(f"input file {path} must end in one of {sorted(SUFFIXES)}")
        return path

    def fetch(self, request: CollectRequest, raw: RawArchive) -> FetchReport:
        """Copy the file (and the cards file) into ``raw`` and check it can be mapped.

        Raises:
            ParameterError: no path, or an unsupported suffix.
            SourceError: the file does not exist.
            SchemaError: unreadable, or required columns cannot be found (listing them).
        """
        options = request.options
        path = self._input(options, "path")
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        suffix = path.suffix.lower()
        raw.put(f"input{suffix}", data, kind="input", path=str(path.resolve()), sha256=digest, ok=True)
        cards_path = self._input(options, "cards_path", required=False)
        if cards_path is not None:
            raw.put(f"cards{cards_path.suffix.lower()}", cards_path.read_bytes(), kind="cards",
                    path=str(cards_path.resolve()), ok=True)
        selection = selection_from_options(options, self.name)
        raw.put("selection.json", selection.to_json(), kind="selection", ok=True)
        frame, mapping = map_columns(read_table(data, SUFFIXES[suffix]), parse_column_mapping(options.get("columns")))
        needed = [c for c in ("card_id", "market_price") if c not in frame.columns]
        if needed:
            raise SchemaError(
                f"{path.name}: no column for {needed}; its columns are {list(frame.columns)}. Map them with "
                "--param columns='Their Column:card_id,Their Price:market_price'"
            )
        report = FetchReport(expected=1)
        dates = pd.to_datetime(frame["date"], errors="coerce") if "date" in frame.columns else None
        note = {"kind": "input_file", "path": str(path), "rows": len(frame), "columns": mapping, "sha256": digest}
        if dates is not None and dates.notna().any():
            inside = dates.between(request.start, request.end + pd.Timedelta(hours=23, minutes=59))
            note.update(first_date=f"{dates.min():%Y-%m-%d}", last_date=f"{dates.max():%Y-%m-%d}",
                        rows_in_window=int(inside.sum()), rows_outside_window=int((~inside & dates.notna()).sum()))
            if not inside.any():
                report.failures.append({
                    "item": str(path),
                    "error": f"no row dated {request.start:%Y-%m-%d}..{request.end:%Y-%m-%d}; the file spans "
                             f"{dates.min():%Y-%m-%d}..{dates.max():%Y-%m-%d}: pass a --date or --backfill "
                             "inside that span",
                })
        elif dates is None:
            note["dated_as"] = f"{request.end:%Y-%m-%d} (the file has no date column)"
        report.notes.append(note)
        return report

    def parse(self, request: CollectRequest, raw: RawArchive) -> pd.DataFrame:
        """Long-schema rows of the stored file within [start, end]."""
        options = request.options
        entries = {e.get("kind"): e for e in raw.entries()}
        name = entries["input"]["name"]
        suffix = Path(name).suffix
        frame, _ = map_columns(read_table(raw.get(name), SUFFIXES[suffix]),
                               parse_column_mapping(options.get("columns")))
        missing = [c for c in ("card_id", "market_price") if c not in frame.columns]
        if missing:
            raise SchemaError(f"the input file has no column for {missing}; map it with --param columns=...")
        if "date" not in frame.columns:
            frame["date"] = request.end
        frame["date"] = pd.to_datetime(frame["date"], errors="coerce").dt.normalize()
        inside = frame["date"].between(request.start, request.end) | frame["date"].isna()
        frame = frame.loc[inside].copy()
        frame["card_id"] = frame["card_id"].astype("string").str.strip()
        if "variant" not in frame.columns:
            frame["variant"] = str(options.get("variant") or "Normal")
        if "currency" not in frame.columns:
            frame["currency"] = str(options.get("currency") or "USD").upper()
        else:
            frame["currency"] = frame["currency"].astype("string").str.strip().str.upper()
        frame["source"] = "file"
        if "cards" in entries:
            details = card_details(raw.get(entries["cards"]["name"]), Path(entries["cards"]["name"]).suffix)
            overlap = [c for c in details.columns if c != "card_id" and c in frame.columns]
            frame = frame.drop(columns=overlap).merge(details, on="card_id", how="left", validate="m:1")
        selection = stored_selection(raw, self.name)
        frame = selection.assign_categories(selection.restrict(frame))
        ordered = REQUIRED_COLUMNS + [c for c in frame.columns if c not in REQUIRED_COLUMNS]
        return frame[ordered].reset_index(drop=True)
