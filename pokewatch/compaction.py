"""The compacted history: one memory-mappable Arrow file per source, in step with the daily files.

Why: the store keeps one Parquet file per trading day so that collecting a day is
idempotent (re-running it atomically replaces that one file). Two years of history
is then 730 files, and reading them back costs seconds before any work starts. The
compacted history holds the same rows once more, in the order every step needs them
(by series, then date), with the string columns as integer codes:

============== ======= ==================================================================
column         type    meaning
============== ======= ==================================================================
series         int32   series code: position of (card_id, variant, currency) in sorted order
date           int32   days since 1970-01-01
market_price   float64
<string cols>  int8-32 code into the column's sorted categories (-1 = null)
<other cols>   any     carried as they are (extra descriptive columns of a source)
============== ======= ==================================================================

Stored uncompressed in the Arrow IPC file format and opened with ``mmap``, so loading
it costs no parse and no copy: the arrays are views of the page cache. The column
categories, the original column order and the partition files it was built from
(names, sizes, mtimes) sit in the schema metadata.

Keeping it in step: the file is named after the fingerprint of the partition files
(:meth:`pokewatch.store.PriceStore.fingerprint`), so a compacted file is valid exactly
when its name matches the partitions on disk. :func:`refresh` brings it up to date by
merging only the partitions whose size or mtime changed since the newest compacted
file (the store calls it after every write; a load calls it when the partitions
were changed by something else). The daily files stay the source of truth: the
compacted file can be deleted at any time and is rebuilt from them.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from pokewatch import atomic, kernels
from pokewatch.errors import SchemaError
from pokewatch.fair_value import dates_of, rank_keys
from pokewatch.schema import SERIES_KEY

logger = logging.getLogger(__name__)

FORMAT = 1
FOLDER = ".compact"      # under the store root; a source name can never start with "."
_META_KEY = b"pokewatch.compact"
_KEEP = 2                 # compacted files kept per source (the newest and the one before)


def index_dtype(n_categories: int) -> np.dtype:
    """The code width pandas itself uses for a Categorical with this many categories."""
    if n_categories < np.iinfo(np.int8).max:
        return np.dtype(np.int8)
    if n_categories < np.iinfo(np.int16).max:
        return np.dtype(np.int16)
    return np.dtype(np.int32)


@dataclass
class Compacted:
    """An opened compacted history: columns as numpy arrays (memory-mapped) plus their meaning.

    Attributes:
        path: the Arrow file.
        table: the Arrow table (zero-copy over the mapped file).
        columns: the long table's columns in their original order, each a dict with
            ``name``, ``kind`` (``day``, ``price``, ``category`` or ``arrow``) and, for
            categories, ``categories``.
        partitions: partition file name -> [size, mtime_ns] it was built from.
    """

    path: Path
    table: pa.Table
    columns: list[dict]
    partitions: dict

    def __len__(self) -> int:
        return self.table.num_rows

    def array(self, name: str) -> np.ndarray:
        """A numpy view of a numeric column (no copy)."""
        column = self.table.column(name)
        if column.num_chunks == 0:
            return np.zeros(0, _numpy_type(column.type))
        chunk = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
        return chunk.to_numpy(zero_copy_only=chunk.null_count == 0)

    def categories(self, name: str) -> list:
        return next(c["categories"] for c in self.columns if c["name"] == name)


def _numpy_type(arrow_type: pa.DataType) -> np.dtype:
    try:
        return np.dtype(arrow_type.to_pandas_dtype())
    except (NotImplementedError, TypeError):
        return np.dtype(object)


# -- files ------------------------------------------------------------------------------
def folder(store_root: Path, source: str) -> Path:
    return Path(store_root) / FOLDER / source


def path_for(store_root: Path, source: str, fingerprint: str) -> Path:
    return folder(store_root, source) / f"history-{fingerprint}.arrow"


def open_compacted(path: Path) -> Compacted:
    """Map a compacted file; raises OSError when it is missing or unreadable."""
    try:
        table = ipc.open_file(pa.memory_map(str(path), "r")).read_all()
    except pa.ArrowInvalid as exc:
        raise OSError(f"{path} is not a readable compacted history: {exc}") from exc
    meta = json.loads(table.schema.metadata[_META_KEY])
    if meta.get("format") != FORMAT:
        raise OSError(f"{path} has compacted format {meta.get('format')}, expected {FORMAT}")
    return Compacted(Path(path), table, meta["columns"], meta["partitions"])


def _newest(store_root: Path, source: str) -> Compacted | None:
    candidates = sorted(folder(store_root, source).glob("history-*.arrow"), key=_mtime, reverse=True)
    for path in candidates:
        try:
            return open_compacted(path)
        except (OSError, KeyError, ValueError) as exc:
            logger.warning("ignoring unreadable compacted history %s: %s", path, exc)
    return None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _prune(store_root: Path, source: str, keep: Path) -> None:
    paths = sorted(folder(store_root, source).glob("history-*.arrow"), key=_mtime, reverse=True)
    others = [p for p in paths if p != keep]
    for path in others[_KEEP - 1:]:
        try:
            path.unlink()
        except OSError:
            pass


# -- encoding new rows --------------------------------------------------------------------
def _is_string(arrow_type: pa.DataType) -> bool:
    if pa.types.is_dictionary(arrow_type):
        return _is_string(arrow_type.value_type)
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or pa.types.is_null(arrow_type)


def _plain_strings(column) -> pa.ChunkedArray | pa.Array:
    if isinstance(column, pa.ChunkedArray) and column.num_chunks == 1:
        column = column.chunk(0)
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if not pa.types.is_large_string(column.type):
        column = column.cast(pa.large_string())
    return column


def factorize_strings(column) -> tuple[np.ndarray, list]:
    """Codes (the smallest int type that fits, -1 for null) and sorted categories of a string column.

    Rows usually come grouped by series, so each descriptive column is a few thousand
    runs of one value: only the first value of each run is hashed.
    """
    array = _plain_strings(column)
    n = len(array)
    if n == 0:
        return np.zeros(0, np.int8), []
    if n > 4096:
        left, right = array.slice(1), array.slice(0, n - 1)
        same = pc.fill_null(pc.equal(left, right), False).to_numpy(zero_copy_only=False)
        if array.null_count:
            nulls = array.is_null().to_numpy(zero_copy_only=False)
            same |= nulls[1:] & nulls[:-1]
        heads = np.flatnonzero(np.concatenate(([True], ~same)))
        if len(heads) <= n // 8:
            head_codes, categories = _factorize(array.take(pa.array(heads)))
            out = np.empty(n, index_dtype(len(categories)))
            return kernels.expand_runs(head_codes.astype(out.dtype), heads, n, out), categories
    codes, categories = _factorize(array)
    return codes.astype(index_dtype(len(categories))), categories


def _factorize(array) -> tuple[np.ndarray, list]:
    codes, uniques = pd.factorize(pd.array(array, dtype=pd.StringDtype("pyarrow")), sort=True)
    return codes, [str(u) for u in uniques]


@dataclass
class Rows:
    """Rows in compacted form, not yet ordered: numpy columns plus Arrow columns.

    Attributes:
        days, prices: per row.
        codes: string column -> (codes, sorted categories).
        arrow: any other column -> its Arrow array.
        order: the column names in their original order.
    """

    n: int
    days: np.ndarray
    prices: np.ndarray
    codes: dict
    arrow: dict
    order: list

    @classmethod
    def empty(cls) -> Rows:
        return cls(0, np.zeros(0, np.int32), np.zeros(0), {}, {}, [])

    def _categories(self, name: str) -> pa.Array:
        """A string column's categories as an Arrow array (built once)."""
        cache = self.__dict__.setdefault("_arrow_categories", {})
        if name not in cache:
            cache[name] = pa.array(self.codes[name][1], pa.large_string())
        return cache[name]

    def take(self, order: np.ndarray) -> Rows:
        """These rows in ``order``."""
        index = pa.array(order)
        return Rows(self.n, self.days[order], self.prices[order],
                    {name: (codes[order], categories) for name, (codes, categories) in self.codes.items()},
                    {name: array.take(index) for name, array in self.arrow.items()}, list(self.order))

    def day_table(self, rows: slice, schema: pa.Schema) -> pa.Table:
        """Rows ``rows`` (a slice) as an Arrow table with ``schema``'s columns (the partition file format).

        String columns come as dictionary arrays of just these rows' values, in sorted
        order: Parquet writes them without hashing every value again, and a day's file
        is byte for byte the same whichever batch it was written in, so rewriting an
        unchanged day changes nothing.
        """
        arrays, names = [], []
        for field in schema:
            name = field.name
            names.append(name)
            if name == "date":
                arrays.append(pa.array(dates_of(self.days[rows])).cast(field.type))
            elif name == "market_price":
                prices = pa.array(self.prices[rows])
                arrays.append(prices if prices.type == field.type else prices.cast(field.type))
            elif name in self.codes:
                codes, categories = self.codes[name]
                local, used = kernels.local_codes(codes[rows], len(categories))
                nulls = local < 0
                indices = pa.array(local, mask=nulls) if nulls.any() else pa.array(local)
                arrays.append(pa.DictionaryArray.from_arrays(indices, self._categories(name).take(pa.array(used))))
            else:
                arrays.append(self.arrow[name].slice(rows.start, rows.stop - rows.start))
        return pa.Table.from_arrays(arrays, names=names)


def concat_rows(first: Rows, second: Rows) -> Rows:
    """Two batches of rows as one, string codes re-expressed in the union of their categories."""
    if first.n == 0:
        return second
    if second.n == 0:
        return first
    order = first.order + [name for name in second.order if name not in first.order]
    codes, arrow = {}, {}
    for name in order:
        if name in ("date", "market_price"):
            continue
        if name in first.codes or name in second.codes:
            a_codes, a_cats = first.codes.get(name, (np.full(first.n, -1, np.int8), []))
            b_codes, b_cats = second.codes.get(name, (np.full(second.n, -1, np.int8), []))
            union = pd.Index(sorted(set(a_cats) | set(b_cats)), dtype=object)
            merged = np.concatenate([_remap(a_codes, a_cats, union), _remap(b_codes, b_cats, union)])
            codes[name] = (merged.astype(index_dtype(len(union))), list(union))
        else:
            parts = [first.arrow.get(name), second.arrow.get(name)]
            types = [p.type for p in parts if p is not None and not pa.types.is_null(p.type)]
            target = types[0] if types else pa.null()
            filled = [p if p is not None else pa.nulls(length, target)
                      for p, length in zip(parts, (first.n, second.n))]
            arrow[name] = pa.concat_arrays([p.cast(target) if p.type != target else p for p in filled])
    return Rows(first.n + second.n, np.concatenate([first.days, second.days]),
                np.concatenate([first.prices, second.prices]), codes, arrow, order)


def encode(table: pa.Table) -> Rows:
    """Rows of a long-format Arrow table in compacted form.

    Raises:
        SchemaError: the series key, date or price column is missing.
    """
    missing = [c for c in [*SERIES_KEY, "date", "market_price"] if c not in table.column_names]
    if missing:
        raise SchemaError(f"partition rows lack column(s) {missing}; see pokewatch.schema")
    days = _days(table.column("date"))
    prices = table.column("market_price").to_numpy().astype(np.float64, copy=False)
    codes, arrow = {}, {}
    for name in table.column_names:
        if name in ("date", "market_price"):
            continue
        column = table.column(name)
        if _is_string(column.type):
            codes[name] = factorize_strings(column)
        else:
            arrow[name] = column.combine_chunks()
    return Rows(table.num_rows, days, prices, codes, arrow, list(table.column_names))


def _days(column: pa.ChunkedArray) -> np.ndarray:
    """Day numbers (int32) of a timestamp or date column."""
    if pa.types.is_timestamp(column.type) and column.type.tz is not None:
        column = column.cast(pa.timestamp(column.type.unit))
    values = column.to_numpy()
    if values.dtype.kind != "M":
        values = pd.to_datetime(values).to_numpy()
    return values.astype("datetime64[D]").view(np.int64).astype(np.int32)


def _read_partitions(paths: list[Path]) -> pa.Table:
    def read(path: Path) -> pa.Table:
        return pq.read_table(path)

    with ThreadPoolExecutor(max_workers=min(4, max(len(paths), 1))) as pool:
        tables = list(pool.map(read, paths))
    tables = [t.replace_schema_metadata(None) for t in tables]
    return pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})


# -- merging --------------------------------------------------------------------------------
def _remap(codes: np.ndarray, categories: list, union: pd.Index) -> np.ndarray:
    """``codes`` into ``categories`` re-expressed as codes into ``union`` (-1 stays -1)."""
    if not len(categories):
        return np.full(len(codes), -1, np.int64)
    if len(categories) == len(union):  # union of sorted sets: same length means same categories
        return codes
    table = np.append(union.get_indexer(pd.Index(categories, dtype=object)), -1)
    return table[codes.astype(np.int64, copy=False)]


def _merge_order(series: np.ndarray, days: np.ndarray, n_base: int) -> np.ndarray | None:
    """Row order by (series, day) of base rows (already ordered) followed by new rows; None if ordered."""
    if kernels.is_sorted_by_series_and_day(series, days):
        return None
    key = (series.astype(np.int64) << 32) | (days.astype(np.int64) + 2 ** 31)
    base_key, new_key = key[:n_base], key[n_base:]
    if n_base == 0 or not kernels.is_sorted_by_series_and_day(series[:n_base], days[:n_base]):
        return np.argsort(key, kind="stable")
    new_order = np.argsort(new_key, kind="stable")
    slots = np.searchsorted(base_key, new_key[new_order], side="right") + np.arange(len(new_key))
    order = np.empty(len(key), np.int64)
    is_base = np.ones(len(key), bool)
    is_base[slots] = False
    order[slots] = n_base + new_order
    order[is_base] = np.arange(n_base)
    return order


def _merge(base: Compacted | None, keep: np.ndarray | None, rows: Rows, partitions: dict,
           source: str) -> pa.Table:
    """Base rows (those in ``keep``, or all) plus new ``rows``, ordered by series and date."""
    n_base = 0 if base is None else (int(keep.sum()) if keep is not None else len(base))
    base_kinds = {c["name"]: c for c in base.columns} if base is not None and n_base else {}

    def base_values(name: str) -> np.ndarray:
        values = base.array(name)
        return values[keep] if keep is not None else values

    names = [c["name"] for c in base.columns] if base is not None else []
    names += [name for name in rows.order if name not in names]
    kinds = {}
    for name in names:
        if name in ("date", "market_price"):
            continue
        base_kind = base_kinds.get(name, {}).get("kind")
        new_kind = "category" if name in rows.codes else "arrow" if name in rows.arrow else None
        if new_kind == "category" and base_kind == "arrow" and (rows.codes[name][0] < 0).all():
            new_kind = None  # an all-null column says nothing about its type
        if base_kind and new_kind and base_kind != new_kind:
            raise SchemaError(f"column {name!r} of source {source!r} holds strings in some partitions and "
                              "other values in others; fix the partitions or delete the odd ones")
        kinds[name] = (base_kind or new_kind, base_kind, new_kind)

    # String columns: codes of both sides into the union of their categories.
    categorical: dict[str, tuple[np.ndarray, list]] = {}
    for name, (kind, base_kind, new_kind) in kinds.items():
        if kind != "category":
            continue
        base_cats = base_kinds[name]["categories"] if base_kind else []
        base_codes = base_values(name) if base_kind else np.full(n_base, -1, np.int8)
        new_codes, new_cats = rows.codes[name] if new_kind else (np.full(rows.n, -1, np.int8), [])
        union = pd.Index(sorted(set(base_cats) | set(new_cats)), dtype=object)
        dtype = index_dtype(len(union))
        parts = [_remap(base_codes, base_cats, union).astype(dtype, copy=False),
                 _remap(new_codes, new_cats, union).astype(dtype, copy=False)]
        categorical[name] = (np.concatenate(parts) if n_base else parts[1], list(union))

    # Series codes from the key columns' codes (categories are sorted, so code order is string order).
    missing = [name for name in SERIES_KEY if name not in categorical]
    if missing:
        raise SchemaError(f"stored rows of source {source!r} lack series key column(s) {missing}")
    combined = np.zeros(n_base + rows.n, np.int64)
    for name in SERIES_KEY:
        codes, cats = categorical[name]
        if (codes < 0).any():
            raise SchemaError(f"{int((codes < 0).sum())} stored row(s) of source {source!r} have no {name}")
        combined = combined * max(len(cats), 1) + codes.astype(np.int64)
    series, n_series = rank_keys(combined)
    del combined
    days = (np.concatenate([base_values("date"), rows.days]) if n_base else rows.days).astype(np.int32, copy=False)
    order = _merge_order(series, days, n_base)

    def ordered(values: np.ndarray) -> np.ndarray:
        return values if order is None else values[order]

    prices = np.concatenate([base_values("market_price"), rows.prices]) if n_base else rows.prices
    arrays = [ordered(series), ordered(days), ordered(prices.astype(np.float64, copy=False))]
    fields = [pa.field("series", pa.int32()), pa.field("date", pa.int32()), pa.field("market_price", pa.float64())]
    columns_meta = []
    for name in names:
        if name == "date":
            columns_meta.append({"name": name, "kind": "day"})
            continue
        if name == "market_price":
            columns_meta.append({"name": name, "kind": "price"})
            continue
        kind, base_kind, new_kind = kinds[name]
        if kind == "category":
            codes, cats = categorical[name]
            dtype = index_dtype(len(cats))
            arrays.append(ordered(codes).astype(dtype, copy=False))
            fields.append(pa.field(name, pa.from_numpy_dtype(dtype)))
            columns_meta.append({"name": name, "kind": "category", "categories": cats})
            continue
        parts = []
        if n_base:
            part = base.table.column(name).combine_chunks() if base_kind else None
            if part is not None and keep is not None:
                part = part.filter(pa.array(keep))
            parts.append((part, n_base))
        parts.append((rows.arrow.get(name) if new_kind else None, rows.n))
        types = [p.type for p, _ in parts if p is not None and not pa.types.is_null(p.type)]
        target = types[0] if types else pa.null()
        filled = [p if p is not None else pa.nulls(length, target) for p, length in parts]
        filled = [p.cast(target) if p.type != target else p for p in filled]
        merged = pa.concat_arrays(filled) if len(filled) > 1 else filled[0]
        if order is not None:
            merged = merged.take(pa.array(order))
        arrays.append(merged)
        fields.append(pa.field(name, merged.type))
        columns_meta.append({"name": name, "kind": "arrow"})
    meta = {"format": FORMAT, "source": source, "partitions": partitions, "columns": columns_meta,
            "n_series": n_series}
    schema = pa.schema(fields, metadata={_META_KEY: json.dumps(meta).encode()})
    return pa.Table.from_arrays([pa.array(a) if isinstance(a, np.ndarray) else a for a in arrays], schema=schema)


def _write(table: pa.Table, path: Path) -> None:
    with atomic.atomic_path(path) as tmp:
        with pa.OSFile(str(tmp), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=max(table.num_rows, 1))


# -- refresh ----------------------------------------------------------------------------------
def refresh(store_root: Path, source: str, partitions: dict[str, tuple[int, int]], fingerprint: str,
            day_paths: dict[str, Path], fresh: tuple[set[str], Rows] | None = None) -> tuple[Compacted, bool]:
    """The compacted history for exactly ``partitions``, built or brought up to date.

    Args:
        partitions: partition file name -> (size, mtime_ns), as on disk now.
        fingerprint: the store fingerprint of those partitions (names the file).
        day_paths: partition file name -> path.
        fresh: (names, rows) of partitions just written from ``rows`` (see :func:`encode`),
            so they need not be read back from disk.

    Returns:
        (compacted, up_to_date): ``up_to_date`` is True when nothing had to be merged.
    """
    target = path_for(store_root, source, fingerprint)
    try:
        return open_compacted(target), True
    except (OSError, KeyError, ValueError):
        pass
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return open_compacted(target), True
        except (OSError, KeyError, ValueError):
            pass
        started = time.perf_counter()
        base = _newest(store_root, source)
        built_from = {k: list(v) for k, v in partitions.items()}
        if base is not None:
            changed = {name for name, stat in built_from.items() if base.partitions.get(name) != stat}
            removed = set(base.partitions) - set(built_from)
        else:
            changed, removed = set(built_from), set()
        fresh_names, fresh_rows = fresh if fresh is not None else (set(), None)
        fresh_names = fresh_names & set(built_from)
        changed |= fresh_names
        rows = fresh_rows if fresh_rows is not None and fresh_names else Rows.empty()
        to_read = sorted(changed - fresh_names)
        if to_read:
            rows = concat_rows(rows, encode(_read_partitions([day_paths[name] for name in to_read])))
        replaced_days = np.array(sorted(_day_of(name) for name in changed | removed), np.int32)
        keep = None
        if base is not None and len(replaced_days):
            base_days = base.array("date")
            keep = ~np.isin(base_days, replaced_days)
            if keep.all():
                keep = None
        table = _merge(base, keep, rows, built_from, source)
        _write(table, target)
        _prune(store_root, source, target)
        logger.info("compacted %s history: %d rows, %d partition(s) merged, %d removed, in %.2fs",
                    source, table.num_rows, len(changed), len(removed), time.perf_counter() - started)
        return open_compacted(target), False


def _day_of(name: str) -> int:
    return int((np.datetime64(name[len("date="):len("date=") + 10], "D")).astype(np.int64))


def discard(store_root: Path, source: str) -> None:
    """Remove a source's compacted files (they are rebuilt from the partitions on the next load)."""
    for path in folder(store_root, source).glob("history-*.arrow"):
        try:
            os.unlink(path)
        except OSError:
            pass
