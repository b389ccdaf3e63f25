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

Only the schema's columns are imported. Any other column is dropped, unless it is
declared in ``columns`` with the target ``keep`` (``"Grade:keep"`` keeps ``Grade``
as ``grade``): at most :data:`MAX_KEPT_COLUMNS` kept columns, each cell cut to
:data:`MAX_KEPT_CHARS` characters (the cut cells are counted in the quality
report). So a file with 200,000 columns imports its few schema columns in well
under a second and cannot swell the store.

Defaults for what a file may not say: ``currency`` (``USD``), ``variant``
(``Normal``); a file without a date column is a snapshot of ``end``.
``options["cards_path"]`` may name a JSON list or CSV of card details (``id``,
``name``, ``set``, ``number``, ``rarity``; e.g. ``tracked-cards.json``) to fill the
descriptive columns.

Only rows dated within [start, end] are collected; the quality report notes how
many rows fell outside and the file's date span. A file with no row in the window
counts as a failed item, so the collect fails with that explanation instead of
silently storing nothing; a file without data rows, or whose rows in the window are
all invalid, fails at once with a :class:`SourceError`. Every row goes through the
same validation as any source (null, zero, negative or implausible prices, unknown
currencies, duplicates are rejected with a reason). A record that cannot be read at
all (a CSV line with the wrong number of fields, a JSON record that is not an
object, an id that is a list, a date key given twice in wide JSON) is kept as a row
marked malformed, which validation rejects as ``malformed_record``.
"""
from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
from collections import Counter, OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from pokewatch.errors import ParameterError, SchemaError, SourceError
from pokewatch.data.raw_archive import RawArchive
from pokewatch.core.schema import CURRENCIES, DESCRIPTIVE_COLUMNS, MALFORMED, REQUIRED_COLUMNS, validate_observations
from pokewatch.data.sources.base import (
    WATCHLIST_OPTION,
    CollectRequest,
    DuplicateKeyObject,
    FetchReport,
    PriceSource,
    kind_of,
    loads_json,
    source_ids,
    stored_selection,
)
from pokewatch.data.sources.options import Option
from pokewatch.data.watchlist import selection_from_options

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
#: The ``columns`` target that keeps a column the schema does not know.
KEEP = "keep"
#: Most columns a file may keep beyond the schema's, and the longest cell kept in them.
MAX_KEPT_COLUMNS = 20
MAX_KEPT_CHARS = 256
#: Names a kept column may not take.
_RESERVED = set(COLUMN_ALIASES) | {"source", "reason", MALFORMED}
#: Cells read as missing in a CSV (pandas' defaults).
_NA_TEXT = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                      "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})
_TEXT_COLUMNS = ("card_id", "variant", "currency", "name", "set_id", "set_name", "number", "rarity", "category")


_IGNORED_IN_NAMES = str.maketrans("", "", " \t\n\r\f\v_-")


def _norm(name: str) -> str:
    """A column name compared without case, spaces, ``_`` or ``-`` (fast: files may have 200,000 columns)."""
    return str(name).translate(_IGNORED_IN_NAMES).lower()


def kept_name(column: str) -> str:
    """The stored name of a kept column: ``"Grade (PSA)"`` -> ``grade_psa``."""
    return re.sub(r"[^0-9a-z]+", "_", str(column).lower()).strip("_")[:40]


def parse_column_mapping(value, files: bool = True) -> dict[str, str]:
    """``{"their column": "schema column"}`` from a dict or ``"Their:card_id,Price:market_price"``.

    A target of ``keep`` keeps that column under :func:`kept_name` of its name.

    Raises:
        ParameterError: malformed text, a target that is neither a schema column nor
            ``keep``, a kept name that is empty or taken, or too many kept columns.
    """
    if value in (None, ""):
        return {}
    if isinstance(value, dict):
        pairs = [(str(k), str(v).strip()) for k, v in value.items()]
    elif isinstance(value, str):
        pairs = []
        for pair in value.split(","):
            if not pair.strip():
                continue
            if ":" not in pair:
                raise ParameterError(f"option columns must look like 'Their Column:card_id,Price:market_price'; "
                                     f"{pair.strip()!r} has no ':'")
            source_col, target = pair.rsplit(":", 1)
            pairs.append((source_col.strip(), target.strip()))
    else:
        raise ParameterError(f"option columns must be text like 'Their Column:card_id' or a mapping, got {value!r}")
    mapping: dict[str, str] = {}
    for source_col, target in pairs:
        if target.lower() == KEEP:
            target = kept_name(source_col)
            if not target or target in _RESERVED:
                raise ParameterError(f"option columns: column {source_col!r} cannot be kept as {target!r}; "
                                     "rename it in the file")
        elif target not in COLUMN_ALIASES:
            raise ParameterError(f"option columns maps to unknown column(s) [{target!r}]; targets are "
                                 f"{sorted(COLUMN_ALIASES)} or {KEEP!r} (keep the column as it is)")
        mapping[source_col] = target
    kept = [t for t in mapping.values() if t not in COLUMN_ALIASES]
    if len(kept) > MAX_KEPT_COLUMNS:
        raise ParameterError(f"option columns keeps {len(kept)} extra columns; at most {MAX_KEPT_COLUMNS} are allowed")
    if len(set(mapping.values())) < len(mapping):
        twice = sorted(t for t, n in Counter(mapping.values()).items() if n > 1)
        raise ParameterError(f"option columns maps several columns to {twice}; map one column to each")
    return mapping


def choose_columns(columns: list[str], explicit: dict[str, str]) -> dict[str, str]:
    """Which of a file's ``columns`` become which schema (or kept) column.

    Explicit mappings first, then the first column matching each alias list.

    Raises:
        SchemaError: an explicitly mapped column is not in the file.
    """
    present = set(columns)
    missing_explicit = [c for c in explicit if c not in present]
    if missing_explicit:
        shown = columns[:30] + (["..."] if len(columns) > 30 else [])
        raise SchemaError(f"option columns names {missing_explicit}, which the file does not have; "
                          f"its columns are {shown}")
    used = dict(explicit)
    by_norm: dict[str, str] = {}
    for column in columns:
        if column not in used:
            by_norm.setdefault(_norm(column), column)
    for target, aliases in COLUMN_ALIASES.items():
        if target in used.values():
            continue
        for alias in aliases:
            column = by_norm.get(_norm(alias))
            if column is not None and column not in used:
                used[column] = target
                break
    return used


@dataclass
class Table:
    """A file read down to the columns PokeWatch uses.

    Attributes:
        frame: the mapped columns under their schema (or kept) names, plus
            ``malformed`` for records that could not be read.
        mapping: file column -> stored column.
        n_columns: how many columns the file has.
        ignored: file columns that were dropped (the first 20).
        truncated_cells: kept cells cut to :data:`MAX_KEPT_CHARS`.
    """

    frame: pd.DataFrame
    mapping: dict[str, str]
    n_columns: int = 0
    ignored: list[str] = field(default_factory=list)
    truncated_cells: int = 0


def _from_rows(columns: list[str], rows: list[list], problems: list[str | None],
               explicit: dict[str, str]) -> Table:
    mapping = choose_columns(columns, explicit)
    index = {c: columns.index(c) for c in mapping}
    data = {target: [row[index[c]] if index[c] < len(row) else None for row in rows]
            for c, target in mapping.items()}
    frame = pd.DataFrame(data, index=range(len(rows)), dtype=object)
    frame[MALFORMED] = pd.Series(problems, dtype="string")
    ignored = [c for c in columns if c not in mapping]
    return Table(frame, mapping, len(columns), ignored[:20])


def _read_delimited(data: bytes, delimiter: str, explicit: dict[str, str]) -> Table:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SchemaError(f"the input file is not UTF-8 text ({exc}); save it as UTF-8 CSV") from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [c.strip() for c in next(reader)]
    except StopIteration:
        raise SchemaError("the input file is empty: it has no header row") from None
    except csv.Error as exc:
        raise SchemaError(f"the input file's header cannot be read: {exc}") from None
    rows: list[list] = []
    problems: list[str | None] = []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            rows.append([])
            problems.append(f"line {reader.line_num} cannot be read: {exc}")
            continue
        if not row or all(not cell.strip() for cell in row):
            continue
        problems.append(None if len(row) == len(header) else
                        f"line {reader.line_num} has {len(row)} fields, the header has {len(header)}")
        rows.append([None if cell.strip() in _NA_TEXT else cell for cell in row])
    return _from_rows(header, rows, problems, explicit)


def _read_parquet(data: bytes, explicit: dict[str, str]) -> Table:
    import pyarrow.parquet as pq

    try:
        columns = [str(c) for c in pq.read_schema(io.BytesIO(data)).names]
        mapping = choose_columns(columns, explicit)
        frame = pd.read_parquet(io.BytesIO(data), columns=list(mapping))
    except (OSError, ValueError) as exc:
        raise SchemaError(f"the input parquet file could not be read: {type(exc).__name__}: {exc}") from None
    frame = frame.rename(columns=mapping).astype(object).reset_index(drop=True)
    frame[MALFORMED] = pd.Series(pd.NA, index=frame.index, dtype="string")
    return Table(frame, mapping, len(columns), [c for c in columns if c not in mapping][:20])


def _read_json(data: bytes, explicit: dict[str, str]) -> Table:
    try:
        payload = loads_json(data)
    except ValueError as exc:
        raise SchemaError(f"the input json file could not be read: {type(exc).__name__}: {exc}") from None
    if isinstance(payload, list):
        return _json_records(payload, explicit)
    if isinstance(payload, dict) and payload:
        return _json_wide(payload, explicit)
    raise SchemaError("a JSON input must be a list of records or a wide {card_id: {date: price}} object")


def _json_records(records: list, explicit: dict[str, str]) -> Table:
    columns = list(dict.fromkeys(str(k) for r in records if isinstance(r, dict) for k in r))
    rows, problems = [], []
    for position, record in enumerate(records):
        if not isinstance(record, dict):
            rows.append([])
            problems.append(f"record {position + 1} is {kind_of(record)}, not an object")
            continue
        rows.append([record.get(c) for c in columns])
        problems.append(f"record {position + 1} gives the key(s) {record.duplicates} twice"
                        if isinstance(record, DuplicateKeyObject) else None)
    return _from_rows(columns, rows, problems, explicit)


def _json_wide(payload: dict, explicit: dict[str, str]) -> Table:
    rows, problems = [], []
    cards = payload.pairs if isinstance(payload, DuplicateKeyObject) else list(payload.items())
    for card, series in cards:
        if not isinstance(series, dict):
            rows.append([card, None, None])
            problems.append(f"card {card!r} maps to {kind_of(series)}, not a {{date: price}} object")
            continue
        for day, price in (series.pairs if isinstance(series, DuplicateKeyObject) else series.items()):
            rows.append([card, day, price])
            problems.append(None)
    seen = Counter((row[0], row[1]) for row, problem in zip(rows, problems) if problem is None)
    for i, (row, problem) in enumerate(zip(rows, problems)):
        if problem is None and seen[(row[0], row[1])] > 1:
            problems[i] = (f"date {row[1]!r} of card {row[0]!r} is given {seen[(row[0], row[1])]} times in the "
                           "JSON; which price is right is unknown")
    return _from_rows(["card_id", "date", "market_price"], rows, problems, explicit)


#: The last few tables read, keyed on the bytes' digest: fetch and parse read the same file.
_RECENT_TABLES: OrderedDict[tuple, Table] = OrderedDict()


def load_table(data: bytes, kind: str, explicit: dict[str, str] | None = None) -> Table:
    """A file's bytes down to the columns PokeWatch stores (module docstring).

    Ids are checked (strings or whole numbers), text columns must hold scalars, and
    kept cells are cut to :data:`MAX_KEPT_CHARS`; what fails is marked malformed.
    A collect reads its file three times (fetch checks it, then parse), so the last
    two tables are remembered by the digest of the bytes; callers get a copy.

    Raises:
        SchemaError: unreadable content or an unsupported JSON shape.
    """
    explicit = explicit or {}
    key = (hashlib.sha256(data).hexdigest(), kind, tuple(sorted(explicit.items())))
    if key not in _RECENT_TABLES:
        _RECENT_TABLES[key] = _load_table(data, kind, explicit)
        while len(_RECENT_TABLES) > 2:
            _RECENT_TABLES.popitem(last=False)
    table = _RECENT_TABLES[key]
    return replace(table, frame=table.frame.copy(), mapping=dict(table.mapping), ignored=list(table.ignored))


def _load_table(data: bytes, kind: str, explicit: dict[str, str]) -> Table:
    if kind in ("csv", "tsv"):
        table = _read_delimited(data, "," if kind == "csv" else "\t", explicit)
    elif kind == "parquet":
        table = _read_parquet(data, explicit)
    else:
        table = _read_json(data, explicit)
    frame = table.frame
    problems = frame[MALFORMED].astype("string")
    for column in [c for c in frame.columns if c != MALFORMED]:
        values = frame[column]
        if column == "card_id":
            ids, id_problems = source_ids(values, "card_id")
            frame["card_id"] = ids
            problems = problems.fillna(id_problems)
            continue
        nested = values.map(lambda v: isinstance(v, (dict, list, tuple)))
        if nested.any():
            problems = problems.fillna(pd.Series(f"{column} is a list or an object, not a value",
                                                 index=frame.index, dtype="string").where(nested))
            frame[column] = values.where(~nested, None)
        if column not in COLUMN_ALIASES:
            text = frame[column].astype("string")
            long = text.str.len().gt(MAX_KEPT_CHARS).fillna(False)
            table.truncated_cells += int(long.sum())
            frame[column] = text.str.slice(0, MAX_KEPT_CHARS)
    frame[MALFORMED] = problems
    return table


def read_table(data: bytes, kind: str) -> pd.DataFrame:
    """A file's bytes as a DataFrame of its recognised columns (see :func:`load_table`)."""
    return load_table(data, kind).frame


def card_details(data: bytes, suffix: str) -> pd.DataFrame:
    """``card_id``, ``name``, ``set_name``, ``set_id``, ``number``, ``rarity`` from a cards file."""
    frame = load_table(data, SUFFIXES.get(suffix, "json")).frame
    keep = [c for c in ("card_id", "name", "set_id", "set_name", "number", "rarity") if c in frame.columns]
    if "card_id" not in keep:
        raise SchemaError(f"the cards file needs an id column; it has {list(frame.columns)}")
    details = frame.loc[frame[MALFORMED].isna() & frame["card_id"].notna(), keep].copy()
    for column in keep:
        details[column] = details[column].astype("string")
    return details.drop_duplicates("card_id")


def _check_columns(value, files: bool = True) -> dict[str, str]:
    return parse_column_mapping(value)


class FileSource(PriceSource):
    """Prices from a local CSV, Parquet or JSON file."""

    name = "file"
    remote = False
    #: the file's rows carry their own dates, so a first run imports its history
    history_capable = True
    OPTIONS = (
        Option("path", "file", None, "the CSV, TSV, Parquet or JSON file to import", choices=tuple(SUFFIXES),
               typed_as="input_path"),
        Option("cards_path", "file", None, "a JSON or CSV file of card names, sets, numbers and rarities",
               choices=tuple(SUFFIXES)),
        Option("columns", "custom", None, "'Their Column:card_id,Grade:keep': map or keep columns",
               parse=_check_columns),
        Option("variant", "text", "Normal", "variant of rows without one"),
        Option("currency", "choice", "USD", "currency of rows without one", choices=tuple(sorted(CURRENCIES))),
        WATCHLIST_OPTION,
    )

    def fetch(self, request: CollectRequest, raw: RawArchive) -> FetchReport:
        """Copy the file (and the cards file) into ``raw`` and check it can be mapped.

        Raises:
            ParameterError: no path, an unsupported suffix, a missing file or a bad option.
            SchemaError: unreadable, or required columns cannot be found (listing them).
            SourceError: the file has no data rows, or none of its rows in the window is valid.
        """
        options = self.check_options(request.options)
        if options["path"] is None:
            raise ParameterError("the file source needs a file: --param input_path=PATH (CSV, TSV, Parquet, "
                                 "or JSON records / wide {card_id: {date: price}})")
        path = Path(options["path"]).expanduser()
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        suffix = path.suffix.lower()
        raw.put(f"input{suffix}", data, kind="input", path=str(path.resolve()), sha256=digest, ok=True)
        if options["cards_path"] is not None:
            cards_path = Path(options["cards_path"]).expanduser()
            raw.put(f"cards{cards_path.suffix.lower()}", cards_path.read_bytes(), kind="cards",
                    path=str(cards_path.resolve()), ok=True)
        selection = selection_from_options(options, self.name)
        raw.put("selection.json", selection.to_json(), kind="selection", ok=True)
        table = load_table(data, SUFFIXES[suffix], options["columns"])
        frame = table.frame
        needed = [c for c in ("card_id", "market_price") if c not in frame.columns]
        if needed:
            shown = [c for c in frame.columns if c != MALFORMED] + table.ignored
            raise SchemaError(
                f"{path.name}: no column for {needed}; its columns are {shown}. Map them with "
                "--param columns='Their Column:card_id,Their Price:market_price'"
            )
        if frame.empty:
            raise SourceError(f"{path.name} has a header but no data rows; there is nothing to import")
        report = FetchReport(expected=1)
        dates = pd.to_datetime(frame["date"], errors="coerce", format="mixed") if "date" in frame.columns else None
        note = {"kind": "input_file", "path": str(path), "rows": len(frame), "columns": table.mapping,
                "sha256": digest, "file_columns": table.n_columns}
        if table.ignored:
            note["columns_dropped"] = table.n_columns - len(table.mapping)
            note["dropped_examples"] = table.ignored[:10]
            note["dropped_detail"] = "not schema columns; keep one with --param columns='Its Name:keep'"
        if table.truncated_cells:
            note["cells_cut"] = table.truncated_cells
            note["cells_cut_detail"] = f"kept cells longer than {MAX_KEPT_CHARS} characters were cut"
        rows_in_window = len(frame)
        if dates is not None and dates.notna().any():
            inside = dates.between(request.start, request.end + pd.Timedelta(hours=23, minutes=59))
            rows_in_window = int(inside.sum())
            note.update(first_date=f"{dates.min():%Y-%m-%d}", last_date=f"{dates.max():%Y-%m-%d}",
                        rows_in_window=rows_in_window, rows_outside_window=int((~inside & dates.notna()).sum()))
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
        if not report.failures:
            self._require_valid_rows(request, raw, path.name)
        return report

    def _require_valid_rows(self, request: CollectRequest, raw: RawArchive, file_name: str) -> None:
        validation = validate_observations(self.parse(request, raw))
        if validation.valid.empty:
            raise SourceError(
                f"{file_name}: none of its {validation.n_input} row(s) dated {request.start:%Y-%m-%d}.."
                f"{request.end:%Y-%m-%d} is valid (rejected: {validation.counts}); nothing was imported. "
                "The reasons are explained in docs/data_sources.md"
            )

    def parse(self, request: CollectRequest, raw: RawArchive) -> pd.DataFrame:
        """Long-schema rows of the stored file within [start, end] (undated rows stay, for bad_date)."""
        options = self.check_options(request.options, files=False)
        entries = {e.get("kind"): e for e in raw.entries()}
        name = entries["input"]["name"]
        frame = load_table(raw.get(name), SUFFIXES[Path(name).suffix], options["columns"]).frame
        missing = [c for c in ("card_id", "market_price") if c not in frame.columns]
        if missing:
            raise SchemaError(f"the input file has no column for {missing}; map it with --param columns=...")
        if "date" not in frame.columns:
            frame["date"] = request.end
        frame["date"] = pd.to_datetime(frame["date"], errors="coerce", format="mixed").dt.normalize()
        inside = frame["date"].between(request.start, request.end) | frame["date"].isna()
        frame = frame.loc[inside].copy()
        if "variant" not in frame.columns:
            frame["variant"] = options["variant"]
        if "currency" not in frame.columns:
            frame["currency"] = options["currency"]
        else:
            frame["currency"] = frame["currency"].astype("string").str.strip().str.upper()
        for column in _TEXT_COLUMNS:
            if column in frame.columns:
                frame[column] = frame[column].astype("string")
        frame["source"] = "file"
        if "cards" in entries:
            details = card_details(raw.get(entries["cards"]["name"]), Path(entries["cards"]["name"]).suffix)
            overlap = [c for c in details.columns if c != "card_id" and c in frame.columns]
            frame = frame.drop(columns=overlap).merge(details, on="card_id", how="left", validate="m:1")
        selection = stored_selection(raw, self.name)
        frame = selection.assign_categories(selection.restrict(frame))
        ordered = REQUIRED_COLUMNS + [c for c in frame.columns if c not in REQUIRED_COLUMNS]
        out = frame[ordered].reset_index(drop=True)
        # The extra columns left are the ones the user declared with columns='Name:keep' (capped by
        # load_table); the store keeps declared columns (pokewatch.core.schema.stored_columns).
        out.attrs["declared_columns"] = [c for c in out.columns if c not in (*REQUIRED_COLUMNS, *DESCRIPTIVE_COLUMNS,
                                                                             MALFORMED)]
        return out

