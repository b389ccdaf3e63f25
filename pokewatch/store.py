"""The Parquet price store: one file per source and trading day, plus a compacted copy.

Why one file per day: collecting a day must be idempotent. Re-running a date
atomically replaces that date's file, so rows can never be duplicated and a crash
mid-write leaves the previous file intact.

Why a compacted copy as well: two years are 730 files, and reading them back takes
seconds. Every write also brings the source's compacted history
(:mod:`pokewatch.compaction`, one memory-mapped Arrow file ordered by series and
date) up to date, merging only the days that changed; a load maps that file instead
of parsing 730. The compacted file is named after the fingerprint of the daily files
it was built from, so it can never be out of step with them unnoticed: when the
daily files were changed by anything else, the next load merges the changed days
first. The daily files remain the source of truth.

Layout: ``<store>/<source>/date=YYYY-MM-DD.parquet``, each holding rows that passed
:func:`pokewatch.schema.validate_observations`, and ``<store>/.compact/<source>/``.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pokewatch import compaction, config, kernels
from pokewatch.errors import ParameterError
from pokewatch.fair_value import PriceFrame, dates_of, day_numbers, rank_keys, series_bounds
from pokewatch.schema import DESCRIPTIVE_COLUMNS, PRIMARY_KEY, REQUIRED_COLUMNS, conform, empty_prices

logger = logging.getLogger(__name__)

_PARTITION = re.compile(r"^date=(\d{4}-\d{2}-\d{2})\.parquet$")
_STRING = pd.StringDtype("pyarrow")
_UMASK = os.umask(0)
os.umask(_UMASK)


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
    def write_days(self, source: str, frame: pd.DataFrame) -> dict[str, int]:
        """Replace the partition of every date present in ``frame``; return rows per date.

        ``frame`` must already be validated: the store refuses duplicate keys rather
        than guess which row is right. A day whose file already holds exactly these
        rows is left untouched (so is the store's fingerprint). The compacted history
        is brought up to date afterwards; should that fail, the next load rebuilds it.
        """
        if frame.empty:
            return {}
        self._source_dir(source)
        table = frame if _conforms(frame) else conform(frame)
        has_date = table["date"].notna().to_numpy()
        if not has_date.all():
            table = table.loc[has_date]
        schema = pa.Schema.from_pandas(table, preserve_index=False)
        rows = compaction.encode(pa.Table.from_pandas(table, preserve_index=False))
        _refuse_duplicates(rows, source)
        offset = rows.days - rows.days.min()
        order = np.argsort(offset.astype(np.int16) if offset.max() < 2 ** 15 else offset, kind="stable")
        by_day = rows.take(order) if (np.diff(order) != 1).any() else rows
        del order
        cuts = np.flatnonzero(np.diff(by_day.days)) + 1
        written = {}
        for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, rows.n]):
            day = f"{pd.Timestamp(dates_of(by_day.days[lo:lo + 1])[0]):%Y-%m-%d}"
            _replace_if_changed(self.day_path(source, day), by_day.day_table(slice(int(lo), int(hi)), schema))
            written[day] = int(hi - lo)
        del by_day
        logger.info("stored %d rows over %d day(s) for source %s", len(table), len(written), source)
        try:
            self.compacted(source, fresh=({f"date={d}.parquet" for d in written}, rows))
        except Exception as exc:  # the partitions are written; the compacted copy is only a cache
            logger.warning("could not update the compacted %s history (%s); the next load rebuilds it",
                           source, exc)
            compaction.discard(self.root, source)
        return written

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

    def day_files(self, source: str, start=None, end=None) -> list[Path]:
        """Partition files of ``source`` within [start, end], oldest first."""
        return [path for path, _, _ in self._partitions(source, start, end).values()]

    def dates(self, source: str) -> list[pd.Timestamp]:
        return [pd.Timestamp(name[5:15]) for name in self._partitions(source)]

    @staticmethod
    def _digest(source: str, partitions: dict) -> str:
        digest = hashlib.sha256(source.encode())
        for name, (_, size, mtime_ns) in partitions.items():
            digest.update(f"{name}:{size}:{mtime_ns}".encode())
        return digest.hexdigest()[:16]

    def fingerprint(self, source: str, start=None, end=None) -> str:
        """A cheap content fingerprint: names, sizes and mtimes of the partition files.

        Used as the joblib cache key instead of hashing millions of rows.
        """
        return self._digest(source, self._partitions(source, start, end))

    # -- the compacted history ---------------------------------------------------------------
    def compacted(self, source: str, fresh=None) -> tuple[compaction.Compacted | None, bool]:
        """The source's compacted history, in step with its partitions (None when it has none).

        Returns:
            (compacted, was_up_to_date).
        """
        partitions = self._partitions(source)
        if not partitions:
            return None, True
        stats = {name: (size, mtime) for name, (_, size, mtime) in partitions.items()}
        paths = {name: path for name, (path, _, _) in partitions.items()}
        return compaction.refresh(self.root, source, stats, self._digest(source, partitions), paths, fresh)

    def _select(self, source: str, start, end):
        """(compacted, row positions or None for all, days, series, prices) of [start, end]."""
        compact, _ = self.compacted(source)
        if compact is None or len(compact) == 0:
            return None
        days = compact.array("date")
        lo = int(day_numbers(pd.Series([pd.Timestamp(start).ceil("D")]))[0]) if start is not None else None
        hi = int(day_numbers(pd.Series([pd.Timestamp(end)]))[0]) if end is not None else None
        rows = None
        if (lo is not None and lo > days.min()) or (hi is not None and hi < days.max()):
            mask = np.ones(len(days), bool)
            if lo is not None:
                mask &= days >= lo
            if hi is not None:
                mask &= days <= hi
            rows = np.flatnonzero(mask)
            if not len(rows):
                return None
        series = compact.array("series")
        prices = compact.array("market_price")
        if rows is not None:
            days, series, prices = days[rows], series[rows], prices[rows]
        return compact, rows, days, series, prices

    def load(self, source: str, start=None, end=None, columns: list[str] | None = None) -> pd.DataFrame:
        """All stored observations of ``source`` within [start, end], in schema order.

        Rows come sorted by series (card_id, variant, currency) and date; string
        columns have the schema's ``string`` dtype.
        """
        selected = self._select(source, start, end)
        if selected is None:
            return empty_prices() if columns is None else empty_prices()[columns]
        compact, rows, days, _series, prices = selected

        def column(spec: dict):
            name, kind = spec["name"], spec["kind"]
            if kind == "day":
                return dates_of(days)
            if kind == "price":
                return prices
            if kind == "category":
                codes = compact.array(name)
                codes = codes[rows] if rows is not None else codes
                values = pa.array(spec["categories"], pa.large_string()).take(pa.array(codes, mask=codes < 0))
                return pd.array(values, dtype=_STRING)
            values = compact.table.column(name)
            return (values.take(pa.array(rows)) if rows is not None else values).to_pandas()

        wanted = [c for c in compact.columns if columns is None or c["name"] in columns]
        # Decoding the string columns is the whole cost; Arrow does it without the GIL.
        with ThreadPoolExecutor(max_workers=kernels.THREADS) as pool:
            values = list(pool.map(column, wanted))
        out = pd.DataFrame(dict(zip([c["name"] for c in wanted], values)), copy=False)
        return out[columns] if columns is not None else out

    def load_frame(self, source: str, start=None, end=None) -> PriceFrame:
        """Observations of ``source`` within [start, end] as a :class:`PriceFrame`, ready for the kernels.

        The arrays are views of the memory-mapped compacted history (copies only when a
        window cuts rows out); the long table (``frame``, string columns as
        categoricals) is only built when asked for.
        """
        selected = self._select(source, start, end)
        if selected is None:
            return PriceFrame.from_history(empty_prices())
        compact, rows, days, series, prices = selected
        bounds = series_bounds(series)
        if rows is not None:
            series = np.repeat(np.arange(len(bounds) - 1, dtype=np.int32), np.diff(bounds))

        def build() -> pd.DataFrame:
            frame = {}
            for column in compact.columns:
                name, kind = column["name"], column["kind"]
                if kind == "day":
                    frame[name] = dates_of(days)
                elif kind == "price":
                    frame[name] = prices
                elif kind == "category":
                    codes = compact.array(name)
                    frame[name] = pd.Categorical.from_codes(codes[rows] if rows is not None else codes,
                                                            dtype=_categorical_dtype(compact, name), validate=False)
                else:
                    values = compact.table.column(name)
                    frame[name] = (values.take(pa.array(rows)) if rows is not None else values).to_pandas()
            frame["series"] = series
            return pd.DataFrame(frame, copy=False)

        return PriceFrame(series, days, prices, bounds, build)


def _categorical_dtype(compact: compaction.Compacted, name: str) -> pd.CategoricalDtype:
    cache = compact.__dict__.setdefault("_dtypes", {})
    if name not in cache:
        cache[name] = pd.CategoricalDtype(pd.Index(compact.categories(name), dtype="str"))
    return cache[name]


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
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
        return True
    finally:
        if tmp.exists():
            tmp.unlink()


def _conforms(frame: pd.DataFrame) -> bool:
    """True when :func:`pokewatch.schema.conform` would return ``frame`` unchanged."""
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
    if kernels.is_sorted_by_series_and_day(series, rows.days):
        return
    order = np.lexsort((rows.days, series))
    same = (series[order][1:] == series[order][:-1]) & (rows.days[order][1:] == rows.days[order][:-1])
    dupes = int(same.sum())
    if dupes:
        raise ParameterError(
            f"refusing to store {dupes} duplicate observation(s) for source {source!r}; "
            "run them through pokewatch.schema.validate_observations first"
        )
