"""``scripts/run_pipeline.sh`` end to end, side by side for two checkouts, broken down per step.

Why a shim: the pipeline is a bash script that starts a python process per helper
command and per papermill notebook. To see where its wall time goes without editing
it, each case points ``POKEWATCH_PYTHON`` at a small bash shim that starts the
checkout's own python, records each process's start, end, exit status and peak
resident set (GNU ``time``: the largest of the process and the children it waited
for, so a papermill process reports its kernel too) and, for ``python -m pokewatch
pipeline ...`` (``-m pokewatch.pipeline`` in the flat layout), runs the command through
:mod:`benchmarks.finish_timer`,
which times ``report.render_report`` inside it. The executed notebooks record when
each cell started and ended (papermill's metadata). Together they give, per run:

==================  ============================================================
helper processes    ``pokewatch pipeline plan``, ``start``, ``should-train`` (and ``fail``)
kernel start        papermill process start (or, for a notebook started ahead, its release) to its first cell
cells               first cell start to last cell end, per notebook (what the notebooks compute)
kernel shutdown     last cell end to the papermill process's exit (kernel shutdown, notebook write)
report render       inside ``render_report`` (in ``finish``, or in a cell that calls it)
publish             the rest of ``pokewatch pipeline finish``: publish, index, summary lines
bash and other      what the script does between processes (the shim's own start is in here)
==================  ============================================================

A notebook the pipeline starts ahead of its turn (:mod:`pokewatch.run.head_start`)
starts its kernel and imports beside the steps before it and then waits; its executed
notebook records when it was released. Only the part after the release counts towards
the categories above, which therefore still add up to the wall time; the part before
is reported on its own, as ``started ahead`` (beside other steps, not in the total).

Each checkout runs with its own python and ``PYTHONPATH`` (its root), and with runs,
data and cache folders of its own under the benchmark's work folder. A checkout that
is not this one (today's main at ``--ref``) gets its numba and bytecode caches
redirected into the work folder, so measuring it never writes into it; a warm-up run
fills those caches before anything is timed ("after set-up").
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMER = Path(__file__).with_name("finish_timer.py")
HELPERS = ("plan", "start", "should-train", "fail")

SHIM = r"""#!/usr/bin/env bash
# Written by benchmarks/pipeline_cases.py: times each python process scripts/run_pipeline.sh starts.
real=__REAL__
args=("$@")
flags=()
if [[ "${1:-}" == "-P" ]]; then flags=(-P); shift; fi   # run_pipeline.sh calls python -P -m ...
if [[ "${1:-}" == "-m" && "${2:-}" == "pokewatch.pipeline" ]]; then      # the flat layout's helpers
  args=(-P __TIMER__ __RENDERS__ pokewatch.pipeline "${@:3}")
elif [[ "${1:-}" == "-m" && "${2:-}" == "pokewatch" && "${3:-}" == "pipeline" ]]; then
  args=(-P __TIMER__ __RENDERS__ pokewatch "${@:3}")
else
  args=("${flags[@]}" "$@")
fi
started=$(date +%s.%N)
rss_file=$(mktemp)
if [[ -x /usr/bin/time ]]; then
  /usr/bin/time -f "%M" -o "$rss_file" "$real" "${args[@]}"; status=$?
else
  "$real" "${args[@]}"; status=$?
fi
ended=$(date +%s.%N)
# a notebook started ahead of its turn got the rest of its command line later, in a file
later=""
if [[ -n "${POKEWATCH_ARGS_FILE:-}" && -e "$POKEWATCH_ARGS_FILE" ]]; then
  later=" $(tr '\0' ' ' <"$POKEWATCH_ARGS_FILE")"
fi
printf '%s\t%s\t%s\t%s\t%s\n' "$started" "$ended" "$status" "$(tail -n 1 "$rss_file" 2>/dev/null)" "$*$later" >> __LOG__
rm -f "$rss_file"
exit $status
"""


@dataclass
class Checkout:
    """A PokeWatch checkout to measure: its root, its python, and whether the benchmark may write into it.

    Attributes:
        name: the column label (``old main`` / ``this checkout``).
        root: the checkout's root folder (with ``scripts/run_pipeline.sh``).
        python: its interpreter (``root/.venv/bin/python`` by default).
        commit: ``git rev-parse --short HEAD`` of it, when known.
        own: True for the checkout the benchmark belongs to; any other is never written to.
    """

    name: str
    root: Path
    python: Path
    commit: str | None = None
    own: bool = False

    @classmethod
    def at(cls, name: str, root: Path, own: bool = False) -> Checkout:
        root = Path(root).resolve()
        python = root / ".venv" / "bin" / "python"
        if not python.exists():
            raise SystemExit(f"{root} has no .venv/bin/python; run make setup there first")
        return cls(name, root, python, git_commit(root), own)

    def env(self, base: Path) -> dict:
        """Environment for this checkout's processes (caches of a foreign checkout redirected under ``base``)."""
        env = {**os.environ, "PYTHONPATH": str(self.root), "TQDM_DISABLE": "1"}
        for name in ("POKEWATCH_RUNS_DIR", "POKEWATCH_DATA_DIR", "POKEWATCH_CACHE_DIR", "POKEWATCH_PYTHON",
                     "POKEWATCH_API_URL", "POKEWATCH_WEBHOOK_URL"):
            env.pop(name, None)
        if not self.own:
            key = (self.commit or self.root.name).replace(" ", "_")
            env["NUMBA_CACHE_DIR"] = str(base / f"numba-{key}")
            env["PYTHONPYCACHEPREFIX"] = str(base / f"pycache-{key}")
        return env

    def describe(self) -> dict:
        return {"name": self.name, "root": str(self.root), "python": str(self.python), "commit": self.commit}


def git_commit(root: Path) -> str | None:
    """Short commit of ``root``, with a note when its tracked files have uncommitted changes."""
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit} + uncommitted changes" if commit and dirty else commit or None


# -- one pipeline run ----------------------------------------------------------------------
@dataclass
class Folders:
    """The runs, data and cache folders one sequence of pipeline runs shares."""

    base: Path

    @property
    def runs(self) -> Path:
        return self.base / "runs"

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def cache(self) -> Path:
        return self.base / "cache"

    def snapshot(self, to: Path) -> None:
        """Copy the three folders (to replay the same run from the same state)."""
        shutil.rmtree(to, ignore_errors=True)
        for name in ("runs", "data", "cache"):
            if (self.base / name).exists():
                shutil.copytree(self.base / name, to / name, symlinks=True)

    def restore(self, snapshot: Path) -> None:
        for name in ("runs", "data", "cache"):
            shutil.rmtree(self.base / name, ignore_errors=True)
            if (snapshot / name).exists():
                shutil.copytree(snapshot / name, self.base / name, symlinks=True)


@dataclass
class Run:
    """What one ``run_pipeline.sh`` invocation did, for the breakdown."""

    args: list[str]
    seconds: float
    exit_status: int
    processes: list[dict] = field(default_factory=list)
    notebooks: dict = field(default_factory=dict)
    renders: list[dict] = field(default_factory=list)
    run_dir: str | None = None
    stderr_tail: list[str] = field(default_factory=list)


def run_pipeline(checkout: Checkout, args: list[str], folders: Folders, work: Path, timeout: float) -> dict:
    """Run ``scripts/run_pipeline.sh ARGS`` of ``checkout`` once; its breakdown (see the module docstring)."""
    stamp = f"{time.time_ns()}"
    log, renders = work / f"processes-{stamp}.tsv", work / f"renders-{stamp}.jsonl"
    shim = work / f"python-{stamp}"
    shim.write_text(SHIM.replace("__REAL__", _quote(checkout.python)).replace("__TIMER__", _quote(TIMER))
                    .replace("__RENDERS__", _quote(renders)).replace("__LOG__", _quote(log)))
    shim.chmod(0o755)
    env = {**checkout.env(work.parent), "POKEWATCH_PYTHON": str(shim), "POKEWATCH_RUNS_DIR": str(folders.runs),
           "POKEWATCH_DATA_DIR": str(folders.data), "POKEWATCH_CACHE_DIR": str(folders.cache)}
    started = time.perf_counter()
    try:
        proc = subprocess.run(["bash", str(checkout.root / "scripts" / "run_pipeline.sh"), *args], cwd=checkout.root,
                              env=env, capture_output=True, text=True, timeout=timeout)
        status, stderr = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired as exc:
        status, stderr = 124, (exc.stderr or b"").decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
    seconds = time.perf_counter() - started
    run = Run(args, round(seconds, 3), status, processes=_processes(log), renders=_renders(renders))
    run.notebooks = {p["notebook"]: _notebook_times(Path(p["output"]), p) for p in run.processes
                     if p.get("notebook") and Path(p["output"]).exists()}
    run.run_dir = _run_dir(stderr)
    if status != 0:
        run.stderr_tail = stderr.strip().splitlines()[-15:]
    out = {**run.__dict__, "breakdown": breakdown(run)}
    for path in (log, renders, shim):
        path.unlink(missing_ok=True)
    return out


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "'\\''") + "'"


def _helper_command(words: list[str]) -> str | None:
    """``plan``, ``start``, ... when ``words`` run a helper command, in either layout's spelling."""
    if words[:2] == ["-m", "pokewatch.pipeline"] and len(words) > 2:
        return words[2]
    if words[:3] == ["-m", "pokewatch", "pipeline"] and len(words) > 3:
        return words[3]
    return None


def _processes(log: Path) -> list[dict]:
    """The shim's log: one dict per python process, in start order."""
    out = []
    if not log.exists():
        return out
    for line in log.read_text().splitlines():
        started, ended, status, rss, command = (line.split("\t", 4) + [""] * 5)[:5]
        words = command.split()
        while words[:1] == ["-P"]:      # the interpreter's flags are not the command
            words = words[1:]
        entry = {"started": float(started), "ended": float(ended), "seconds": round(float(ended) - float(started), 3),
                 "exit_status": int(status), "peak_bytes": int(rss) * 1024 if rss.strip().isdigit() else None,
                 "command": " ".join(words[:4])}
        notebooks = [w for w in words if w.endswith(".ipynb")]
        if notebooks and any(w == "papermill" or w.endswith(".papermill_cli") for w in words):
            entry.update(kind="notebook", notebook=Path(notebooks[-1]).stem, output=notebooks[-1])
        elif helper := _helper_command(words):
            entry.update(kind="finish" if helper == "finish" else "helper", helper=helper)
        else:
            entry.update(kind="other")
        out.append(entry)
    return sorted(out, key=lambda e: e["started"])


def _renders(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _epoch(value: str | None) -> float | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _notebook_times(path: Path, process: dict) -> dict:
    """Kernel start, cells and kernel shutdown of one executed notebook, and its slowest cells."""
    nb = json.loads(path.read_text())
    cells = []
    for index, cell in enumerate(nb.get("cells", [])):
        meta = (cell.get("metadata") or {}).get("papermill") or {}
        start, end = _epoch(meta.get("start_time")), _epoch(meta.get("end_time"))
        if cell.get("cell_type") != "code" or start is None or end is None:
            continue
        source = "".join(cell.get("source") or [])
        first = next((line.strip() for line in source.splitlines() if line.strip() and not line.startswith("#")), "")
        cells.append({"index": index, "start": start, "end": end, "seconds": round(end - start, 4),
                      "first_line": first[:100], "renders_report": "render_report" in source,
                      "tags": (cell.get("metadata") or {}).get("tags", [])})
    released = ((nb.get("metadata") or {}).get("pokewatch") or {}).get("released")
    start = process["started"] if released is None else min(max(process["started"], released), process["ended"])
    counted, ahead = round(process["ended"] - start, 3), round(start - process["started"], 3)
    if not cells:
        return {"cells": [], "cells_seconds": 0.0, "kernel_start_seconds": counted,
                "kernel_shutdown_seconds": 0.0, "peak_bytes": process.get("peak_bytes"),
                "process_seconds": counted, "ahead_seconds": ahead}
    first, last = cells[0]["start"], max(c["end"] for c in cells)
    return {"cells": cells, "cells_seconds": round(last - first, 3),
            "kernel_start_seconds": round(first - start, 3),
            "kernel_shutdown_seconds": round(process["ended"] - last, 3),
            "report_render_seconds": round(sum(c["seconds"] for c in cells if c["renders_report"]), 3),
            "peak_bytes": process.get("peak_bytes"), "process_seconds": counted, "ahead_seconds": ahead}


def _run_dir(stderr: str) -> str | None:
    for line in stderr.splitlines():
        if "pipeline: run " in line and " in " in line:
            return line.rsplit(" in ", 1)[1].strip()
    return None


def breakdown(run: Run) -> dict:
    """Seconds per category (see the module docstring); they add up to the run's wall time."""
    helpers = sum(p["seconds"] for p in run.processes if p["kind"] == "helper")
    finish = sum(p["seconds"] for p in run.processes if p["kind"] == "finish")
    render_in_finish = sum(r["render_seconds"] for r in run.renders if r.get("command") == ["finish"])
    notebooks = run.notebooks.values()
    render_in_cells = sum(n.get("report_render_seconds", 0.0) for n in notebooks)
    kernel_start = sum(n["kernel_start_seconds"] for n in notebooks)
    kernel_shutdown = sum(n["kernel_shutdown_seconds"] for n in notebooks)
    cells = sum(n["cells_seconds"] for n in notebooks) - render_in_cells
    notebook_processes = sum(n.get("process_seconds", 0.0) for n in notebooks)
    parts = {"helper processes": helpers, "kernel start": kernel_start, "cells": cells,
             "kernel shutdown": kernel_shutdown, "report render": render_in_finish + render_in_cells,
             "publish": finish - render_in_finish,
             "bash and other": run.seconds - helpers - finish - notebook_processes}
    parts = {k: round(v, 3) for k, v in parts.items()}
    parts["total"] = round(run.seconds, 3)
    parts["started ahead"] = round(sum(n.get("ahead_seconds", 0.0) for n in notebooks), 3)
    parts["per notebook"] = {name: {k: n.get(k) for k in ("kernel_start_seconds", "cells_seconds",
                                                            "kernel_shutdown_seconds", "peak_bytes")}
                             for name, n in run.notebooks.items()}
    parts["helpers"] = {p["helper"]: p["seconds"] for p in run.processes if p["kind"] in ("helper", "finish")}
    return parts


# -- the cases -----------------------------------------------------------------------------------
def _fresh(work: Path, name: str) -> Folders:
    folder = work / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return Folders(folder)


def _log(message: str) -> None:
    print(message, flush=True)


def warm_up(checkout: Checkout, work: Path, timeout: float) -> dict:
    """One untimed demo run, so compiled kernels and bytecode exist before anything is timed."""
    _log(f"  {checkout.name}: warm-up run")
    return run_pipeline(checkout, ["--date", "2026-11-27"], _fresh(work, "warm-up"), work, timeout)


def case_demo(checkout: Checkout, work: Path, repeats: int, timeout: float, date: str = "2026-11-27") -> dict:
    """``make pipeline`` after set-up: the demo market (500 series, 365 days), fresh folders each repeat."""
    runs = []
    for i in range(repeats):
        _log(f"  {checkout.name}: demo pipeline {i + 1}/{repeats}")
        runs.append(run_pipeline(checkout, ["--date", date], _fresh(work, f"demo-{i}"), work, timeout))
    return {"args": ["--date", date], "runs": runs}


def case_rerun(checkout: Checkout, work: Path, repeats: int, timeout: float, series: int = 20_000,
               date: str = "2021-12-31", history_days: int = 729) -> dict:
    """A warm re-run at ``series`` series: one first run (timed, trains), then identical re-runs of the same day."""
    folders = _fresh(work, f"rerun-{series}")
    args = ["--date", date, "--param", f"n_series={series}", "--param", f"history_days={history_days}"]
    _log(f"  {checkout.name}: {series:,}-series first run")
    first = run_pipeline(checkout, args, folders, work, timeout)
    reruns = []
    for i in range(repeats):
        _log(f"  {checkout.name}: {series:,}-series re-run {i + 1}/{repeats}")
        reruns.append(run_pipeline(checkout, args, folders, work, timeout))
    return {"args": args, "series": series, "first_run": first, "runs": reruns}


def case_backfill(checkout: Checkout, work: Path, repeats: int, timeout: float, archives: Path,
                  span: str = "2025-09-21..2025-10-08") -> dict:
    """The real tcgcsv backfill: first runs on fresh folders (archives decoded cold), then identical re-runs."""
    args = ["--source", "tcgcsv", "--archives", str(archives), "--backfill", span]
    first_runs, folders = [], None
    for i in range(repeats):
        _log(f"  {checkout.name}: backfill first run {i + 1}/{repeats}")
        folders = _fresh(work, f"backfill-{i}")
        first_runs.append(run_pipeline(checkout, args, folders, work, timeout))
    size = run_folder_size(Path(first_runs[-1]["run_dir"])) if first_runs and first_runs[-1]["run_dir"] else None
    reruns = []
    for i in range(repeats):
        _log(f"  {checkout.name}: backfill re-run {i + 1}/{repeats}")
        reruns.append(run_pipeline(checkout, args, folders, work, timeout))
    return {"args": args, "first_runs": first_runs, "runs": reruns, "run_folder": size}


def case_daily(checkout: Checkout, work: Path, repeats: int, timeout: float, series: int,
               date: str = "2021-12-31", history_days: int = 729) -> dict:
    """The cron user at catalogue scale: a first run for the day before ``date``, then the daily run for ``date``.

    The first run collects ``history_days + 1`` days, trains and evaluates (every
    walk-forward selection computed: the cold cost). The daily run collects one more
    day and evaluates with the earlier training days' selections in the cache (the warm
    cost). Each repeat of the daily run starts from a copy of the folders as the first
    run left them.
    """
    folders = _fresh(work, f"daily-{series}")
    before = f"{(datetime.fromisoformat(date) - _DAY):%Y-%m-%d}"
    first_args = ["--date", before, "--param", f"n_series={series}", "--param", f"history_days={history_days}"]
    _log(f"  {checkout.name}: {series:,} series, first run for {before}")
    first = run_pipeline(checkout, first_args, folders, work, timeout)
    snapshot = work / f"daily-{series}-snapshot"
    folders.snapshot(snapshot)
    daily_args = ["--date", date, "--param", f"n_series={series}"]
    runs = []
    try:
        for i in range(repeats):
            if i:
                folders.restore(snapshot)
            _log(f"  {checkout.name}: {series:,} series, daily run for {date} {i + 1}/{repeats}")
            runs.append(run_pipeline(checkout, daily_args, folders, work, timeout))
    finally:
        shutil.rmtree(snapshot, ignore_errors=True)
    return {"series": series, "first_args": first_args, "args": daily_args, "first_run": first, "runs": runs,
            "store": str(folders.data / "store")}


_DAY = datetime(2000, 1, 2) - datetime(2000, 1, 1)


def run_folder_size(run_dir: Path) -> dict:
    """Bytes of a run folder, by what fills it."""
    run_dir = run_dir.resolve()
    groups: dict[str, int] = {}
    for path in run_dir.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        relative = path.relative_to(run_dir)
        top = relative.parts[0]
        if len(relative.parts) > 1:
            group = f"{top}/"
        elif path.suffix == ".ipynb":
            group = "notebooks (*.ipynb)"
        else:
            group = top
        groups[group] = groups.get(group, 0) + path.stat().st_size
    return {"path": str(run_dir), "total_bytes": sum(groups.values()),
            "by_entry": dict(sorted(groups.items(), key=lambda kv: -kv[1]))}
