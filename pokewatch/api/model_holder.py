"""The model being served, and switching it to a newer run without dropping a request.

The API serves the model of ``runs/latest``. Everything a request needs from a run
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

from pokewatch import runs
from pokewatch.errors import RunError
from pokewatch.model import FairValueModel

logger = logging.getLogger(__name__)

#: How often an empty holder (no good run yet) looks for one on request.
EMPTY_RETRY_SECONDS = 1.0
NO_RUN_YET = ("no good run yet: the runs folder has no 'latest' run; run the pipeline (make pipeline), "
              "then POST /reload")
#: Days of /signals results kept per loaded run.
SIGNALS_CACHE_DAYS = 16
_CARD_COLUMNS = ["card_id", "name", "set_id", "set_name", "number", "rarity", "variant", "currency",
                 "category"]
_FLAG_COLUMNS = ["card_id", "name", "set_name", "category", "variant", "currency", "date", "market_price",
                 "fair_price", "deviation", "signal"]


class NoRunError(RunError):
    """No good run exists yet, so there is no model to serve."""


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
        """Load ``model.joblib`` and the manifest of one good run folder.

        Raises:
            RunError: the folder has no model, or the model cannot be read.
        """
        run_dir = Path(run_dir)
        model_path = run_dir / "model.joblib"
        if not model_path.exists():
            raise RunError(f"run {run_dir.name} has no model.joblib; re-run the pipeline for that date")
        try:
            model = joblib.load(model_path)
        except Exception as exc:
            raise RunError(f"model.joblib of run {run_dir.name} cannot be read "
                           f"({exc.__class__.__name__}); re-run the pipeline for that date") from exc
        if not isinstance(model, FairValueModel) or model.series is None:
            raise RunError(f"model.joblib of run {run_dir.name} is not a fitted FairValueModel")
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

        Raises:
            UnknownDateError: ``date`` is outside the model's window.
        """
        key = None if date is None else str(date)
        rows = self._flags.get(key)
        if rows is None:
            frame = self.model.predict_all(date)
            frame = frame[frame["signal"].isin(["BUY", "SELL"])].rename(columns={"fair_value": "fair_price"})
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
        self._unservable: Path | None = None   # newest run that failed to load, not retried by polling

    def _latest(self) -> Path:
        folder = runs.latest_run(self.runs_dir)
        if folder is None:
            raise NoRunError(NO_RUN_YET)
        return folder

    def _install(self, loaded: LoadedRun, outcome: str) -> None:
        self.current = loaded   # one assignment: in-flight requests keep their own reference
        if self.metrics is not None:
            self.metrics.reloads.labels(outcome).inc()
            self.metrics.model_run.set(pd.Timestamp(loaded.run_date).timestamp())
            self.metrics.model_cards.set(len(loaded.cards))
        logger.info("serving run %s (%s, %d series)", loaded.run_date, loaded.run_dir.name,
                    len(loaded.cards))

    def load_now(self) -> LoadedRun:
        """Load ``runs/latest`` synchronously (start-up); raises NoRunError/RunError."""
        loaded = LoadedRun.from_folder(self._latest())
        self._install(loaded, "loaded")
        return loaded

    async def reload(self, only_if_changed: bool = False) -> tuple[LoadedRun | None, LoadedRun | None]:
        """Switch to the newest good run; returns (previous, now serving).

        With ``only_if_changed`` (the poller), a run already served or already found
        unservable is not loaded again.

        Raises:
            NoRunError: no good run exists.
            RunError: the newest run's model cannot be read; the previous run stays served.
        """
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            previous = self.current
            folder = await asyncio.to_thread(self._latest)
            unchanged = folder == self._unservable or (previous is not None and folder == previous.run_dir)
            if only_if_changed and unchanged:
                return previous, previous
            try:
                loaded = await asyncio.to_thread(LoadedRun.from_folder, folder)
            except RunError:
                self._unservable = folder
                if self.metrics is not None:
                    self.metrics.reloads.labels("failed").inc()
                raise
            self._unservable = None
            self._install(loaded, "reloaded")
            return previous, loaded

    async def get(self) -> LoadedRun:
        """The run to answer with; before the first good run, look for one (at most once a second).

        Raises:
            NoRunError: still no good run.
        """
        current = self.current
        if current is not None:
            return current
        now = time.monotonic()
        if now - self._last_empty_check < EMPTY_RETRY_SECONDS:
            raise NoRunError(NO_RUN_YET)
        self._last_empty_check = now
        _, loaded = await self.reload()
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
                logger.warning("newest run cannot be served, keeping the current one: %s", exc)
            except Exception:   # the poller must outlive any surprise (a full disk, a bug)
                logger.exception("checking runs/latest failed; will retry in %s s", interval)
