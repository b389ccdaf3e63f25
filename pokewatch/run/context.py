"""What a pipeline notebook needs from its run folder, so notebook cells stay one-liners.

A notebook opens a :class:`RunContext` from its parameters. Under the pipeline
``run_dir`` is the attempt folder the script created; in JupyterLab it is empty
and the context uses ``runs/interactive/<date>/``, shared by the three notebooks
and never published, so exploring cannot disturb the scheduled runs.

The parameters are validated by the notebook's model in :mod:`pokewatch.run.parameters`
and every one of them is recorded in the manifest, including any the notebook did
not pass to :meth:`RunContext.open` by name.

Opening a context sets a kernel up: logging in :mod:`pokewatch.logs`' ``kernel`` mode
(records as plain text in the cell; progress lines to the cron log under the pipeline)
and returned figures shown inline (:func:`pokewatch.run.display.show_figures_inline`).
"""
from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pokewatch import atomic, config
from pokewatch.run import model_file, runs
from pokewatch import logs
from pokewatch.run import display
from pokewatch.run.caching import CachedResult
from pokewatch.run.folder import INTERACTIVE, RunFolder
from pokewatch.errors import RunError

if TYPE_CHECKING:   # the model pulls in numba's kernels, which the collect notebook never needs
    from pokewatch.core.model import FairValueModel

logger = logging.getLogger(__name__)


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
    #: The validated parameters (a model from :mod:`pokewatch.run.parameters`); paths are absolute.
    parameters: object = None

    @classmethod
    def open(cls, notebook: str, run_date: str = "today", run_dir: str = "", **parameters) -> RunContext:
        """Resolve the date and folder, validate parameters, and record all of them in the manifest.

        Parameters of the notebook not passed here are read from the calling notebook's
        namespace (where papermill injected them), so the manifest holds every one.

        Raises:
            ParameterError: a parameter is out of range (the message names it).
        """
        caller = sys._getframe(1).f_globals
        namespace = caller if "get_ipython" in caller else {}
        values = {**_declared(notebook, namespace), **parameters, "run_date": run_date, "run_dir": run_dir}
        return cls._open(notebook, values)

    @classmethod
    def from_parameters(cls, notebook: str, namespace: Mapping) -> RunContext:
        """Open the context from every parameter ``notebook`` declares, read from ``namespace``.

        ``RunContext.from_parameters("evaluate", globals())`` in a notebook, so its
        parameters are listed once, in the parameters cell. Names missing from the
        namespace take their declared default.

        Raises:
            ParameterError: a parameter is out of range (the message names it).
        """
        return cls._open(notebook, _declared(notebook, namespace))

    @classmethod
    def _open(cls, notebook: str, values: Mapping) -> RunContext:
        from pokewatch.run import parameters  # noqa: PLC0415 - pydantic, only when a notebook opens

        logs.configure("kernel")
        display.show_figures_inline()
        checked = parameters.validate(notebook, values, bases=(Path.cwd(), config.PROJECT_ROOT))
        resolved = checked.run_date
        folder = Path(checked.run_dir) if checked.run_dir else config.runs_dir() / INTERACTIVE / resolved
        RunFolder(folder).plots.mkdir(parents=True, exist_ok=True)
        if not RunFolder(folder).manifest.exists():
            runs.update_manifest(folder, run_date=resolved, status="interactive", git_commit=runs.git_commit(),
                                 steps={})
        runs.update_manifest(folder, parameters={notebook: checked.recorded()})
        logger.info("%s notebook for %s writing to %s", notebook, resolved, folder)
        return cls(notebook, resolved, folder, checked)

    def __repr__(self) -> str:
        return f"{self.notebook} run for {self.run_date} in {self.dir}"

    @property
    def date(self) -> pd.Timestamp:
        return pd.Timestamp(self.run_date)

    def days_before(self, days: int) -> pd.Timestamp:
        return self.date - pd.Timedelta(days=int(days))

    @property
    def folder(self) -> RunFolder:
        """The run's files by what they hold (``ctx.folder.signals``): no notebook spells a file name."""
        return RunFolder(self.dir)

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
        path = model_file.write(model_file.path_in(self.dir), model)
        self._record_model(model, origin)
        return path

    @contextmanager
    def saving_model(self, model: FairValueModel, origin: str):
        """Save ``model`` (as :meth:`save_model`) while the block runs; the block's end waits for it.

        Why: the model file's deflate (0.4 s at 45,000 series) runs in zlib, which lets go
        of the GIL, so it takes the other core while the block writes the CSV tables,
        which hold the GIL. The manifest is updated after the block, in this thread, so
        its one writer is never two. A failed write raises at the block's end; like
        :meth:`save_model` it leaves the previous file in place.
        """
        with ThreadPoolExecutor(1, thread_name_prefix="save-model") as pool:
            writing = pool.submit(model_file.write, model_file.path_in(self.dir), model)
            try:
                yield
            finally:
                writing.result()
        self._record_model(model, origin)

    def _record_model(self, model: FairValueModel, origin: str) -> None:
        runs.update_manifest(self.dir, model={
            "trained_on": model.trained_on, "method": model.method, "window": model.window,
            "fitted_through": model.fitted_through, "origin": origin,
            "reason": model.selection.get("reason"),
        })

    def load_model(self, fitted: bool = True) -> tuple[FairValueModel | None, str]:
        """This run's model if train ran in it, else the newest model trained on or before the run date.

        Returns ``(None, reason)`` when there is none yet. ``fitted=False`` reads only its
        rule and settings (:func:`pokewatch.run.model_file.read`).

        Raises:
            RunError: the model cannot be read (the message names the run and what to do).
        """
        own = model_file.path_in(self.dir)
        if own.exists():
            return model_file.read(own, fitted), f"trained in this run ({self.dir.name})"
        found = runs.find_model(self.run_date, source=getattr(self.parameters, "source", None))
        if found is None:
            return None, f"no model trained on or before {self.run_date}"
        model = model_file.read(found, fitted)
        return model, f"trained on {model.trained_on} (run {found.parent.name})"

    # -- outputs -----------------------------------------------------------------
    def write_csv(self, path: Path, frame: pd.DataFrame) -> Path:
        """Write ``frame`` to ``path``, a file of :attr:`folder`, atomically."""
        return atomic.write_csv(self._own(path), frame)

    def write_json(self, path: Path, obj) -> Path:
        """Write ``obj`` (numpy scalars, timestamps and NaN made JSON-safe) to ``path``, a file of :attr:`folder`."""
        return atomic.write_json(self._own(path), _jsonable(obj))

    def _own(self, path: Path) -> Path:
        if Path(path).parent != self.dir:
            raise RunError(f"{path} is not a file of this run's folder {self.dir}; "
                           "name it through ctx.folder (for example ctx.folder.signals)")
        return Path(path)


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


def _declared(notebook: str, namespace: Mapping) -> dict:
    """The values in ``namespace`` of the parameters ``notebook`` declares."""
    from pokewatch.run import parameters  # noqa: PLC0415

    return {name: namespace[name] for name in parameters.model_of(notebook).model_fields if name in namespace}


def require_model(model: FairValueModel | None, reason: str) -> FairValueModel:
    if model is None:
        raise RunError(f"{reason}; run the train notebook first (scripts/run_pipeline.sh trains automatically "
                       "when no model exists)")
    return model
