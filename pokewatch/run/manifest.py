"""The fields of ``manifest.json``, a run's record, as types: what each writer may put there.

Six modules write to the manifest (the run's life in :mod:`pokewatch.run.runs`, the
notebooks' parameters, steps and model through :mod:`pokewatch.run.context`, training
and the report through :mod:`pokewatch.run.helpers`, the portfolio and the alert from
:mod:`pokewatch.analysis`) and as many read it. The types below are the one list of
what it holds; every write goes through :func:`pokewatch.run.runs.update_manifest`,
which merges the fields atomically and refuses a field or status not declared here,
so a typo fails at the writer instead of leaving a field no reader looks for.

The status of an attempt (:data:`STATUSES`):

* ``running``: started and not finished.
* ``success``: published, or superseded by a later attempt for the same date.
* ``failed``: a step failed; ``failure`` says where.
* ``abandoned``: was ``running`` when its process died; ``abandoned`` says what is known.
* ``pruned``: a superseded success whose bulky files were deleted; ``pruned`` says when and why.
* ``interactive``: written by notebooks in JupyterLab, never published.

Imports only :mod:`typing`: the pipeline's lean helper commands write manifests.
"""
from __future__ import annotations

from typing import Any, Literal, TypedDict, get_args

Status = Literal["running", "success", "failed", "abandoned", "pruned", "interactive"]
STATUSES: tuple[str, ...] = get_args(Status)


class Process(TypedDict):
    """The process running an attempt, so a later run can tell whether it is still alive."""

    pid: int
    host: str
    started: str | None  # clock ticks since boot, from /proc; tells a reused pid apart


class Step(TypedDict, total=False):
    """One step's entry in ``steps``: its times, cache hits and the facts it reported."""

    seconds: float                 # the cells' own time
    wall_seconds: float            # kernel start, cells and shutdown, as the pipeline measured it
    cache_hits: dict[str, bool]    # cached call -> whether it was a hit
    # facts, per step: collect rows, rejected, days, rows_removed; train method, window,
    # trained_on; evaluate cards, buy, sell, hold; train and evaluate data_fingerprint
    rows: int
    rejected: int
    days: int
    rows_removed: int
    method: str
    window: int
    trained_on: str
    cards: int
    buy: int
    sell: int
    hold: int
    data_fingerprint: str


class Model(TypedDict, total=False):
    """The model the run saved (:meth:`pokewatch.run.context.RunContext.save_model`)."""

    trained_on: str
    method: str
    window: int
    fitted_through: str
    origin: str
    reason: str | None


class Training(TypedDict):
    """Whether the pipeline ran the train notebook, and why (``should-train``)."""

    trained: bool
    reason: str


class Report(TypedDict, total=False):
    """The outcome of rendering ``report.html``: ``file`` when rendered, ``error`` when not."""

    status: Literal["rendered", "failed"]
    file: str
    error: str


class Portfolio(TypedDict):
    """The collector's portfolio the evaluate notebook valued."""

    file: str
    lots: int
    rejected: int


class Alert(TypedDict, total=False):
    """The webhook alert's outcome (:class:`pokewatch.analysis.alerts.PostResult`)."""

    status: Literal["sent", "failed"]
    ok: bool
    attempts: int
    http_status: int | None
    error: str | None
    seconds: float
    target: str  # the webhook's origin only: the URL is a secret
    at: str


class Failure(TypedDict, total=False):
    """Where a failed attempt failed: the step, the cell (when a notebook names one) and the log."""

    step: str
    cell: str | None
    error: str
    log: str  # relative to the attempt


class Abandoned(TypedDict):
    """What is known of an attempt whose process died while it ran."""

    reason: str
    last_step_done: str | None


class PrunedAttempt(TypedDict):
    """On the publishing attempt: one superseded attempt its publication pruned."""

    attempt: str
    freed_bytes: int


class Pruning(TypedDict):
    """On a pruned attempt: when, by which publication, and what it kept."""

    at: str
    by: str
    freed_bytes: int
    reason: str
    kept: list[str]


class Manifest(TypedDict, total=False):
    """``manifest.json``: every field any writer sets, and what it holds."""

    run_date: str                           # YYYY-MM-DD, the trading day
    status: Status
    attempt: str                            # the attempt folder's name
    started_at: str                         # ISO 8601 UTC times
    finished_at: str
    abandoned_at: str
    process: Process
    git_commit: str | None
    package_version: str
    #: notebook -> every parameter it ran with (pokewatch.run.parameters' models, recorded())
    parameters: dict[str, dict[str, Any]]
    steps: dict[str, Step]
    model: Model
    training: Training
    report: Report
    portfolio: Portfolio
    alert: Alert
    failure: Failure
    abandoned: Abandoned
    #: a publishing attempt lists what it pruned; a pruned attempt says how it was pruned
    pruned: list[PrunedAttempt] | Pruning


FIELDS: frozenset[str] = frozenset(Manifest.__optional_keys__ | Manifest.__required_keys__)


def check(fields: dict) -> None:
    """Refuse a field or a status :class:`Manifest` does not declare.

    Raises:
        ValueError: naming the field or status, and what is allowed.
    """
    unknown = sorted(set(fields) - FIELDS)
    if unknown:
        raise ValueError(f"manifest field(s) {', '.join(unknown)} are not declared in pokewatch.run.manifest."
                         f"Manifest; declared: {', '.join(sorted(FIELDS))}")
    if "status" in fields and fields["status"] not in STATUSES:
        raise ValueError(f"manifest status {fields['status']!r} is not one of {', '.join(STATUSES)}")
