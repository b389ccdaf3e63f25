"""The Parquet price store: one file per source and trading day, plus a compacted copy.

Why one file per day: collecting a day must be idempotent and must never lose a stored
price. A write *merges* the rows it fetched into the day's file (by card, variant,
currency and date: a fetched row replaces the stored one, stored rows it did not fetch
stay), so a re-collect where one set failed, or a re-import of five cards, keeps every
other stored row. Removing stored rows takes ``replace_day=True``, which says how many
rows it removed. A file is replaced atomically, so a crash mid-write leaves the previous
file intact, and a day whose file already holds exactly the merged rows is not rewritten
at all (its mtime, and so the store's fingerprint and every cache key, stay).

Why only the schema's columns: a source that hands over columns nobody declared (a CSV
with 200,000 unmapped columns once did) would carry them into every file and the
compacted history. The store keeps the columns :func:`pokewatch.core.schema.stored_columns`
allows (the schema's, the known source extras, and up to a cap of columns the user
declared) and cuts text longer than :data:`pokewatch.core.schema.MAX_TEXT_CHARS`; anything
else is dropped with a warning.

Why a compacted copy as well: two years are 730 files, and reading them back takes
seconds. Every write also brings the source's compacted history
(:mod:`pokewatch.data.compaction`: a memory-mapped base plus small segments of recent days,
ordered by series and date) up to date by adding just the days that changed; a load
maps it instead of parsing 730 files. It is named after the fingerprint of the daily
files it was built from, so it can never be out of step with them unnoticed: when the
daily files were changed by anything else, the next load merges the changed days
first. The daily files remain the source of truth.

Layout: ``<store>/<source>/date=YYYY-MM-DD.parquet``, each holding rows that passed
:func:`pokewatch.core.schema.validate_observations`, and ``<store>/.compact/<source>/``.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pokewatch.data import compaction
from pokewatch import atomic, config
from pokewatch.core import columnar
from pokewatch.errors import ParameterError
from pokewatch.core.frame import PriceFrame, dates_of, day_numbers, rank_keys
from pokewatch.core.schema import (
    DESCRIPTIVE_COLUMNS,
    MAX_TEXT_CHARS,
    PRIMARY_KEY,
    REQUIRED_COLUMNS,
    conform,
    empty_prices,
    stored_columns,
)

logger = logging.getLogger(__name__)

_PARTITION = re.compile(r"^date=(\d{4}-\d{2}-\d{2})\.parquet$")


def _partition_entry(name: str, size: int, mtime_ns: int) -> bytes:
    """What a fingerprint hashes of one partition file."""
    return f"{name}:{size}:{mtime_ns}".encode()
_STRING = pd.StringDtype("pyarrow")


@dataclass
class WriteReport:
    """What :meth:`PriceStore.write_days` did; days are ``YYYY-MM-DD``.

    Attributes:
        rows: rows handed over, per day.
        stored: rows the day holds after the write.
        removed: stored rows removed because ``replace_day`` was set and they were not fetched again.
        unchanged: days whose file already held exactly the merged rows (not rewritten).
        dropped_columns: columns the store does not keep (see :func:`pokewatch.core.schema.stored_columns`).
        truncated: column -> values cut to :data:`pokewatch.core.schema.MAX_TEXT_CHARS` characters.
    """

    rows: dict[str, int] = field(default_factory=dict)
    stored: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    dropped_columns: list[str] = field(default_factory=list)
    truncated: dict[str, int] = field(default_factory=dict)

    @property
    def rows_removed(self) -> int:
        return int(sum(self.removed.values()))


@dataclass(frozen=True)
class PriceStore:
    """A folder of daily Parquet partitions, per source."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def default(cls) -> PriceStore:
        return cls(config.store_dir())

    def _source_dir(self, source: str) -> Path:
        if not source or "/" in source or source.startswith("."):
            raise ParameterError(f"invalid source name {source!r}")
        return self.root / source

    def day_path(self, source: str, date) -> Path:
        return self._source_dir(source) / f"date={pd.Timestamp(date):%Y-%m-%d}.parquet"

    # -- writing ------------------------------------------------------------------------
    def write_days(self, source: str, frame: pd.DataFrame, *, replace_day: bool = False,
                   declared_columns=()) -> WriteReport:
        """Merge the rows of every date in ``frame`` into that date's partition.

        A fetched row replaces the stored row with the same card, variant, currency and
        date; stored rows not in ``frame`` stay, unless ``replace_day`` is set, which
        makes each day hold exactly ``frame``'s rows (and reports how many it removed).
        ``frame`` must already be validated: the store refuses duplicate keys rather
        than guess which row is right. A day whose file already holds exactly the merged
        rows is left untouched (so is the store's fingerprint). The compacted history is
        brought up to date afterwards; should that fail, the next load rebuilds it.

        Args:
            source: the source name (a folder of the store).
            frame: validated rows in the long schema.
            replace_day: remove the stored rows of these days that ``frame`` lacks.
            declared_columns: extra columns the user asked to keep (besides the known ones).

        Returns:
            What was written, merged, removed and dropped, per day.

        Raises:
            ParameterError: a bad source name, or duplicate keys in ``frame``.
        """
        report = WriteReport()
        if frame.empty:
            return report
        self._source_dir(source)
        kept, dropped = stored_columns(frame.columns, declared_columns)
        if dropped:
            report.dropped_columns = dropped
            logger.warning("not storing %d column(s) of %s that are neither in the schema nor declared: %s%s",
                           len(dropped), source, dropped[:10], " ..." if len(dropped) > 10 else "")
            frame = frame.loc[:, kept]
        table = frame if _conforms(frame) else conform(frame)
        has_date = table["date"].notna().to_numpy()
        if not has_date.all():
            table = table.loc[has_date]
        arrow = pa.Table.from_pandas(table, preserve_index=False).replace_schema_metadata(None)
        arrow, report.truncated = _cut_long_text(arrow)
        if report.truncated:
            logger.warning("cut %s value(s) of %s to %d characters", report.truncated, source, MAX_TEXT_CHARS)
        schema = arrow.schema
        rows = compaction.encode(arrow)
        del arrow
        _refuse_duplicates(rows, source)
        offset = rows.days - rows.days.min()
        order = np.argsort(offset.astype(np.int16) if offset.max() < 2 ** 15 else offset, kind="stable")
        by_day = rows.take(order) if (np.diff(order) != 1).any() else rows
        del order, rows
        cuts = np.flatnonzero(np.diff(by_day.days)) + 1
        existing = set(self._partitions(source))  # one listing instead of a failed open per new day
        written: dict[str, tuple[int, int]] = {}
        pieces, all_plain = [], True
        for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, by_day.n]):
            lo, hi = int(lo), int(hi)
            day = f"{pd.Timestamp(dates_of(by_day.days[lo:lo + 1])[0]):%Y-%m-%d}"
            path = self.day_path(source, day)
            report.rows[day] = hi - lo
            stored_table = _read_day_table(path) if path.name in existing else None
            if stored_table is not None and _holds_exactly(stored_table, by_day.day_table(slice(lo, hi), schema)):
                report.stored[day] = stored_table.num_rows
                report.unchanged.append(day)
                all_plain = False
                continue
            if stored_table is None:
                merged, day_schema, piece = by_day, schema, slice(lo, hi)
            else:
                stored, stored_schema = compaction.encode(stored_table), stored_table.schema
                fetched = by_day.take(np.arange(lo, hi))
                merged, replaced = compaction.upsert_rows(stored, fetched)
                day_schema = pa.schema([*stored_schema, *[f for f in schema if f.name not in stored_schema.names]])
                if replace_day:
                    removed = stored.n - replaced
                    if removed:
                        report.removed[day] = removed
                        logger.warning("replace_day: removing %d stored row(s) of %s %s that this collect did "
                                       "not fetch", removed, source, day)
                    merged, day_schema = fetched, schema
                piece = slice(0, merged.n)
            report.stored[day] = piece.stop - piece.start
            path_changed = _replace_if_changed(path, merged.day_table(piece, day_schema))
            if not path_changed:
                report.unchanged.append(day)
                all_plain = False
                continue
            stat = path.stat()
            written[path.name] = (stat.st_size, stat.st_mtime_ns)
            if merged is by_day:
                pieces.append(("slice", lo, hi))
            else:
                pieces.append(("rows", merged))
                all_plain = False
        logger.info("stored %d rows over %d day(s) for source %s (%d unchanged)", by_day.n, len(report.rows),
                    source, len(report.unchanged))
        if not written:
            return report
        if all_plain:
            fresh_rows = by_day
        else:
            fresh_rows = compaction.concat_rows(*[by_day.take(np.arange(p[1], p[2])) if p[0] == "slice" else p[1]
                                                  for p in pieces])
        del by_day, pieces
        try:
            self.compacted(source, fresh=(written, fresh_rows))
        except Exception as exc:  # the partitions are written; the compacted copy is only a cache
            logger.warning("could not update the compacted %s history (%s); the next load rebuilds it",
                           source, exc)
            compaction.discard(self.root, source)
        return report

    # -- partitions ---------------------------------------------------------------------------
    def _partitions(self, source: str, start=None, end=None) -> dict[str, tuple[Path, int, int]]:
        """Partition file name -> (path, size, mtime_ns) within [start, end], oldest first."""
        folder = self._source_dir(source)
        lo = f"{pd.Timestamp(start):%Y-%m-%d}" if start is not None else ""
        hi = f"{pd.Timestamp(end):%Y-%m-%d}" if end is not None else "9999-99-99"
        found = []
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return {}
        for entry in entries:
            match = _PARTITION.match(entry.name)
            if match and lo <= match.group(1) <= hi:
                try:
                    stat = entry.stat()
                except FileNotFoundError:  # replaced between listing and stat
                    continue
                found.append((entry.name, (Path(entry.path), stat.st_size, stat.st_mtime_ns)))
        return dict(sorted(found))

    def dates(self, source: str) -> list[pd.Timestamp]:
        return [pd.Timestamp(name[5:15]) for name in self._partitions(source)]

    def day_rows(self, source: str, date) -> int:
        """Rows stored for ``source`` on ``date`` (0 when the day is not stored)."""
        try:
            return pq.ParquetFile(self.day_path(source, date)).metadata.num_rows
        except FileNotFoundError:
            return 0

    @staticmethod
    def _digest(source: str, partitions: dict) -> str:
        digest = hashlib.sha256(source.encode())
        for name, (_, size, mtime_ns) in partitions.items():
            digest.update(_partition_entry(name, size, mtime_ns))
        return digest.hexdigest()[:16]

    def fingerprint(self, source: str, start=None, end=None) -> str:
        """A cheap content fingerprint: names, sizes and mtimes of the partition files.

        Used as the joblib cache key instead of hashing millions of rows.
        """
        return self._digest(source, self._partitions(source, start, end))

    def fingerprints(self, source: str, start, ends) -> list[str]:
        """:meth:`fingerprint` of [start, end] for each of ``ends``, from one listing of the folder.

        A track record keys each of its weekly selections on the days before it: listing
        and hashing the partitions once per week cost a year of them 52 listings.
        """
        ends = [f"{pd.Timestamp(end):%Y-%m-%d}" for end in ends]
        if not ends:
            return []
        partitions = list(self._partitions(source, start, max(ends)).items())
        digest = hashlib.sha256(source.encode())
        by_end, taken = {}, 0
        for end in sorted(set(ends)):
            while taken < len(partitions) and partitions[taken][0][5:15] <= end:
                name, (_, size, mtime_ns) = partitions[taken]
                digest.update(_partition_entry(name, size, mtime_ns))
                taken += 1
            by_end[end] = digest.copy().hexdigest()[:16]
        return [by_end[end] for end in ends]

    # -- the compacted history ---------------------------------------------------------------
    def compacted(self, source: str, fresh=None) -> tuple[compaction.History | None, bool]:
        """The source's compacted history, in step with its partitions (None when it has none).

        Returns:
            (history, was_up_to_date).
        """
        partitions = self._partitions(source)
        if not partitions:
            return None, True
        stats = {name: (size, mtime) for name, (_, size, mtime) in partitions.items()}
        paths = {name: path for name, (path, _, _) in partitions.items()}
        return compaction.refresh(self.root, source, stats, self._digest(source, partitions), paths, fresh)

    def compact(self, source: str) -> None:
        """Merge the source's compacted history into one base (loads then map it without merging)."""
        history, _ = self.compacted(source)
        if history is not None:
            compaction.compact(self.root, source, history)

    def _view(self, source: str, start, end) -> compaction.View | None:
        """The stored rows of [start, end], merged and ordered (None when there are none)."""
        history, _ = self.compacted(source)
        if history is None:
            return None
        lo = int(day_numbers(pd.Series([pd.Timestamp(start).ceil("D")]))[0]) if start is not None else None
        hi = int(day_numbers(pd.Series([pd.Timestamp(end)]))[0]) if end is not None else None
        view = history.view(lo, hi)
        return view if view.n else None

    def load(self, source: str, start=None, end=None, columns: list[str] | None = None) -> pd.DataFrame:
        """All stored observations of ``source`` within [start, end], in schema order.

        Rows come sorted by series (card_id, variant, currency) and date; string
        columns have the schema's ``string`` dtype.
        """
        view = self._view(source, start, end)
        if view is None:
            return empty_prices() if columns is None else empty_prices()[columns]
        days, prices = view.days, view.prices  # merged once, before the threads share the view

        def column(spec: dict):
            name, kind = spec["name"], spec["kind"]
            if kind == "day":
                return dates_of(days)
            if kind == "price":
                return prices
            if kind == "category":
                codes = view.codes(name)
                values = pa.array(spec["categories"], pa.large_string()).take(pa.array(codes, mask=codes < 0))
                return pd.array(values, dtype=_STRING)
            return view.arrow_values(name).to_pandas()

        wanted = [c for c in view.specs if columns is None or c["name"] in columns]
        # Decoding the string columns is the whole cost; Arrow does it without the GIL.
        with ThreadPoolExecutor(max_workers=columnar.THREADS) as pool:
            values = list(pool.map(column, wanted))
        out = pd.DataFrame(dict(zip([c["name"] for c in wanted], values)), copy=False)
        return out[columns] if columns is not None else out

    def load_frame(self, source: str, start=None, end=None) -> PriceFrame:
        """Observations of ``source`` within [start, end] as a :class:`PriceFrame`, ready for the kernels.

        With a compacted base and no newer segment, the arrays are views of the
        memory-mapped history (copies only when a window cuts rows out); otherwise they
        are merged from the base and the segments in one pass. The long table
        (``frame``, string columns as categoricals) is only built when asked for, and
        a few of its rows (``rows``) are read from each part without merging any column.
        """
        view = self._view(source, start, end)
        if view is None:
            return PriceFrame.from_history(empty_prices())
        days, prices, bounds = view.days, view.prices, view.bounds

        def column(spec: dict, positions: np.ndarray | None = None, sources=None):
            """One column of the long table as ``build`` puts it there, or its rows ``positions`` (see ``at``)."""
            name, kind = spec["name"], spec["kind"]
            if kind == "day":
                return dates_of(days if positions is None else days[positions])
            if kind == "price":
                return prices if positions is None else prices[positions]
            if kind == "category":
                dtype = pd.CategoricalDtype(pd.Index(spec["categories"], dtype="str"))
                codes = view.codes(name) if positions is None else view.codes_at(name, sources)
                return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)
            if positions is None:
                return view.arrow_values(name).to_pandas()
            return view.arrow_values_at(name, sources).to_pandas().set_axis(positions)

        def build() -> pd.DataFrame:
            frame = {spec["name"]: column(spec) for spec in view.specs}
            frame["series"] = view.series
            return pd.DataFrame(frame, copy=False)

        def low() -> np.ndarray:
            # The one extra column the passes read: decoded alone, not by building the long table.
            spec = next((s for s in view.specs if s["name"] == "low_price"), None)
            if spec is None:
                return np.zeros(0)
            return np.ascontiguousarray(pd.to_numeric(column(spec), errors="coerce").to_numpy(np.float64))

        def at(positions: np.ndarray) -> pd.DataFrame:
            """The long table's rows ``positions``, each column read at those rows only."""
            sources = view.sources(positions)
            frame = {spec["name"]: column(spec, positions, sources) for spec in view.specs}
            frame["series"] = (np.searchsorted(bounds, positions, side="right") - 1).astype(np.int32)
            if view.merged:
                view.release_parts()   # rows spread over the history touch every page of each column
            return pd.DataFrame(frame, index=positions)

        return PriceFrame(lambda: view.series, days, prices, bounds, build, low=low, rows=at)


def _holds_exactly(stored: pa.Table, fetched: pa.Table) -> bool:
    """Whether a stored day already is ``fetched``: the same columns, rows and order.

    Re-collecting an unchanged day (a backfill run again) then costs reading its file,
    not merging and writing it again to compare bytes: 0.1 s instead of 1.2 s for
    the 18 days of ../shared. Anything else (new rows, other values, another order,
    a new column) goes through the merge, which decides.
    """
    if stored.num_rows != fetched.num_rows or stored.column_names != fetched.column_names:
        return False
    for name in stored.column_names:
        have, new = stored.column(name), fetched.column(name)
        if pa.types.is_dictionary(new.type):
            new = new.cast(new.type.value_type)
        if have.type != new.type and _is_text(have.type) and _is_text(new.type):
            new = new.cast(have.type)  # Parquet reads back string what was written large_string
        if have.type != new.type or not have.equals(new):
            return False
    return True


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _read_day_table(path: Path) -> pa.Table | None:
    """A stored day's file as a table (None when the day is not stored yet or unreadable)."""
    try:
        table = pq.read_table(path).replace_schema_metadata(None)
    except FileNotFoundError:
        return None
    except (OSError, pa.ArrowException) as exc:
        logger.warning("the stored day %s is unreadable (%s); it is replaced by the rows fetched now", path, exc)
        return None
    # A day stored before the column policy keeps its extras only up to the cap.
    kept, dropped = stored_columns(table.column_names, table.column_names)
    if dropped:
        logger.warning("dropping %d column(s) of the stored day %s beyond the cap on extra columns", len(dropped), path)
        table = table.select(kept)
    return table


def _cut_long_text(table: pa.Table) -> tuple[pa.Table, dict[str, int]]:
    """``table`` with text longer than MAX_TEXT_CHARS cut, outside the key columns; and counts per column."""
    cut = {}
    for i, name in enumerate(table.column_names):
        column = table.column(name)
        if name in REQUIRED_COLUMNS or not compaction._is_string(column.type) or pa.types.is_null(column.type):
            continue
        if pa.types.is_dictionary(column.type):
            longest = max((pc.max(pc.utf8_length(chunk.dictionary)).as_py() or 0 for chunk in column.chunks),
                          default=0)
        else:
            longest = pc.max(pc.utf8_length(column)).as_py() or 0
        if longest <= MAX_TEXT_CHARS:
            continue
        plain = column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column
        cut[name] = int(pc.sum(pc.greater(pc.utf8_length(plain), MAX_TEXT_CHARS)).as_py() or 0)
        table = table.set_column(i, name, pc.utf8_slice_codeunits(plain, 0, MAX_TEXT_CHARS))
    return table, cut


def _replace_if_changed(path: Path, table: pa.Table) -> bool:
    """Write ``table`` to ``path`` atomically, unless the file already holds exactly these bytes.

    Re-collecting a day with identical prices then leaves its file, its mtime and so
    the store's fingerprint untouched, and the cached steps keep hitting.

    Returns:
        True when the file was (re)written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        # Plain Parquet: strings read back as strings (no Arrow schema with dictionary
        # types is stored), and no column statistics nobody reads.
        pq.write_table(table, tmp, store_schema=False, write_statistics=False)
        try:
            if path.stat().st_size == tmp.stat().st_size and path.read_bytes() == tmp.read_bytes():
                return False
        except FileNotFoundError:
            pass
        os.chmod(tmp, atomic.file_mode())
        os.replace(tmp, path)
        return True
    finally:
        if tmp.exists():
            tmp.unlink()


def _conforms(frame: pd.DataFrame) -> bool:
    """True when :func:`pokewatch.core.schema.conform` would return ``frame`` unchanged."""
    for name in (*REQUIRED_COLUMNS, *DESCRIPTIVE_COLUMNS):
        if name not in frame.columns:
            return False
    for name in ("card_id", "variant", "currency", "source", *DESCRIPTIVE_COLUMNS):
        if frame[name].dtype != "string":
            return False
    date = frame["date"]
    if not (pd.api.types.is_datetime64_dtype(date.dtype) and frame["market_price"].dtype == np.float64):
        return False
    values = date.to_numpy()
    per_day = np.timedelta64(1, "D") // np.timedelta64(1, np.datetime_data(values.dtype)[0])
    ticks = values.view(np.int64)
    step = 1 << 22  # in slices, so the check needs no second copy of a 30-million-row column
    return not any((ticks[i:i + step] % per_day).any() for i in range(0, len(ticks), step))


def _refuse_duplicates(rows: compaction.Rows, source: str) -> None:
    """Raise ParameterError when two rows share card, variant, currency and date."""
    combined = np.zeros(rows.n, np.int64)
    for name in PRIMARY_KEY[:-1]:
        codes, categories = rows.codes.get(name, (np.full(rows.n, -1, np.int8), []))
        combined = combined * (len(categories) + 1) + (codes + 1)
    series = rank_keys(combined)[0]
    if columnar.is_sorted_by_series_and_day(series, rows.days):
        return
    order = np.lexsort((rows.days, series))
    same = (series[order][1:] == series[order][:-1]) & (rows.days[order][1:] == rows.days[order][:-1])
    dupes = int(same.sum())
    if dupes:
        raise ParameterError(
            f"refusing to store {dupes} duplicate observation(s) for source {source!r}; "
            "run them through pokewatch.core.schema.validate_observations first"
        )
