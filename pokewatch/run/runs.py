"""Run folders: one immutable record per trading day, published atomically.

A run works in its own attempt folder (``runs/attempts/<date>T<time>-<pid>/``).
Only when every step succeeded is ``runs/<date>`` switched to it, by replacing
a symlink in one ``os.replace``; ``runs/latest`` then points at the newest good
run that is not after today, so a stray run for a future date cannot pin it. A
failed or half-finished attempt therefore never replaces the last good run, and
two runs of the same day never write into the same folder.

``manifest.json`` in each attempt is the run's log: parameters, git commit,
package version, the pipeline's process, data fingerprint, per-step durations and
cache hits, status. The statuses:

* ``running``: started and not finished. The next pipeline run marks it
  ``abandoned`` (with the time) when its process is gone: killed, or the machine
  went down.
* ``success``: published (``runs/<date>`` points at it) or superseded by a later
  attempt for the same date.
* ``failed``: a step failed; ``failure`` names the step, the cell and the log.
* ``pruned``: a superseded successful attempt beyond :data:`KEEP_SUPERSEDED` per
  date. Its bulky files are deleted, but its manifest (and small metrics/quality
  JSON) stay, so the runs index still lists every attempt there ever was; the
  published attempt's manifest lists what its publication pruned.

This module imports nothing heavy (no pandas), so the pipeline's helper commands
that use it start in a fraction of a second.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pokewatch
from pokewatch import atomic, config
from pokewatch.core import checks
from pokewatch.errors import RunError
from pokewatch.run import model_file
from pokewatch.run import manifest as manifest_fields
from pokewatch.run.folder import ATTEMPTS, KEPT_WHEN_PRUNED, LATEST, RunFolder
from pokewatch.run.manifest import Manifest

logger = logging.getLogger(__name__)

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
#: Superseded successful attempts kept whole per date (failed ones are always kept whole).
KEEP_SUPERSEDED = 2
#: A temporary file older than this is a crashed writer's leftover, never a live writer's.
STALE_TEMP_SECONDS = 3600


def _root(runs_root: Path | None) -> Path:
    return Path(runs_root) if runs_root else config.runs_dir()


def now_utc() -> str:
    """The current time as an ISO 8601 UTC timestamp, as manifests record times."""
    return dt.datetime.now(dt.UTC).isoformat()


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(config.PROJECT_ROOT), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def read_manifest(run_dir: Path) -> Manifest:
    path = RunFolder(run_dir).manifest
    if not path.exists():
        raise RunError(f"{run_dir} has no {path.name}; it is not a PokeWatch run folder")
    return json.loads(path.read_text())


def update_manifest(run_dir: Path, **fields) -> Manifest:
    """Merge ``fields`` into the manifest (dicts are merged one level deep), atomically.

    The one writer of ``manifest.json``: a manifest that does not exist yet is created.

    Raises:
        ValueError: a field or status :class:`~pokewatch.run.manifest.Manifest` does not declare.
    """
    manifest_fields.check(fields)
    path = RunFolder(run_dir).manifest
    manifest = read_manifest(run_dir) if path.exists() else {}
    for key, value in fields.items():
        if isinstance(value, dict) and isinstance(manifest.get(key), dict):
            manifest[key] = {**manifest[key], **value}
        else:
            manifest[key] = value
    atomic.write_json(path, manifest)
    return manifest


def record_step(run_dir: Path, step: str, seconds: float, cache_hits: dict | None = None, **extra) -> dict:
    """Add one step's cell time (``seconds``), cache hits and extra facts to the manifest.

    A wall time the pipeline already recorded for the step is kept.
    """
    manifest = read_manifest(run_dir) if RunFolder(run_dir).manifest.exists() else {}
    previous = manifest.get("steps", {}).get(step, {})
    entry = {"seconds": round(seconds, 3), "cache_hits": cache_hits or {}, **extra}
    if "wall_seconds" in previous:
        entry["wall_seconds"] = previous["wall_seconds"]
    return update_manifest(run_dir, steps={step: entry})


def record_wall_times(run_dir: Path, wall_seconds: dict[str, float]) -> Manifest:
    """Record each step's wall time as the pipeline measured it (kernel start, cells, shutdown).

    Stored as ``steps.<step>.wall_seconds`` beside the cells' own ``seconds``.
    """
    steps = read_manifest(run_dir).get("steps") or {}
    return update_manifest(run_dir, steps={
        step: {**steps.get(step, {}), "wall_seconds": round(float(seconds), 3)}
        for step, seconds in wall_seconds.items()})


# -- the pipeline's process, and what a dead one left behind -------------------------------------
def _process_start(pid: int) -> str | None:
    """When ``pid`` started (clock ticks since boot, from /proc), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22, counted after the command name


def process_record(pid: int | None = None) -> dict:
    """``{"pid", "host", "started"}`` of the process running an attempt (default: this one)."""
    pid = int(pid or os.getpid())
    return {"pid": pid, "host": socket.gethostname(), "started": _process_start(pid)}


def process_alive(record: dict) -> bool:
    """Whether the process of a :func:`process_record` still runs (a reused pid does not count)."""
    pid = record.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        pass
    started = record.get("started")
    return started is None or _process_start(pid) in (None, started)


def abandon_dead_attempts(runs_root: Path | None = None) -> list[Path]:
    """Mark ``running`` attempts whose process is gone as ``abandoned``, with the time.

    Called by the pipeline while it holds the runs lock, so no other pipeline run is
    live. An attempt started on another host is left alone (its process cannot be
    checked from here); one that recorded no process (started before processes were
    recorded) cannot be live either and is marked too.

    Returns:
        The attempts marked.
    """
    folder = _root(runs_root) / ATTEMPTS
    marked = []
    host = socket.gethostname()
    for attempt in sorted(folder.iterdir()) if folder.is_dir() else []:
        try:
            manifest = read_manifest(attempt)
        except (RunError, ValueError, OSError):
            continue
        if manifest.get("status") != "running":
            continue
        process = manifest.get("process") or {}
        if process.get("host") not in (None, host) or process_alive(process):
            continue
        steps = list(manifest.get("steps") or {})
        reason = (f"process {process['pid']} on {host} is gone" if process.get("pid")
                  else "no process was recorded and no pipeline holds the runs lock")
        update_manifest(attempt, status="abandoned", abandoned_at=now_utc(),
                        abandoned={"reason": reason + " (killed, out of disk or memory, or the host went down)",
                                   "last_step_done": steps[-1] if steps else None})
        marked.append(attempt)
    return marked


def remove_stale_temp_files(runs_root: Path | None = None, *, older_than: float = STALE_TEMP_SECONDS,
                            extra_folders: tuple[Path, ...] = ()) -> list[Path]:
    """Delete temporary files a killed writer left in the runs folder, unfinished attempts and ``extra_folders``.

    Only files older than ``older_than`` seconds go, so a concurrent writer's file
    (a JupyterLab session, a ``pokewatch collect``) is never touched. Published and
    superseded attempts are not searched: they finished, so nothing was left there.

    Returns:
        The files removed.
    """
    root = _root(runs_root)
    folders: list[tuple[Path, bool]] = [(root, False)]  # (folder, recursive)
    for attempt in sorted((root / ATTEMPTS).iterdir()) if (root / ATTEMPTS).is_dir() else []:
        try:
            status = read_manifest(attempt).get("status")
        except (RunError, ValueError, OSError):
            status = None
        if status not in ("success", "pruned"):
            folders.append((attempt, True))
    folders += [(Path(f), True) for f in extra_folders]
    removed = []
    for folder, recursive in folders:
        removed += atomic.remove_stale_temp_files(folder, older_than=older_than, recursive=recursive)
    return removed


# -- start, publish, fail ---------------------------------------------------------------------------
def start_run(run_date: str, parameters: dict | None = None, runs_root: Path | None = None,
              *, pid: int | None = None) -> Path:
    """Create a fresh attempt folder for ``run_date`` and its 'running' manifest.

    Args:
        pid: the process running the attempt (the pipeline script); default this one.
    """
    if not _DATE_RE.match(run_date or ""):
        raise RunError(f"run date must be YYYY-MM-DD, got {run_date!r}")
    root = _root(runs_root)
    stamp = time.strftime("%H%M%S")
    pid = int(pid or os.getpid())
    attempt = root / ATTEMPTS / f"{run_date}T{stamp}-{pid}"
    suffix = 0
    while attempt.exists():
        suffix += 1
        attempt = root / ATTEMPTS / f"{run_date}T{stamp}-{pid}-{suffix}"
    folder = RunFolder(attempt)
    folder.plots.mkdir(parents=True)
    folder.logs.mkdir()
    update_manifest(attempt, run_date=run_date, status="running", started_at=now_utc(), attempt=attempt.name,
                    process=process_record(pid), git_commit=git_commit(), package_version=pokewatch.__version__,
                    parameters=parameters or {}, steps={})
    return attempt


def _swap_symlink(link: Path, target: str) -> None:
    tmp = link.with_name(f"{atomic.TEMP_PREFIX}{link.name}.{os.getpid()}{atomic.TEMP_SUFFIX}")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)


def _servable_date(root: Path) -> str | None:
    """The date ``latest`` should name: the newest published run not after today."""
    today = f"{checks.today():%Y-%m-%d}"
    dates = [d for d in published_dates(root) if d <= today]
    return dates[-1] if dates else None


def point_latest(runs_root: Path | None = None) -> str | None:
    """Point ``runs/latest`` at the newest published run not after today (see :func:`latest_run`).

    A link to a later date (a run for a future date) is replaced; with no run to
    point at, such a link is removed. Returns the date ``latest`` names, or None.
    """
    root = _root(runs_root)
    link = root / LATEST
    target = _servable_date(root)
    current = os.readlink(link) if link.is_symlink() else None
    if target is None:
        if current is not None and not (_DATE_RE.match(current) and current <= f"{checks.today():%Y-%m-%d}"):
            link.unlink()
        return None
    if current != target:
        _swap_symlink(link, target)
    return target


def publish(run_dir: Path, runs_root: Path | None = None) -> Path:
    """Mark an attempt successful, point ``runs/<date>`` at it and update ``latest``.

    Superseded successful attempts of the date beyond :data:`KEEP_SUPERSEDED` are
    pruned to their manifests; the manifest of ``run_dir`` lists them under ``pruned``.
    """
    root = _root(runs_root)
    run_dir = Path(run_dir).resolve()
    manifest = update_manifest(run_dir, status="success", finished_at=now_utc())
    run_date = manifest["run_date"]
    date_link = root / run_date
    if date_link.exists() and not date_link.is_symlink():
        raise RunError(f"{date_link} is a real folder, not a run link; move it away and re-run")
    previous = date_link.resolve() if date_link.is_symlink() else None
    _swap_symlink(date_link, f"{ATTEMPTS}/{run_dir.name}")
    point_latest(root)
    if previous and previous != run_dir:
        pruned = prune_superseded(root, run_date)
        if pruned:
            update_manifest(run_dir, pruned=pruned)
    logger.info("published %s as %s", run_dir.name, date_link)
    return date_link


def fail(run_dir: Path, step: str, error: str, cell: str | None = None, log: str | None = None) -> dict:
    """Mark an attempt failed; links are untouched so ``latest`` stays on the last good run.

    Args:
        log: the step's full output, relative to the attempt (``logs/collect.log``).
    """
    failure = {"step": step, "cell": cell, "error": error}
    if log:
        failure["log"] = log
    return update_manifest(Path(run_dir), status="failed", finished_at=now_utc(), failure=failure)


def _folder_bytes(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        try:
            total += path.lstat().st_size if path.is_file() or path.is_symlink() else 0
        except OSError:
            continue
    return total


def prune_superseded(runs_root: Path | None, run_date: str, keep: int = KEEP_SUPERSEDED) -> list[dict]:
    """Prune superseded successful attempts of ``run_date`` beyond the newest ``keep``.

    Each pruned attempt keeps :data:`KEPT_WHEN_PRUNED`; its manifest says when, by
    which publication and how much was freed, and its status becomes ``pruned``.

    Returns:
        ``{"attempt", "freed_bytes"}`` of every attempt pruned.
    """
    root = _root(runs_root)
    live = (root / run_date).resolve()
    done = []
    for attempt in sorted((root / ATTEMPTS).glob(f"{run_date}T*")):
        if attempt.resolve() == live:
            continue
        try:
            status = read_manifest(attempt).get("status")
        except (RunError, ValueError):
            continue
        if status == "success":
            done.append(attempt)
    pruned = []
    for attempt in done[:-keep] if keep else done:
        freed = 0
        for path in attempt.iterdir():
            if path.name in KEPT_WHEN_PRUNED:
                continue
            if path.is_dir() and not path.is_symlink():
                freed += _folder_bytes(path)
                shutil.rmtree(path, ignore_errors=True)
            else:
                freed += path.lstat().st_size
                path.unlink()
        update_manifest(attempt, status="pruned", pruned={
            "at": now_utc(), "by": live.name, "freed_bytes": freed,
            "reason": f"superseded; the newest {keep} superseded attempt(s) of {run_date} are kept whole",
            "kept": [name for name in KEPT_WHEN_PRUNED if (attempt / name).exists()]})
        pruned.append({"attempt": attempt.name, "freed_bytes": freed})
    return pruned


# -- reading -------------------------------------------------------------------------------------
def latest_run(runs_root: Path | None = None) -> Path | None:
    """The newest successful run not after today, or None before the first good run.

    ``runs/latest`` names it; a link someone pointed at an older published run is
    honoured, one at a future date is not.
    """
    root = _root(runs_root)
    link = root / LATEST
    today = f"{checks.today():%Y-%m-%d}"
    current = os.readlink(link) if link.is_symlink() else None
    if current and _DATE_RE.match(current) and current <= today and (root / current).exists():
        return (root / current).resolve()
    target = _servable_date(root)
    return (root / target).resolve() if target else None


def run_folder(run_date: str, runs_root: Path | None = None) -> Path:
    """The published run of ``run_date``.

    Raises:
        RunError: no successful run for that date, listing the dates there are.
    """
    root = _root(runs_root)
    link = root / str(run_date)
    if not _DATE_RE.match(str(run_date)) or not link.exists():
        dates = ", ".join(published_dates(runs_root)[-5:]) or "none yet"
        raise RunError(f"no successful run for {run_date!r} in {root}; recent runs: {dates}")
    return link.resolve()


def published_dates(runs_root: Path | None = None) -> list[str]:
    root = _root(runs_root)
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if _DATE_RE.match(p.name) and p.exists())


def attempts(runs_root: Path | None = None):
    """Every attempt with its date, status, whether it is published, and its manifest (a DataFrame)."""
    import pandas as pd  # noqa: PLC0415 - the helper commands never call this

    root = _root(runs_root)
    live = {(root / d).resolve() for d in published_dates(runs_root)}
    rows = []
    for attempt in sorted((root / ATTEMPTS).glob("*")) if (root / ATTEMPTS).exists() else []:
        try:
            manifest = read_manifest(attempt)
        except (RunError, json.JSONDecodeError):
            continue
        rows.append({"run_date": manifest.get("run_date"), "status": manifest.get("status"),
                     "published": attempt.resolve() in live, "path": attempt, "manifest": manifest})
    return pd.DataFrame(rows, columns=["run_date", "status", "published", "path", "manifest"])


def find_model(run_date: str, runs_root: Path | None = None, source: str | None = None) -> Path | None:
    """The model file of the newest good run on or before ``run_date`` whose model was
    trained on or before ``run_date`` (a later model would be look-ahead), on ``source``
    when given (another source's model says nothing about this one's cards).

    Only models in the current format count (:func:`pokewatch.run.model_file.is_current`):
    a run holding an old pickled ``model.joblib``, or a ``model.npz`` of another format
    version, cannot be loaded, so ``should-train`` must train rather than hand it to
    evaluate."""
    root = _root(runs_root)
    for day in reversed(published_dates(runs_root)):
        if day > run_date:
            continue
        folder = (root / day).resolve()
        try:
            manifest = read_manifest(folder)
        except (RunError, json.JSONDecodeError):
            continue
        trained_on = manifest.get("model", {}).get("trained_on")
        run_source = (manifest.get("parameters", {}).get("collect") or {}).get("source")
        if source is not None and run_source not in (None, source):
            continue
        path = model_file.path_in(folder)
        if trained_on and trained_on <= run_date and model_file.is_current(path):
            return path
    return None
