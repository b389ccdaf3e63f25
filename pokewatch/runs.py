"""Run folders: one immutable record per trading day, published atomically.

A run works in its own attempt folder (``runs/attempts/<date>T<time>-<pid>/``).
Only when every step succeeded is ``runs/<date>`` switched to it, by replacing
a symlink in one ``os.replace``; ``runs/latest`` then points at the newest good
date. A failed or half-finished attempt therefore never replaces the last good
run, and two runs of the same day never write into the same folder.

``manifest.json`` in each attempt is the run's log: parameters, git commit,
package version, data fingerprint, per-step durations and cache hits, status.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd

import pokewatch
from pokewatch import atomic, config
from pokewatch.errors import RunError

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
ATTEMPTS = "attempts"
LATEST = "latest"
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
#: Superseded successful attempts kept per date (failed ones are always kept).
KEEP_SUPERSEDED = 2


def _root(runs_root: Path | None) -> Path:
    return Path(runs_root) if runs_root else config.runs_dir()


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(config.PROJECT_ROOT), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def read_manifest(run_dir: Path) -> dict:
    path = Path(run_dir) / MANIFEST
    if not path.exists():
        raise RunError(f"{run_dir} has no {MANIFEST}; it is not a PokeWatch run folder")
    return json.loads(path.read_text())


def update_manifest(run_dir: Path, **fields) -> dict:
    """Merge ``fields`` into the manifest (dicts are merged one level deep)."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir) if (run_dir / MANIFEST).exists() else {}
    for key, value in fields.items():
        if isinstance(value, dict) and isinstance(manifest.get(key), dict):
            manifest[key] = {**manifest[key], **value}
        else:
            manifest[key] = value
    atomic.write_json(run_dir / MANIFEST, manifest)
    return manifest


def record_step(run_dir: Path, step: str, seconds: float, cache_hits: dict | None = None, **extra) -> dict:
    """Add one step's duration, cache hits and extra facts to the manifest."""
    entry = {"seconds": round(seconds, 3), "cache_hits": cache_hits or {}, **extra}
    return update_manifest(run_dir, steps={step: entry})


def start_run(run_date: str, parameters: dict | None = None, runs_root: Path | None = None) -> Path:
    """Create a fresh attempt folder for ``run_date`` and its 'running' manifest."""
    if not _DATE_RE.match(run_date or ""):
        raise RunError(f"run date must be YYYY-MM-DD, got {run_date!r}")
    root = _root(runs_root)
    stamp = time.strftime("%H%M%S")
    attempt = root / ATTEMPTS / f"{run_date}T{stamp}-{os.getpid()}"
    suffix = 0
    while attempt.exists():
        suffix += 1
        attempt = root / ATTEMPTS / f"{run_date}T{stamp}-{os.getpid()}-{suffix}"
    (attempt / "plots").mkdir(parents=True)
    atomic.write_json(attempt / MANIFEST, {
        "run_date": run_date,
        "status": "running",
        "started_at": pd.Timestamp.now(tz="UTC").isoformat(),
        "attempt": attempt.name,
        "git_commit": git_commit(),
        "package_version": pokewatch.__version__,
        "parameters": parameters or {},
        "steps": {},
    })
    return attempt


def _swap_symlink(link: Path, target: str) -> None:
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)


def publish(run_dir: Path, runs_root: Path | None = None) -> Path:
    """Mark an attempt successful and point ``runs/<date>`` (and maybe ``latest``) at it."""
    root = _root(runs_root)
    run_dir = Path(run_dir).resolve()
    manifest = update_manifest(run_dir, status="success", finished_at=pd.Timestamp.now(tz="UTC").isoformat())
    run_date = manifest["run_date"]
    date_link = root / run_date
    if date_link.exists() and not date_link.is_symlink():
        raise RunError(f"{date_link} is a real folder, not a run link; move it away and re-run")
    previous = date_link.resolve() if date_link.is_symlink() else None
    _swap_symlink(date_link, f"{ATTEMPTS}/{run_dir.name}")
    latest = root / LATEST
    current = os.readlink(latest) if latest.is_symlink() else None
    if current is None or not (root / current).exists() or run_date >= current:
        _swap_symlink(latest, run_date)
    if previous and previous != run_dir:
        _prune_superseded(root, run_date)
    logger.info("published %s as %s", run_dir.name, date_link)
    return date_link


def fail(run_dir: Path, step: str, error: str, cell: str | None = None) -> dict:
    """Mark an attempt failed; links are untouched so ``latest`` stays on the last good run."""
    return update_manifest(Path(run_dir), status="failed", finished_at=pd.Timestamp.now(tz="UTC").isoformat(),
                           failure={"step": step, "cell": cell, "error": error})


def _prune_superseded(root: Path, run_date: str) -> None:
    live = (root / run_date).resolve()
    done = []
    for attempt in sorted((root / ATTEMPTS).glob(f"{run_date}T*")):
        if attempt.resolve() == live:
            continue
        try:
            status = read_manifest(attempt).get("status")
        except (RunError, json.JSONDecodeError):
            continue
        if status == "success":
            done.append(attempt)
    for attempt in done[:-KEEP_SUPERSEDED] if KEEP_SUPERSEDED else done:
        shutil.rmtree(attempt, ignore_errors=True)


def latest_run(runs_root: Path | None = None) -> Path | None:
    """The newest successful run folder, or None before the first good run."""
    link = _root(runs_root) / LATEST
    return link.resolve() if link.exists() else None


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


def attempts(runs_root: Path | None = None) -> pd.DataFrame:
    """Every attempt with its date, status, whether it is published, and its manifest."""
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


def find_model(run_date: str, runs_root: Path | None = None) -> Path | None:
    """``model.joblib`` of the newest good run on or before ``run_date`` whose model was
    trained on or before ``run_date`` (a later model would be look-ahead)."""
    root = _root(runs_root)
    for day in reversed(published_dates(runs_root)):
        if day > run_date:
            continue
        folder = (root / day).resolve()
        try:
            trained_on = read_manifest(folder).get("model", {}).get("trained_on")
        except (RunError, json.JSONDecodeError):
            continue
        if trained_on and trained_on <= run_date and (folder / "model.joblib").exists():
            return folder / "model.joblib"
    return None
