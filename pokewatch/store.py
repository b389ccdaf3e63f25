"""The Parquet price store: one file per source and trading day.

Why one file per day: collecting a day must be idempotent. Re-running a date
atomically replaces that date's file, so rows can never be duplicated and a crash
mid-write leaves the previous file intact. Reading history concatenates the files
of a date range with pyarrow's multi-threaded dataset reader.

Layout: ``<store>/<source>/date=YYYY-MM-DD.parquet``, each holding rows that passed
:func:`pokewatch.schema.validate_observations`.
"""
from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds

from pokewatch import atomic, config
from pokewatch.errors import ParameterError
from pokewatch.schema import PRIMARY_KEY, conform, empty_prices

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PriceStore:
    """A folder of daily Parquet partitions, per source."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def default(cls) -> "PriceStore":
        return cls(config.store_dir())

    def _source_dir(self, source: str) -> Path:
        if not source or "/" in source or source.startswith("."):
            raise ParameterError(f"invalid source name {source!r}")
        return self.root / source

    def day_path(self, source: str, date) -> Path:
        return self._source_dir(source) / f"date={pd.Timestamp(date):%Y-%m-%d}.parquet"

    def write_days(self, source: str, frame: pd.DataFrame) -> dict[str, int]:
        """Replace the partition of every date present in ``frame``; return rows per date.

        ``frame`` must already be validated: the store refuses duplicate keys rather
        than guess which row is right.
        """
        if frame.empty:
            return {}
        table = conform(frame)
        dupes = table.duplicated(PRIMARY_KEY)
        if dupes.any():
            raise ParameterError(
                f"refusing to store {int(dupes.sum())} duplicate observation(s) for source {source!r}; "
                "run them through pokewatch.schema.validate_observations first"
            )
        written = {}
        for date, day in table.groupby("date", sort=True):
            self._write_if_changed(self.day_path(source, date), day.reset_index(drop=True))
            written[f"{pd.Timestamp(date):%Y-%m-%d}"] = len(day)
        logger.info("stored %d rows over %d day(s) for source %s", len(table), len(written), source)
        return written

    @staticmethod
    def _write_if_changed(path: Path, day: pd.DataFrame) -> None:
        """Write a day's file unless identical bytes are already there.

        Re-collecting an unchanged day then keeps the file's mtime, so the store's
        fingerprint, and every cache keyed on it, survives an idempotent re-run.
        """
        buffer = io.BytesIO()
        day.to_parquet(buffer, index=False)
        data = buffer.getvalue()
        if path.exists() and path.stat().st_size == len(data) and path.read_bytes() == data:
            return
        atomic.write_bytes(path, data)

    def day_files(self, source: str, start=None, end=None) -> list[Path]:
        """Partition files of ``source`` within [start, end], oldest first."""
        folder = self._source_dir(source)
        if not folder.exists():
            return []
        lo = pd.Timestamp(start) if start is not None else pd.Timestamp.min
        hi = pd.Timestamp(end) if end is not None else pd.Timestamp.max
        files = []
        for path in sorted(folder.glob("date=*.parquet")):
            day = pd.Timestamp(path.stem.split("=", 1)[1])
            if lo <= day <= hi:
                files.append(path)
        return files

    def dates(self, source: str) -> list[pd.Timestamp]:
        return [pd.Timestamp(p.stem.split("=", 1)[1]) for p in self.day_files(source)]

    def fingerprint(self, source: str, start=None, end=None) -> str:
        """A cheap content fingerprint: names, sizes and mtimes of the partition files.

        Used as the joblib cache key instead of hashing millions of rows.
        """
        digest = hashlib.sha256(source.encode())
        for path in self.day_files(source, start, end):
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        return digest.hexdigest()[:16]

    def load(self, source: str, start=None, end=None, columns: list[str] | None = None) -> pd.DataFrame:
        """All stored observations of ``source`` within [start, end], in schema order."""
        files = self.day_files(source, start, end)
        if not files:
            return empty_prices() if columns is None else empty_prices()[columns]
        dataset = ds.dataset([str(f) for f in files], format="parquet")
        frame = dataset.to_table(columns=columns, use_threads=True).to_pandas()
        if "date" in frame.columns:
            frame["date"] = frame["date"].astype("datetime64[ns]")
        return frame
