"""The collect step: fetch raw responses, parse, validate, store, report quality.

This is the only place where a source, the raw archive, validation and the store
meet, so every source gets the same guarantees: raw responses are on disk before
parsing, invalid rows are counted with reasons instead of crashing the run, a day is
replaced rather than appended, and the run fails only when too little came back.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pokewatch import atomic
from pokewatch.errors import ParameterError, SourceError
from pokewatch.raw_archive import RawArchive
from pokewatch.schema import ValidationResult, validate_observations
from pokewatch.sources import CollectRequest, FetchReport, get_source
from pokewatch.store import PriceStore

logger = logging.getLogger(__name__)

QUALITY_FILE = "quality.json"
REJECTED_FILE = "rejected_rows.csv"
PRICES_FILE = "prices.parquet"


@dataclass
class CollectResult:
    """Outcome of one collect: valid rows, the validation and fetch reports, timings."""

    source: str
    request: CollectRequest
    prices: pd.DataFrame
    validation: ValidationResult
    fetch: FetchReport
    stored: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def quality_report(self, min_completeness: float) -> dict:
        return {
            "source": self.source,
            "start": f"{self.request.start:%Y-%m-%d}",
            "end": f"{self.request.end:%Y-%m-%d}",
            "completeness": round(self.fetch.completeness, 4),
            "min_completeness": min_completeness,
            "items_expected": self.fetch.expected,
            "fetch_failures": self.fetch.failures,
            "notes": self.fetch.notes,
            "validation": self.validation.summary(),
            "series": int(self.prices[["card_id", "variant", "currency"]].drop_duplicates().shape[0])
            if not self.prices.empty else 0,
            "days_stored": self.stored,
        }


def _request(start, end, options: dict | None) -> CollectRequest:
    try:
        start_ts, end_ts = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    except (ValueError, TypeError) as exc:
        raise ParameterError(f"collect dates must be YYYY-MM-DD, got start={start!r} end={end!r}") from exc
    if end_ts < start_ts:
        raise ParameterError(f"collect end {end_ts:%Y-%m-%d} is before start {start_ts:%Y-%m-%d}")
    return CollectRequest(start=start_ts, end=end_ts, options=dict(options or {}))


def _finish(source_name: str, request: CollectRequest, fetch: FetchReport, raw: RawArchive,
            run_dir: Path, store: PriceStore, min_completeness: float, started: float) -> CollectResult:
    frame = get_source(source_name).parse(request, raw)
    validation = validate_observations(frame)
    result = CollectResult(source_name, request, validation.valid, validation, fetch)
    if fetch.completeness < min_completeness:
        result.seconds = time.perf_counter() - started
        atomic.write_json(run_dir / QUALITY_FILE, result.quality_report(min_completeness))
        raise SourceError(
            f"source {source_name!r} returned {fetch.completeness:.0%} of {fetch.expected} item(s), below the "
            f"min_completeness of {min_completeness:.0%}; nothing was stored. Failures are listed in "
            f"{run_dir / QUALITY_FILE}; the raw responses are kept in {raw.root} for a replay."
        )
    result.stored = store.write_days(source_name, validation.valid)
    if not validation.rejected.empty:
        atomic.write_csv(run_dir / REJECTED_FILE, validation.rejected)
    day = validation.valid[validation.valid["date"] == request.end]
    atomic.write_parquet(run_dir / PRICES_FILE, day)
    result.seconds = time.perf_counter() - started
    atomic.write_json(run_dir / QUALITY_FILE, result.quality_report(min_completeness))
    logger.info("collected %s: %d valid rows, %d rejected, %.1fs", source_name, len(validation.valid),
                len(validation.rejected), result.seconds)
    return result


def collect(source: str, start, end, run_dir: str | Path, *, options: dict | None = None,
            store: PriceStore | None = None, min_completeness: float = 0.9) -> CollectResult:
    """Collect every day in [start, end] from ``source`` into the store and the run folder.

    Args:
        source: a name from :data:`pokewatch.sources.SOURCES`.
        start, end: first and last trading day (equal for a daily run).
        run_dir: the run folder; raw responses go to ``raw/<source>/``, the quality
            report to ``quality.json``, the run day's rows to ``prices.parquet``.
        options: source-specific settings (never secrets).
        min_completeness: fail when fewer items than this share were fetched.

    Raises:
        ParameterError: bad dates, source or threshold.
        SourceError: the source failed below ``min_completeness``; raw data is kept.
    """
    if not 0.0 <= min_completeness <= 1.0:
        raise ParameterError(f"min_completeness must be between 0 and 1, got {min_completeness!r}")
    started = time.perf_counter()
    request = _request(start, end, options)
    run_dir = Path(run_dir)
    store = store or PriceStore.default()
    src = get_source(source)
    raw = RawArchive(run_dir / "raw" / source)
    raw.root.mkdir(parents=True, exist_ok=True)
    atomic.write_json(raw.root / "request.json", {
        "source": source, "start": f"{request.start:%Y-%m-%d}", "end": f"{request.end:%Y-%m-%d}",
        "options": request.options, "min_completeness": min_completeness,
    })
    fetch = src.fetch(request, raw)
    atomic.write_json(raw.root / "fetch_report.json", fetch.__dict__)
    return _finish(source, request, fetch, raw, run_dir, store, min_completeness, started)


def replay(run_dir: str | Path, source: str | None = None, *, store: PriceStore | None = None) -> CollectResult:
    """Re-parse a past run's raw responses (no network) and store the result again.

    Raises:
        SourceError: the run folder holds no raw responses for ``source``.
    """
    run_dir = Path(run_dir)
    raw_root = run_dir / "raw"
    candidates = sorted(p.name for p in raw_root.iterdir() if p.is_dir()) if raw_root.exists() else []
    if source is None:
        if len(candidates) != 1:
            raise SourceError(f"{raw_root} holds raw responses for {candidates or 'no source'}; pass --source")
        source = candidates[0]
    raw = RawArchive(raw_root / source)
    if not (raw.root / "request.json").exists():
        raise SourceError(f"no raw responses for source {source!r} in {raw_root}; nothing to replay")
    spec = json.loads((raw.root / "request.json").read_text())
    fetch_path = raw.root / "fetch_report.json"
    fetch = FetchReport(**json.loads(fetch_path.read_text())) if fetch_path.exists() else FetchReport()
    request = _request(spec["start"], spec["end"], spec.get("options"))
    return _finish(source, request, fetch, raw, run_dir, store or PriceStore.default(),
                   float(spec.get("min_completeness", 0.9)), time.perf_counter())


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
