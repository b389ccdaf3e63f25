"""The collect step: fetch raw responses, parse, validate, store, report quality.

This is the only place where a source, the raw archive, validation and the store
meet, so every source gets the same guarantees: raw responses are on disk before
parsing (and kept beyond the run folder once the collect succeeded), invalid rows are
counted with reasons instead of crashing the run, the fetched rows are merged into
the stored days (rows not fetched again stay, unless ``replace_day`` asks to remove
them), columns the store does not keep are dropped before anything else touches them,
and the run fails when too little came back or nothing valid did.

A source may parse in chunks (a ``parse_chunks(request, raw)`` method yielding frames
of consecutive days, as the demo market does): each chunk is validated and stored
before the next is parsed, so a long backfill never holds its whole window.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa

from pokewatch import atomic, config
from pokewatch.data import raw_archive
from pokewatch.errors import ParameterError, SourceError
from pokewatch.data.raw_archive import RawArchive
from pokewatch.core.schema import (
    MALFORMED,
    REJECT_REASONS,
    SERIES_KEY,
    ValidationResult,
    stored_columns,
    validate_observations,
)
from pokewatch.data.sources import CollectRequest, FetchReport, get_source
from pokewatch.data.store import PriceStore, WriteReport
from pokewatch.run.folder import RunFolder  # the run folder's file names; pathlib only

logger = logging.getLogger(__name__)


@dataclass
class CollectResult:
    """Outcome of one collect: valid rows, the validation and fetch reports, what was stored, timings.

    ``prices`` holds the valid rows; for a source that parses in chunks (the demo
    market's backfills) only the last chunk's, which holds the run day (the store
    has them all). ``rows_valid`` counts every chunk.
    """

    source: str
    request: CollectRequest
    prices: pd.DataFrame
    validation: ValidationResult
    fetch: FetchReport
    stored: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    rows_valid: int = 0
    series: int = 0
    replace_day: bool = False
    written: WriteReport = field(default_factory=WriteReport)
    dropped_columns: list[str] = field(default_factory=list)
    raw_kept: str | None = None
    run_dir: Path | None = None

    @property
    def rows_removed(self) -> int:
        """Stored rows removed by ``replace_day`` (0 without it)."""
        return self.written.rows_removed

    def quality_report(self, min_completeness: float) -> dict:
        validation = self.validation.summary()
        validation["rows_valid"] = self.rows_valid
        validation["rows_in"] = self.rows_valid + validation["rows_rejected"]
        return {
            "source": self.source,
            "start": f"{self.request.start:%Y-%m-%d}",
            "end": f"{self.request.end:%Y-%m-%d}",
            "completeness": round(self.fetch.completeness, 4),
            "min_completeness": min_completeness,
            "items_expected": self.fetch.expected,
            "fetch_failures": self.fetch.failures,
            "notes": self.fetch.notes,
            "validation": validation,
            "series": self.series,
            "days_stored": self.stored,
            "days_unchanged": self.written.unchanged,
            "replace_day": self.replace_day,
            "rows_removed": self.rows_removed,
            "rows_removed_by_day": self.written.removed,
            "columns_dropped": self.dropped_columns,
            "text_cut": self.written.truncated,
            "raw_kept": self.raw_kept,
        }


def _request(start, end, options: dict | None) -> CollectRequest:
    try:
        start_ts, end_ts = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    except (ValueError, TypeError) as exc:
        raise ParameterError(f"collect dates must be YYYY-MM-DD, got start={start!r} end={end!r}") from exc
    if end_ts < start_ts:
        raise ParameterError(f"collect end {end_ts:%Y-%m-%d} is before start {start_ts:%Y-%m-%d}")
    return CollectRequest(start=start_ts, end=end_ts, options=dict(options or {}))


def declared_columns(options: dict) -> list[str]:
    """Extra columns a user declared through the ``columns`` option (targets that are not schema columns).

    ``columns`` maps their column names to ours, as a dict or as
    ``"Their Column:name,Other:other"`` text (see :mod:`pokewatch.data.sources.file`).
    """
    value = (options or {}).get("columns")
    if isinstance(value, dict):
        targets = [str(v) for v in value.values()]
    elif isinstance(value, str):
        targets = [pair.rsplit(":", 1)[1].strip() for pair in value.split(",") if ":" in pair]
    else:
        targets = []
    return [t for t in targets if t]


def _parsed(source_name: str, request: CollectRequest, raw: RawArchive) -> Iterable[pd.DataFrame]:
    source = get_source(source_name)
    chunks = getattr(source, "parse_chunks", None)
    return chunks(request, raw) if chunks is not None else (source.parse(request, raw),)


def _finish(source_name: str, request: CollectRequest, fetch: FetchReport, raw: RawArchive,
            run_dir: Path, store: PriceStore, min_completeness: float, started: float, *,
            replace_day: bool = False, keep_raw: bool = True) -> CollectResult:
    complete = fetch.completeness >= min_completeness
    declared = declared_columns(request.options)
    dropped: dict[str, None] = {}
    rejected, counts, keys = [], {}, []
    rows_valid, last_valid = 0, None
    written = WriteReport()
    for frame in _parsed(source_name, request, raw):
        # MALFORMED is validation's own marker (dropped from valid rows); a source may name its declared columns.
        kept, extra = stored_columns(frame.columns, [*declared, *frame.attrs.get("declared_columns", ()), MALFORMED])
        if extra:  # before validation, which would otherwise copy every one of them
            dropped.update(dict.fromkeys(extra))
            frame = frame.loc[:, kept] if kept else frame.iloc[:, :0]
        frame_declared = list(frame.attrs.get("declared_columns", ()))
        validation = validate_observations(_strings_from_codes(frame))
        del frame
        rows_valid += len(validation.valid)
        if len(validation.rejected):
            rejected.append(validation.rejected)
        for reason, n in validation.counts.items():
            counts[reason] = counts.get(reason, 0) + n
        if len(validation.valid):
            keys.append(validation.valid[SERIES_KEY].drop_duplicates())
        if complete and len(validation.valid):
            chunk = store.write_days(source_name, validation.valid, replace_day=replace_day,
                                     declared_columns=[*declared, *frame_declared])
            _add(written, chunk)
        last_valid = validation.valid
    if dropped:
        logger.warning("dropped %d column(s) of %s the store does not keep (not in the schema, not declared "
                       "with the columns option): %s%s", len(dropped), source_name, list(dropped)[:10],
                       " ..." if len(dropped) > 10 else "")
    rejected_rows = pd.concat(rejected, ignore_index=True) if rejected else pd.DataFrame()
    ordered_counts = {reason: counts[reason] for reason in sorted(counts, key=_reason_order)}
    prices = last_valid if last_valid is not None else pd.DataFrame()
    result = CollectResult(source_name, request, prices, ValidationResult(prices, rejected_rows, ordered_counts),
                           fetch, stored=written.stored, rows_valid=rows_valid, replace_day=replace_day,
                           written=written, dropped_columns=list(dropped), run_dir=run_dir,
                           series=len(pd.concat(keys).drop_duplicates()) if keys else 0)
    folder = RunFolder(run_dir)
    if not complete:
        result.seconds = time.perf_counter() - started
        atomic.write_json(folder.quality, result.quality_report(min_completeness))
        raise SourceError(
            f"source {source_name!r} returned {fetch.completeness:.0%} of {fetch.expected} item(s), below the "
            f"min_completeness of {min_completeness:.0%}; nothing was stored. Failures are listed in "
            f"{folder.quality}; the raw responses are kept in {raw.root} for a replay."
        )
    if rows_valid == 0:
        result.seconds = time.perf_counter() - started
        atomic.write_json(folder.quality, result.quality_report(min_completeness))
        why = f"all {len(rejected_rows)} row(s) were rejected ({ordered_counts})" if len(rejected_rows) \
            else "it returned no rows"
        raise SourceError(
            f"source {source_name!r} gave no valid row for {request.start:%Y-%m-%d}..{request.end:%Y-%m-%d}: "
            f"{why}; nothing was stored. See {folder.quality}; check the source's options (and, for the "
            "file source, that the file has rows in that window)."
        )
    if len(rejected_rows):
        atomic.write_csv(folder.rejected_rows, rejected_rows)
    atomic.write_parquet(folder.prices, prices[prices["date"] == request.end])
    if keep_raw:
        result.raw_kept = str(raw_archive.keep(raw, source_name, f"{request.end:%Y-%m-%d}"))
    result.seconds = time.perf_counter() - started
    atomic.write_json(folder.quality, result.quality_report(min_completeness))
    if result.rows_removed:
        logger.warning("replace_day removed %d stored row(s) of %s that this collect did not fetch: %s",
                       result.rows_removed, source_name, written.removed)
    logger.info("collected %s: %d valid rows, %d rejected, %.1fs", source_name, rows_valid, len(rejected_rows),
                result.seconds)
    return result


def _strings_from_codes(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with categorical string columns as the schema's ``string`` dtype.

    Arrow decodes a dictionary in one pass (pandas' ``astype("string")`` of a
    categorical goes through Python objects and takes seconds per million rows).
    """
    decoded = {}
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.CategoricalDtype) and pd.api.types.is_string_dtype(column.cat.categories):
            codes = column.cat.codes.to_numpy()
            indices = pa.array(codes, mask=codes < 0)
            values = pa.array(column.cat.categories.to_numpy(dtype=object), pa.large_string())
            decoded[name] = pd.arrays.ArrowStringArray(pa.DictionaryArray.from_arrays(indices, values)
                                                       .dictionary_decode())
    return frame.assign(**decoded) if decoded else frame


def _reason_order(reason: str) -> int:
    order = list(REJECT_REASONS)
    return order.index(reason) if reason in order else len(order)


def _add(total: WriteReport, chunk: WriteReport) -> None:
    total.rows.update(chunk.rows)
    total.stored.update(chunk.stored)
    total.removed.update(chunk.removed)
    total.unchanged.extend(chunk.unchanged)
    total.dropped_columns.extend(c for c in chunk.dropped_columns if c not in total.dropped_columns)
    for name, n in chunk.truncated.items():
        total.truncated[name] = total.truncated.get(name, 0) + n


def collect(source: str, start, end, run_dir: str | Path, *, options: dict | None = None,
            store: PriceStore | None = None, min_completeness: float = 0.9,
            replace_day: bool = False) -> CollectResult:
    """Collect every day in [start, end] from ``source`` into the store and the run folder.

    Args:
        source: a name from :data:`pokewatch.data.sources.SOURCES`.
        start, end: first and last trading day (equal for a daily run).
        run_dir: the run folder; raw responses go to ``raw/<source>/``, the quality
            report to ``quality.json``, the run day's rows to ``prices.parquet``.
        options: source-specific settings (never secrets).
        min_completeness: fail when fewer items than this share were fetched.
        replace_day: make each collected day hold exactly the rows fetched now,
            removing stored rows of those days that were not fetched again (the count
            is logged and reported as ``rows_removed``). By default fetched rows are
            merged in and every other stored row stays.

    Raises:
        ParameterError: bad dates, source or threshold.
        SourceError: the source failed below ``min_completeness``, or gave no valid
            row; nothing is stored and the raw data is kept.
    """
    if not 0.0 <= min_completeness <= 1.0:
        raise ParameterError(f"min_completeness must be between 0 and 1, got {min_completeness!r}")
    started = time.perf_counter()
    request = _request(start, end, options)
    run_dir = Path(run_dir)
    store = store or PriceStore.default()
    src = get_source(source)
    raw = RawArchive(RunFolder(run_dir).raw / source)
    raw.root.mkdir(parents=True, exist_ok=True)
    atomic.write_json(raw.root / "request.json", {
        "source": source, "start": f"{request.start:%Y-%m-%d}", "end": f"{request.end:%Y-%m-%d}",
        "options": request.options, "min_completeness": min_completeness,
    })
    fetch = src.fetch(request, raw)
    atomic.write_json(raw.root / "fetch_report.json", fetch.__dict__)
    return _finish(source, request, fetch, raw, run_dir, store, min_completeness, started, replace_day=replace_day)


def replay(run_dir: str | Path, source: str | None = None, *, store: PriceStore | None = None,
           replace_day: bool = False, out_dir: str | Path | None = None) -> CollectResult:
    """Re-parse raw responses (no network) and store the result again.

    ``run_dir`` is either a run folder (its ``raw/<source>/``) or a folder of raw
    responses kept by a successful collect (``$POKEWATCH_DATA_DIR/raw/<source>/<id>/``,
    see :func:`pokewatch.data.raw_archive.keep`), which outlives the run folders. The
    quality report goes to ``out_dir``: by default the run folder, or for a kept folder
    ``$POKEWATCH_DATA_DIR/collect-runs/replay-<source>-<id>``.

    Raises:
        SourceError: the folder holds no raw responses for ``source``.
    """
    run_dir = Path(run_dir)
    if raw_archive.is_kept(run_dir):
        raw = RawArchive(run_dir)
        spec = json.loads((raw.root / "request.json").read_text())
        if source is not None and source != spec.get("source"):
            raise SourceError(f"{run_dir} holds raw responses of source {spec.get('source')!r}, not {source!r}")
        source = spec["source"]
        out = Path(out_dir) if out_dir else config.data_dir() / "collect-runs" / f"replay-{source}-{run_dir.name}"
        keep_raw = False
    else:
        raw_root = RunFolder(run_dir).raw
        candidates = sorted(p.name for p in raw_root.iterdir() if p.is_dir()) if raw_root.exists() else []
        if source is None:
            if len(candidates) != 1:
                raise SourceError(f"{raw_root} holds raw responses for {candidates or 'no source'}; pass --source")
            source = candidates[0]
        raw = RawArchive(raw_root / source)
        if not (raw.root / "request.json").exists():
            raise SourceError(f"no raw responses for source {source!r} in {raw_root}; nothing to replay")
        spec = json.loads((raw.root / "request.json").read_text())
        out, keep_raw = Path(out_dir) if out_dir else run_dir, True
    out.mkdir(parents=True, exist_ok=True)
    fetch_path = raw.root / "fetch_report.json"
    fetch = FetchReport(**json.loads(fetch_path.read_text())) if fetch_path.exists() else FetchReport()
    request = _request(spec["start"], spec["end"], spec.get("options"))
    return _finish(source, request, fetch, raw, out, store or PriceStore.default(),
                   float(spec.get("min_completeness", 0.9)), time.perf_counter(), replace_day=replace_day,
                   keep_raw=keep_raw)


@dataclass(frozen=True)
class CollectWindow:
    """The days a collect will fetch, and why (shown in the notebook and the log)."""

    start: pd.Timestamp
    end: pd.Timestamp
    reason: str

    def __repr__(self) -> str:
        return f"collect {self.start:%Y-%m-%d}..{self.end:%Y-%m-%d}: {self.reason}"


def plan_window(source: str, run_date, *, history_days: int = 365, backfill_from: str = "",
                store: PriceStore | None = None, options: dict | None = None) -> CollectWindow:
    """Decide which days to collect for ``run_date``.

    An explicit ``backfill_from`` wins. Otherwise a source that can produce past
    days (the demo market, archives) catches up from the day after the last
    stored day, at most ``history_days`` back, so a first run gets a full history
    and a missed cron night is filled in. Other sources collect the run date only.

    Raises:
        ParameterError: ``backfill_from`` is after ``run_date`` or not a date.
    """
    end = pd.Timestamp(run_date).normalize()
    if backfill_from:
        try:
            start = pd.Timestamp(backfill_from).normalize()
        except ValueError:
            raise ParameterError(f"backfill_from must be YYYY-MM-DD, got {backfill_from!r}") from None
        if start > end:
            raise ParameterError(f"backfill_from {start:%Y-%m-%d} is after run_date {end:%Y-%m-%d}")
        return CollectWindow(start, end, f"backfill of {(end - start).days + 1} day(s) requested")
    if not get_source(source).can_backfill(options or {}):
        return CollectWindow(end, end, "daily collect of the run date")
    earliest = end - pd.Timedelta(days=history_days)
    stored = [d for d in (store or PriceStore.default()).dates(source) if earliest <= d < end]
    if not stored:
        return CollectWindow(earliest, end, f"no stored history yet: backfilling {history_days} days")
    start = max(stored) + pd.Timedelta(days=1)
    if start < end:
        return CollectWindow(start, end, f"catching up {(end - start).days + 1} day(s) since the last stored day")
    return CollectWindow(end, end, "daily collect of the run date")


def notebook_options(values) -> dict:
    """A source's options from the collect notebook's parameters (a mapping or the validated model).

    The one place that says which notebook parameter becomes which source option
    (``input_path`` is the file source's ``path``); the plan step validates with it too.
    """
    if hasattr(values, "model_dump"):
        values = values.model_dump()
    return source_options(values.get("source_options", ""), archives=values.get("archives"),
                          category=values.get("category"), watchlist=values.get("watchlist"),
                          path=values.get("input_path"), n_series=values.get("n_series"), seed=values.get("seed"))


def source_options(extra: str = "", **values) -> dict:
    """Options for a source: the values a user actually set, plus ``extra`` settings.

    ``extra`` carries source-specific settings the notebook has no parameter for, as
    ``name:value`` pairs separated by commas or semicolons (``columns:price>market_price;
    currency:EUR``) or as a JSON object. Empty strings and None are dropped.

    Raises:
        ParameterError: ``extra`` is neither JSON nor ``name:value`` pairs.
    """
    options = {k: v for k, v in values.items() if v not in ("", None)}
    text = (extra or "").strip()
    if not text:
        return options
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ParameterError(f"source_options is not valid JSON: {exc}") from None
    else:
        parsed = {}
        for item in filter(None, (part.strip() for part in text.replace(";", ",").split(","))):
            name, sep, value = item.partition(":")
            if not sep or not name.strip():
                raise ParameterError(f"source_options expects name:value pairs, got {item!r} in {text!r}")
            parsed[name.strip()] = value.strip()
    return {**options, **parsed}


def rejection_table(result: CollectResult) -> pd.DataFrame:
    """Rejected rows per reason, with what each reason means (empty when all rows passed)."""
    summary = result.validation.summary()["rejected_by_reason"]
    table = pd.DataFrame([{"reason": reason, "rows": info["count"], "meaning": info["meaning"]}
                          for reason, info in summary.items()], columns=["reason", "rows", "meaning"])
    failures = pd.DataFrame([{"reason": "fetch_failed", "rows": 1, "meaning": f"{f.get('item')}: {f.get('error')}"}
                             for f in result.fetch.failures], columns=["reason", "rows", "meaning"])
    return pd.concat([table, failures], ignore_index=True) if len(failures) else table
