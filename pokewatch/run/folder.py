"""The layout of a run folder: every file a run writes, named in this module and nowhere else.

A run folder (an attempt ``runs/attempts/<date>T<time>-<pid>/``, published as
``runs/<date>``; or ``runs/interactive/<date>/`` in JupyterLab) is the immutable
record of one trading day. The pipeline, the notebooks, the CLI, the API and the
report all read and write it, so if each spelled a file name itself, renaming
a file (or finding who reads it) would mean a search through the whole project.
Instead they ask a :class:`RunFolder` for the path::

    folder = RunFolder(run_dir)
    folder.signals            # <run_dir>/signals.csv
    folder.notebook("train")  # <run_dir>/train.ipynb
    RunFolder.signals.name    # its bare name, for messages and relative links

The names of the runs root's own entries (``attempts/``, ``latest``, ``index.html``)
are here too. This module imports nothing but :mod:`pathlib`, so the pipeline's
helper commands and ``pokewatch runs`` (:mod:`pokewatch.analysis.history`) use it
before pandas is ever loaded.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import overload

#: The runs root's entries: every attempt's folder, the link to the newest good run,
#: the notebooks' own folder in JupyterLab, and the page listing every attempt.
ATTEMPTS = "attempts"
LATEST = "latest"
INTERACTIVE = "interactive"
INDEX = "index.html"


class Entry:
    """One file or folder of a run: its name and what it holds.

    Read from a :class:`RunFolder` it is that folder's path (``RunFolder(d).signals``);
    read from the class it is itself (``RunFolder.signals.name``).
    """

    def __init__(self, name: str, holds: str) -> None:
        self.name = name
        self.holds = holds
        self.attribute = ""

    def __set_name__(self, owner: type, attribute: str) -> None:
        self.attribute = attribute

    @overload
    def __get__(self, folder: None, owner: type) -> Entry: ...
    @overload
    def __get__(self, folder: RunFolder, owner: type) -> Path: ...
    def __get__(self, folder, owner=None):
        return self if folder is None else folder.path / self.name

    def __repr__(self) -> str:
        return f"Entry({self.name!r}: {self.holds})"


@dataclass(frozen=True)
class RunFolder:
    """The files of one run, by what they hold (the table below is the only place a name is spelled).

    Attributes:
        path: the run folder (absolute or relative: a relative one gives relative paths,
            as the runs index links them).
    """

    path: Path

    # -- the record: written when the attempt starts and at every step ---------------------------------
    manifest = Entry("manifest.json", "the run's record: parameters, steps, status (pokewatch.run.manifest)")
    params = Entry("params", "folder: the papermill parameters of each notebook, as the pipeline injected them")
    logs = Entry("logs", "folder: each step's full papermill and kernel output")
    # -- collect ---------------------------------------------------------------------------------------
    raw = Entry("raw", "folder: the source's raw responses, one subfolder per source, kept for a replay")
    prices = Entry("prices.parquet", "the run day's valid rows, as stored")
    quality = Entry("quality.json", "completeness, fetch failures and rejections of the collect")
    rejected_rows = Entry("rejected_rows.csv", "rows validation rejected, with the reason")
    # -- train and evaluate ----------------------------------------------------------------------------
    model = Entry("model.npz", "the fitted FairValueModel the API serves: arrays plus JSON (pokewatch.run.model_file)")
    old_model = Entry("model.joblib", "what runs before model.npz held: a pickle, refused and never loaded")
    train_candidates = Entry("train_candidates.csv", "every rule train compared, in-sample")
    signals = Entry("signals.csv", "every card's fair value, deviation and signal on the run date")
    track_record = Entry("track_record.csv", "the out-of-sample walk-forward flags and what followed them")
    metrics = Entry("metrics.json", "the rule, its selection and the track record's figures "
                                    "(pokewatch.core.walkforward.run_metrics)")
    plots = Entry("plots", "folder: the figures, as PNG")
    # -- the collector's portfolio (evaluate, when a portfolio file is configured) ---------------------
    portfolio = Entry("portfolio.csv", "one row per lot, valued at the run's prices")
    portfolio_value = Entry("portfolio_value.csv", "the portfolio's value per day")
    portfolio_summary = Entry("portfolio.json", "the portfolio's totals, movers and notes")
    portfolio_rejected = Entry("portfolio_rejected.csv", "portfolio rows skipped, with the reason")
    # -- finish ----------------------------------------------------------------------------------------
    report = Entry("report.html", "the evaluate notebook rendered for readers, code hidden")

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def __fspath__(self) -> str:
        return str(self.path)

    def notebook(self, step: str) -> Path:
        """The executed notebook of ``step`` (``collect``, ``train``, ``evaluate``)."""
        return self.path / f"{step}.ipynb"

    def notebook_page(self, step: str) -> Path:
        """The executed notebook of ``step`` rendered as a web page, code included."""
        return self.path / f"{step}.html"

    def log(self, step: str) -> Path:
        """The full output of ``step``."""
        return self.logs / f"{step}.log"

    def parameters_file(self, notebook: str) -> Path:
        """The papermill parameters file the pipeline injects into ``notebook``."""
        return self.params / f"{notebook}.yaml"

    def plot(self, name: str) -> Path:
        """The figure ``name`` (``top_cards``, ``portfolio_value``, ...) as a PNG in :attr:`plots`."""
        return self.plots / f"{name}.png"

    @classmethod
    def entries(cls) -> list[Entry]:
        """Every named file and folder of a run, in the order of the table."""
        return [value for value in vars(cls).values() if isinstance(value, Entry)]


#: What a pruned attempt keeps: its record, and what the runs index shows of it.
KEPT_WHEN_PRUNED = (RunFolder.manifest.name, RunFolder.metrics.name, RunFolder.quality.name)
