"""What a pipeline notebook needs from its run folder, so notebook cells stay one-liners.

A notebook opens a :class:`RunContext` from its parameters. Under the pipeline
``run_dir`` is the attempt folder the script created; in JupyterLab it is empty
and the context uses ``runs/interactive/<date>/``, shared by the three notebooks
and never published, so exploring cannot disturb the scheduled runs.
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from pokewatch import atomic, config, params, runs
from pokewatch.caching import CachedResult
from pokewatch.errors import RunError
from pokewatch.model import FairValueModel

logger = logging.getLogger(__name__)


def _configure_logging() -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_pokewatch", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        handler._pokewatch = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    logging.getLogger("pokewatch").setLevel(logging.INFO)


@dataclass
class StepRecord:
    """Collects cache hits and facts during a step, written to the manifest at its end."""

    cache_hits: dict = field(default_factory=dict)
    facts: dict = field(default_factory=dict)

    def cached(self, name: str, result: CachedResult):
        """Note whether ``result`` came from the cache and return its value."""
        self.cache_hits[name] = result.hit
        return result.value


@dataclass
class RunContext:
    notebook: str
    run_date: str
    dir: Path

    @classmethod
    def open(cls, notebook: str, run_date: str = "today", run_dir: str = "", **parameters) -> RunContext:
        """Resolve the date and folder, validate parameters, and record them in the manifest.

        Raises:
            ParameterError: a parameter is out of range (the message names it).
        """
        _configure_logging()
        resolved = params.run_date("run_date", run_date)
        for name, value in parameters.items():
            params.check(name, value)
        folder = Path(run_dir) if run_dir else config.runs_dir() / "interactive" / resolved
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "plots").mkdir(exist_ok=True)
        if not (folder / runs.MANIFEST).exists():
            atomic.write_json(folder / runs.MANIFEST, {"run_date": resolved, "status": "interactive",
                                                       "git_commit": runs.git_commit(), "steps": {}})
        runs.update_manifest(folder, parameters={notebook: {"run_date": resolved, **parameters}})
        logger.info("%s notebook for %s writing to %s", notebook, resolved, folder)
        return cls(notebook, resolved, folder)

    def __repr__(self) -> str:
        return f"{self.notebook} run for {self.run_date} in {self.dir}"

    @property
    def date(self) -> pd.Timestamp:
        return pd.Timestamp(self.run_date)

    def days_before(self, days: int) -> pd.Timestamp:
        return self.date - pd.Timedelta(days=int(days))

    def path(self, name: str) -> Path:
        return self.dir / name

    @contextmanager
    def step(self, name: str):
        """Time a step and record its duration and cache hits in the manifest."""
        record = StepRecord()
        started = time.perf_counter()
        yield record
        seconds = time.perf_counter() - started
        runs.record_step(self.dir, name, seconds, record.cache_hits, **record.facts)
        hits = [k for k, v in record.cache_hits.items() if v]
        logger.info("step %s took %.2fs%s", name, seconds, f" (cache hits: {', '.join(hits)})" if hits else "")

    # -- model -----------------------------------------------------------------
    def save_model(self, model: FairValueModel, origin: str) -> Path:
        path = atomic.dump_joblib(self.path("model.joblib"), model)
        runs.update_manifest(self.dir, model={
            "trained_on": model.trained_on, "method": model.method, "window": model.window,
            "fitted_through": model.fitted_through, "origin": origin,
            "reason": model.selection.get("reason"),
        })
        return path

    def load_model(self) -> tuple[FairValueModel | None, str]:
        """This run's model if train ran in it, else the newest model trained on or before the run date.

        Returns ``(None, reason)`` when there is none yet.
        """
        own = self.path("model.joblib")
        if own.exists():
            return joblib.load(own), f"trained in this run ({self.dir.name})"
        found = runs.find_model(self.run_date)
        if found is None:
            return None, f"no model trained on or before {self.run_date}"
        model = joblib.load(found)
        return model, f"trained on {model.trained_on} (run {found.parent.name})"

    # -- outputs -----------------------------------------------------------------
    def write_csv(self, name: str, frame: pd.DataFrame) -> Path:
        return atomic.write_csv(self.path(name), frame)

    def write_json(self, name: str, obj) -> Path:
        return atomic.write_json(self.path(name), _jsonable(obj))

    def plot_path(self, name: str) -> Path:
        return self.dir / "plots" / name


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, pd.Timestamp):
        return f"{obj:%Y-%m-%d}"
    return obj


def require_model(model: FairValueModel | None, reason: str) -> FairValueModel:
    if model is None:
        raise RunError(f"{reason}; run the train notebook first (scripts/run_pipeline.sh trains automatically "
                       "when no model exists)")
    return model
