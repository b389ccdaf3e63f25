"""The model being served, and switching it to a newer run without dropping a request.

The API serves the newest *readable* run: the model of ``runs/latest`` or, when that
model cannot be loaded (a truncated or garbage ``model.joblib``), the newest older
published run whose model loads; :attr:`ModelHolder.newest_unreadable` then says which
run was skipped and why, and ``/health`` reports it. :func:`candidate_runs` is the one
place that decides which runs may be served, in which order. Everything a request needs from a run
(the model, its run date, the card list) lives in one immutable :class:`LoadedRun`.
A request reads :attr:`ModelHolder.current` once and works on that object to the
end, so a reload is a single reference assignment: requests already in flight finish
on the run they started with, new ones get the new run, and the old run is freed
when its last request is done. Loading happens in a worker thread, off the event
loop, so traffic keeps flowing while a model is read from disk.

Every worker also checks ``runs/latest`` every ``reload_check_seconds``: ``POST
/reload`` reaches only one of several uvicorn workers, and the others follow within
that interval.

``model.joblib`` is a pickle: only serve run folders your own pipeline wrote.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from pokewatch.analysis import candidates
from pokewatch.run import runs
from pokewatch.run.folder import RunFolder
from pokewatch.errors import RunError
from pokewatch.core.model import FairValueModel

logger = logging.getLogger(__name__)

#: How often an empty holder (no good run yet) looks for one on request.
EMPTY_RETRY_SECONDS = 1.0
NO_RUN_YET = ("no good run yet: the runs folder has no 'latest' run; run the pipeline (make pipeline), "
              "then POST /reload")
#: Runs the fallback looks at, newest first, before it gives up (each failure is one quick load).
MAX_CANDIDATE_RUNS = 30
#: Days of /signals results kept per loaded run.
SIGNALS_CACHE_DAYS = 16
_CARD_COLUMNS = ["card_id", "name", "set_id", "set_name", "number", "rarity", "variant", "currency",
                 "category"]
_FLAG_COLUMNS = ["card_id", "name", "set_name", "category", "variant", "currency", "date", "market_price",
                 "fair_price", "deviation", "signal"]


class NoRunError(RunError):
    """No good run exists yet, so there is no model to serve."""


class NoReadableRunError(RunError):
    """Good runs exist, but not one of their models can be loaded."""


@dataclass(frozen=True)
class UnreadableRun:
    """A run that was skipped because its model could not be loaded.

    Attributes:
        run_dir: the run's folder.
        run_date: its run date from the manifest, when the manifest is readable.
        detail: why the model could not be loaded, and what to do.
    """

    run_dir: Path
    run_date: str | None
    detail: str

    def as_dict(self) -> dict:
        return {"run_date": self.run_date, "run": self.run_dir.name, "detail": self.detail}


def candidate_runs(runs_dir: Path) -> list[Path]:
    """The run folders the API may serve, best first: ``runs/latest``, then every older
    published run, newest first (at most :data:`MAX_CANDIDATE_RUNS`).

    Published runs dated after ``latest`` (a stray future run) are never candidates;
    which run is ``latest`` is :func:`pokewatch.run.runs.latest_run`'s decision.

    Raises:
        NoRunError: there is no ``latest`` run.
    """
    latest = runs.latest_run(runs_dir)
    if latest is None:
        raise NoRunError(NO_RUN_YET)
    folders = []
    for day in runs.published_dates(runs_dir):
        try:
            folders.append((day, runs.run_folder(day, runs_dir)))
        except RunError:   # unpublished between the listing and now
            continue
    latest_day = next((day for day, folder in folders if folder == latest), None)
    older = [folder for day, folder in reversed(folders)
             if folder != latest and (latest_day is None or day < latest_day)]
    return [latest, *older][:MAX_CANDIDATE_RUNS]


def _run_date_of(folder: Path) -> str | None:
    try:
        return runs.read_manifest(folder).get("run_date")
    except (RunError, ValueError, OSError):
        return None


def load_newest_readable(candidates: list[Path], current: LoadedRun | None = None
                         ) -> tuple[LoadedRun, list[UnreadableRun]]:
    """Load the first of ``candidates`` whose model loads (reusing ``current`` when it is that run).

    Args:
        candidates: run folders, best first (:func:`candidate_runs`).
        current: the run being served, so that it is not loaded a second time.

    Returns:
        The loaded run, and the better candidates that were skipped, best first.

    Raises:
        NoReadableRunError: no candidate's model loads; the message gives the newest's reason.
    """
    skipped: list[UnreadableRun] = []
    for folder in candidates:
        if current is not None and folder == current.run_dir:
            return current, skipped
        try:
            return LoadedRun.from_folder(folder), skipped
        except RunError as exc:
            skipped.append(UnreadableRun(folder, _run_date_of(folder), str(exc)))
    newest = skipped[0]
    others = (f"; the {len(skipped) - 1} older run(s) cannot be loaded either" if len(skipped) > 1
              else "; there is no older run to fall back to")
    raise NoReadableRunError(f"no run can be served: {newest.detail}{others}")


def _clean(value):
    """A JSON-safe scalar: NaN and missing become None, numpy types become Python ones."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, pd.Timestamp):
        return f"{value:%Y-%m-%d}"
    return value if isinstance(value, (str, int, bool)) else str(value)


@dataclass(frozen=True)
class LoadedRun:
    """One run's model and what the routes derive from it, never changed after loading."""

    model: FairValueModel
    run_dir: Path
    run_date: str
    manifest: dict
    loaded_at: float
    cards: list[dict]
    card_count: int
    _flags: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_folder(cls, run_dir: Path) -> LoadedRun:
        """Load the model and the manifest of one good run folder.

        Raises:
            RunError: the folder has no model, or the model cannot be read.
        """
        run_dir = Path(run_dir)
        model_path = RunFolder(run_dir).model
        if not model_path.exists():
            raise RunError(f"run {run_dir.name} has no {model_path.name}; re-run the pipeline for that date")
        try:
            model = joblib.load(model_path)
        except Exception as exc:
            raise RunError(f"{model_path.name} of run {run_dir.name} cannot be read "
                           f"({exc.__class__.__name__}); re-run the pipeline for that date") from exc
        if not isinstance(model, FairValueModel) or model.series is None:
            raise RunError(f"{model_path.name} of run {run_dir.name} is not a fitted FairValueModel")
        try:
            manifest = runs.read_manifest(run_dir)
        except (RunError, ValueError):
            manifest = {}
        frame = model.cards()
        columns = [c for c in _CARD_COLUMNS if c in frame.columns]
        cards = [{k: _clean(v) for k, v in row.items()}
                 for row in frame[columns].sort_values(["card_id", "variant", "currency"])
                 .to_dict("records")]
        return cls(model=model, run_dir=run_dir.resolve(),
                   run_date=str(manifest.get("run_date") or model.fitted_through),
                   manifest=manifest, loaded_at=time.time(), cards=cards,
                   card_count=int(frame["card_id"].nunique()))

    def flags(self, date=None) -> list[dict]:
        """The BUY and SELL rows of ``date`` (default: the model's latest day), JSON-ready, cached.

        The rows are in :func:`pokewatch.analysis.candidates.rank_flags` order, strongest first, as
        the report, the alerts and the CLI list them; filtering them keeps that order.

        Raises:
            UnknownDateError: ``date`` is outside the model's window.
        """
        key = None if date is None else str(date)
        rows = self._flags.get(key)
        if rows is None:
            frame = candidates.rank_flags(self.model.predict_all(date)).rename(columns={"fair_value": "fair_price"})
            frame = frame.assign(signal=frame["signal"].astype(str))
            columns = [c for c in _FLAG_COLUMNS if c in frame.columns]
            rows = [{k: _clean(v) for k, v in row.items()} for row in frame[columns].to_dict("records")]
            if len(self._flags) >= SIGNALS_CACHE_DAYS:
                self._flags.clear()
            self._flags[key] = rows
        return rows


class ModelHolder:
    """Holds the :class:`LoadedRun` being served and swaps it atomically.

    Args:
        runs_dir: the runs folder whose ``latest`` link is served.
        metrics: :class:`pokewatch.api.metrics.ApiMetrics` to report reloads to, or None.
    """

    def __init__(self, runs_dir: Path, metrics=None) -> None:
        self.runs_dir = Path(runs_dir)
        self.metrics = metrics
        self.current: LoadedRun | None = None
        self._lock: asyncio.Lock | None = None
        self._last_empty_check = float("-inf")
        self._last_error: RunError | None = None
        self._seen_newest: Path | None = None   # the best candidate at the last look (polling skips it)
        #: The newest run, when its model could not be loaded and an older run (or none) is served.
        self.newest_unreadable: UnreadableRun | None = None

    def _note(self, newest: Path, skipped: list[UnreadableRun]) -> None:
        """Remember the best candidate and, when it was skipped, why (logged once per run)."""
        first_look = self._seen_newest != newest
        self._seen_newest = newest
        self.newest_unreadable = skipped[0] if skipped and skipped[0].run_dir == newest else None
        if self.metrics is not None:
            self.metrics.newest_unreadable.set(1 if self.newest_unreadable else 0)
        if self.newest_unreadable is not None and first_look:
            logger.warning("newest run %s cannot be served: %s", newest.name, self.newest_unreadable.detail)

    def _install(self, loaded: LoadedRun, outcome: str) -> None:
        self.current = loaded   # one assignment: in-flight requests keep their own reference
        if self.metrics is not None:
            self.metrics.reloads.labels(outcome).inc()
            self.metrics.model_run.set(pd.Timestamp(loaded.run_date).timestamp())
            self.metrics.model_cards.set(len(loaded.cards))
        logger.info("serving run %s (%s, %d series)", loaded.run_date, loaded.run_dir.name,
                    len(loaded.cards))

    def _switch(self, candidates: list[Path], outcome: str) -> LoadedRun:
        """Serve the newest readable of ``candidates`` (blocking: run it in a thread)."""
        try:
            loaded, skipped = load_newest_readable(candidates, self.current)
        except NoReadableRunError as exc:
            self._last_error = exc
            self._note(candidates[0], [UnreadableRun(candidates[0], _run_date_of(candidates[0]), str(exc))])
            if self.metrics is not None:
                self.metrics.reloads.labels("failed").inc()
            raise
        self._last_error = None
        self._note(candidates[0], skipped)
        if loaded is not self.current:
            self._install(loaded, outcome)
        return loaded

    def load_now(self) -> LoadedRun:
        """Serve the newest readable run now, synchronously (start-up).

        Raises:
            NoRunError: no good run exists.
            NoReadableRunError: no good run's model can be loaded.
        """
        try:
            return self._switch(candidate_runs(self.runs_dir), "loaded")
        except RunError as exc:
            self._last_error = exc
            raise

    async def reload(self, only_if_changed: bool = False) -> tuple[LoadedRun | None, LoadedRun | None]:
        """Switch to the newest readable run; returns (previous, now serving).

        When the newest run's model cannot be loaded, the newest older run whose model
        loads is served instead (possibly the one already served) and
        :attr:`newest_unreadable` says why. With ``only_if_changed`` (the poller),
        nothing is loaded while the best candidate is the one seen last time.

        Raises:
            NoRunError: no good run exists.
            NoReadableRunError: no good run's model can be loaded; whatever was served stays served.
        """
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            previous = self.current
            candidates = await asyncio.to_thread(candidate_runs, self.runs_dir)
            if only_if_changed and candidates[0] == self._seen_newest:
                return previous, previous
            loaded = await asyncio.to_thread(self._switch, candidates, "reloaded")
            return previous, loaded

    async def get(self) -> LoadedRun:
        """The run to answer with; before the first servable run, look for one (at most once a second).

        Raises:
            NoRunError: still no good run.
            NoReadableRunError: good runs exist, but none can be loaded.
        """
        current = self.current
        if current is not None:
            return current
        now = time.monotonic()
        if now - self._last_empty_check < EMPTY_RETRY_SECONDS:
            raise self._last_error or NoRunError(NO_RUN_YET)
        self._last_empty_check = now
        try:
            _, loaded = await self.reload()
        except RunError as exc:
            self._last_error = exc
            raise
        return loaded

    async def follow_latest(self, interval: float) -> None:
        """Forever: every ``interval`` seconds, switch if ``runs/latest`` moved (a background task)."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reload(only_if_changed=True)
            except NoRunError:
                pass
            except RunError as exc:
                logger.warning("no run can be loaded, keeping what is served: %s", exc)
            except Exception:   # the poller must outlive any surprise (a full disk, a bug)
                logger.exception("checking runs/latest failed; will retry in %s s", interval)
