"""The decisions and bookkeeping behind ``scripts/run_pipeline.sh``, in testable Python.

The bash script stays a readable list of steps; everything that needs parsing or
a judgement lives here. The script calls it as ``python -m pokewatch pipeline COMMAND``
(:mod:`pokewatch.cli.commands.pipeline` parses the options and calls these functions):

* ``plan``          validate ``--date``, ``--backfill``, ``--archives`` and every ``--param
                    NAME=VALUE`` with the notebooks' parameter models
                    (:mod:`pokewatch.run.parameters`) before anything runs: types, ranges,
                    source options, and paths, resolved against the caller's directory;
                    write the plan (one set of papermill parameters per notebook).
* ``start``         mark attempts whose process is gone as abandoned, remove temporary
                    files killed writers left, create the attempt folder and its manifest.
* ``should-train``  Mondays, when no model exists on or before the date, or when forced.
* ``fail``          mark the attempt failed, naming the notebook, the cell and the log
                    (works on a truncated notebook: a full disk); then regenerate
                    ``runs/index.html`` unless ``--no-index``.
* ``index``         regenerate ``runs/index.html``.
* ``finish``        record the steps' wall times, render ``report.html``, publish the
                    attempt, print the day's BUY/SELL counts, the cache hits and what was
                    pruned, regenerate ``runs/index.html`` and post the webhook alert
                    when ``POKEWATCH_WEBHOOK_URL`` is set.

Each command imports only what it needs: ``start``, ``should-train`` and ``fail`` load
no pandas, numpy, pydantic, joblib or papermill (``fail`` records the failure first and
only then imports the report code to refresh the index), and ``plan`` reads the
parameters from the models, not from the notebooks (a test keeps the two equal). Lines
meant for the log start with the same UTC time stamp as the script's own.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import sys
import time
from pathlib import Path

from pokewatch import atomic, config
from pokewatch.run import runs
from pokewatch.run.folder import INDEX, RunFolder
from pokewatch.errors import ParameterError

logger = logging.getLogger(__name__)

NOTEBOOKS = ("collect", "train", "evaluate")
#: --param names the pipeline sets itself, and what to use instead.
RESERVED = {"run_dir": "it is set by the pipeline itself", "run_date": "use --date", "source": "use --source"}


def say(text: str, stream=None) -> None:
    """Print one log line, stamped like the script's own (``<UTC time> pipeline: text``)."""
    stamp = time.strftime(config.LOG_TIME_FORMAT, time.gmtime())
    print(f"{stamp} pipeline: {text}", file=stream or sys.stdout, flush=True)


# -- plan ------------------------------------------------------------------------------------
def plan(run_date: str, source: str, overrides: list[str], *, backfill: str = "", archives: str = "",
         cwd: Path | None = None) -> dict:
    """Per-notebook papermill parameters, validated, with paths made absolute.

    Args:
        overrides: ``NAME=VALUE`` strings from ``--param``; each goes to every notebook
            that declares NAME.
        cwd: the folder relative paths were typed in (default: the current one).

    Returns:
        ``{"run_date", "notebooks": {notebook: values to inject}, "parameters":
        {notebook: every parameter, as the manifest records it}}``.

    Raises:
        ParameterError: anything wrong, naming the option or parameter as typed.
    """
    from pokewatch.run import parameters  # noqa: PLC0415 - pydantic only for planning

    common: dict[str, object] = {"run_date": run_date, "source": source}
    labels = {"run_date": "--date", "source": "--source", "backfill_from": "--backfill FROM"}
    if backfill:
        if ".." not in backfill:
            raise ParameterError(f"--backfill must be FROM..TO (YYYY-MM-DD..YYYY-MM-DD), got {backfill!r}")
        common["backfill_from"], common["run_date"] = backfill.split("..", 1)
        labels["run_date"] = "--backfill TO"
    if archives:
        common["archives"] = archives
        labels["archives"] = "--archives"
    known = sorted({name for nb in NOTEBOOKS for name in parameters.model_of(nb).model_fields})
    requested: dict[str, str] = {}
    for item in overrides:
        if "=" not in item:
            raise ParameterError(f"--param expects NAME=VALUE, got {item!r}")
        name, raw = item.split("=", 1)
        name = name.strip()
        if name in RESERVED:
            raise ParameterError(f"--param {name} is not allowed: {RESERVED[name]}")
        if name not in known:
            raise ParameterError(f"unknown parameter {name!r}; the notebooks declare: {', '.join(known)}")
        requested[name] = raw
    values = {**common, **requested}
    inject: dict[str, dict] = {}
    recorded: dict[str, dict] = {}
    for nb in NOTEBOOKS:
        fields = parameters.model_of(nb).model_fields
        given = {k: v for k, v in values.items() if k in fields}
        checked = parameters.validate(nb, given, labels=labels, bases=(cwd or Path.cwd(),))
        inject[nb] = {k: getattr(checked, k) for k in given}
        recorded[nb] = checked.recorded()
    return {"run_date": recorded["collect"]["run_date"], "notebooks": inject, "parameters": recorded}


def save_plan(spec: dict, path: str | Path) -> Path:
    """Write a :func:`plan` where :func:`start` reads it (JSON, atomically)."""
    return atomic.write_text(path, json.dumps(spec, indent=2))


# -- start -----------------------------------------------------------------------------------
def start(plan_file: str | Path, pid: int | None = None) -> Path:
    """Clear up after killed runs, then create the attempt folder of a saved plan; returns the folder.

    Attempts whose process is gone are marked abandoned and temporary files killed writers
    left are removed (each said on stderr). The attempt gets its manifest, with every
    parameter, and one papermill parameter file per notebook in ``params/``.

    Args:
        pid: the process running the attempt (default: this one).
    """
    import yaml  # noqa: PLC0415 - papermill reads its parameter files as YAML

    spec = json.loads(Path(plan_file).read_text())
    for attempt in runs.abandon_dead_attempts():
        say(f"marked {attempt.name} abandoned: its process is gone", sys.stderr)
    removed = runs.remove_stale_temp_files(extra_folders=(config.store_dir(),))
    if removed:
        say(f"removed {len(removed)} temporary file(s) left by killed writers", sys.stderr)
    attempt = runs.start_run(spec["run_date"], spec.get("parameters") or spec["notebooks"], pid=pid)
    for nb, values in spec["notebooks"].items():
        atomic.write_text(attempt / "params" / f"{nb}.yaml",
                          yaml.safe_dump({**values, "run_dir": str(attempt)}, sort_keys=True))
    return attempt


# -- should-train, fail ------------------------------------------------------------------------
def should_train(run_date: str, force: bool = False, source: str | None = None,
                 attempt: Path | None = None) -> tuple[bool, str]:
    """Train on Mondays, when no usable model of ``source`` exists yet, or when forced.

    Returns:
        ``(train, why)``; with ``attempt``, also recorded as its manifest's ``training``.
    """
    train, reason = _training_decision(run_date, force, source)
    if attempt is not None:
        runs.update_manifest(Path(attempt), training={"trained": train, "reason": reason})
    return train, reason


def _training_decision(run_date: str, force: bool, source: str | None) -> tuple[bool, str]:
    if force:
        return True, "forced with --force-train"
    if dt.date.fromisoformat(run_date).weekday() == 0:
        return True, "Monday: weekly training"
    model = runs.find_model(run_date, source=source)
    if model is None:
        return True, f"no {source + ' ' if source else ''}model trained on or before {run_date} yet"
    return False, f"using the model of {model.parent.name}"


def read_failure(notebook_path: Path) -> tuple[str | None, str | None]:
    """``(cell, problem)``: 'cell N (In [k]): ErrorName: message' of the first failed cell, and
    why the notebook could not be read, if it could not (a disk that filled up truncates it).

    Reads the JSON directly rather than through nbformat, so a notebook that fails
    validation still names its cell.
    """
    path = Path(notebook_path)
    if not path.exists():
        return None, None
    try:
        cells = json.loads(path.read_text(encoding="utf-8", errors="replace"))["cells"]
        for index, cell in enumerate(cells):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    count = cell.get("execution_count")
                    return f"cell {index} (In [{count}]): {output.get('ename')}: {output.get('evalue')}", None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return None, f"the executed notebook {path} is unreadable ({type(exc).__name__}: {exc})"
    return None, None


def last_error_line(log_path: Path) -> str | None:
    """The last exception line (``SomeError: ...``) of a step's log, else its last line."""
    try:
        with open(log_path, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - 65536))
            lines = [line.strip() for line in handle.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        return None
    for line in reversed(lines):
        name = line.split(":", 1)[0]
        if ":" in line and " " not in name and name.endswith(("Error", "Exception", "Exit", "Interrupt")):
            return line
    return lines[-1] if lines else None


def wall_times(pairs: list[str]) -> dict[str, float]:
    """``["collect=12.3", ...]`` as ``{"collect": 12.3}``; malformed pairs are ignored."""
    times = {}
    for pair in pairs:
        step, _, seconds = pair.partition("=")
        try:
            times[step] = float(seconds)
        except ValueError:
            continue
    return times


def fail(attempt: Path, step: str, message: str, notebook: Path | None = None, log: Path | None = None,
         wall: dict[str, float] | None = None) -> str:
    """Record the failure in the manifest and return the one summary line for the log.

    Never raises for an unreadable notebook or log: the failure is what matters.
    """
    cell, problem = read_failure(notebook) if notebook else (None, None)
    error = message
    if not cell:
        error = last_error_line(log) if log else None
        error = f"{message}: {error}" if error else message
    if problem:
        error = f"{error}; {problem}"
    relative_log = None
    if log:
        relative_log = str(log.relative_to(attempt)) if log.is_relative_to(attempt) else str(log)
    runs.fail(attempt, step, error, cell, log=relative_log)
    if wall:
        runs.record_wall_times(attempt, wall)
    where = f" at {cell}" if cell else f": {error}"
    return f"{step} failed{where}" + (f"; full output in {log}" if log else "")


# -- finish --------------------------------------------------------------------------------------
def _counts(run_dir: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    try:
        with open(RunFolder(run_dir).signals, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                counts[row.get("signal")] = counts.get(row.get("signal"), 0) + 1
    except OSError:
        return {}
    return counts


def _cache_summary(manifest: dict) -> str:
    """'evaluate: signals hit, backtest hit; train: train miss' from the manifest's steps."""
    parts = []
    for step, info in manifest.get("steps", {}).items():
        hits = info.get("cache_hits") or {}
        if hits:
            parts.append(f"{step}: " + ", ".join(f"{name} {'hit' if hit else 'miss'}" for name, hit in hits.items()))
    return "; ".join(parts) or "no cached steps ran"


def finish(attempt: Path, wall: dict[str, float] | None = None) -> None:
    """Publish a finished attempt and print its summary lines (see the module docstring)."""
    if wall:
        runs.record_wall_times(attempt, wall)
    _render_report(attempt)
    link = runs.publish(attempt)
    counts = _counts(attempt)
    say(f"run folder: {link} -> {attempt.name}; BUY {counts.get('BUY', 0)}, SELL {counts.get('SELL', 0)}, "
        f"HOLD {counts.get('HOLD', 0)}")
    manifest = runs.read_manifest(attempt)
    say(f"cache: {_cache_summary(manifest)}")
    pruned = manifest.get("pruned") or []
    if pruned:
        freed = sum(p["freed_bytes"] for p in pruned) / 1e6
        say(f"pruned {len(pruned)} superseded attempt(s) of {manifest['run_date']} to their manifests "
            f"({freed:.1f} MB freed): {', '.join(p['attempt'] for p in pruned)}")
    index = refresh_index()
    if RunFolder(attempt).report.exists():
        say(f"report: {RunFolder(link).report}" + (f"; all runs: {index}" if index else ""))
    _send_alert(attempt, link)


def _render_report(attempt: Path) -> None:
    """Render report.html into the attempt before it is published; a failure is recorded, not raised."""
    from pokewatch.analysis import report  # noqa: PLC0415 - nbconvert only when finishing

    try:
        path = report.render_report(attempt)
        runs.update_manifest(attempt, report={"status": "rendered", "file": path.name})
    except Exception as exc:  # noqa: BLE001 - a report problem must not hold back a good run
        logger.warning("could not render the report of %s: %s: %s", attempt.name, type(exc).__name__, exc)
        runs.update_manifest(attempt, report={"status": "failed", "error": f"{type(exc).__name__}: {exc}"})


def refresh_index() -> Path | None:
    """Regenerate runs/index.html; a failure (an import one too) is logged, never raised."""
    try:
        from pokewatch.analysis import report  # noqa: PLC0415

        return report.write_index()
    except Exception as exc:  # noqa: BLE001 - the index is a convenience
        logger.warning("could not regenerate %s: %s: %s", config.runs_dir() / INDEX, type(exc).__name__, exc)
        return None


def _send_alert(attempt: Path, link: Path) -> None:
    """Post the webhook alert when POKEWATCH_WEBHOOK_URL is set; the outcome goes in the manifest."""
    from pokewatch.analysis import alerts  # noqa: PLC0415

    report_path = RunFolder(link).report
    result = alerts.notify_run(attempt, report=str(report_path) if report_path.exists() else None)
    if result is not None:
        say(f"alert to {result.target}: " + ("sent" if result.ok else
                                              f"FAILED after {result.attempts} attempt(s): {result.error}"))
