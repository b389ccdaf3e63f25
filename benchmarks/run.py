"""Time every pipeline stage on a simulated full-catalogue market, beside the original per-card loop.

For each scale (number of series) it simulates ``--days`` of the demo market (no
network), writes it into a temporary price store, and runs each stage in its own
process (see :mod:`benchmarks.stages` for how time and peak memory are measured):

==============  ==================================================================
prepare         simulate the market, then ``PriceStore.write_days`` (daily files + compacted history)
load            ``PriceStore.load_frame`` (what the steps use) and ``PriceStore.load`` (string long table)
signals         fair value + signals over the full history (``compute_signals``, rolling mean of 7)
backtest        ``run_backtest`` with every KPI, scored rows and forecast errors
train           ``steps.train_step`` on a cold cache: the 11-candidate search and the fit
train_hit       ``steps.train_step`` again on unchanged data (fingerprint + cache hit)
predict         ``predict_all`` for every card, ``predict`` latency cold and warm
reference       the original per-card ``groupby`` loop with ``rolling(3, min_periods=1).mean()``
parallel        (``--parallel``) signals and backtest sharded over 2 loky / thread workers
==============  ==================================================================

Results go to ``--out`` as ``performance.json``, ``performance.md`` and
``performance.png``. ``--pipeline`` also times ``scripts/run_pipeline.sh`` end to end.

Examples:
    .venv/bin/python -m benchmarks                                   # the four documented scales
    .venv/bin/python -m benchmarks --scales 200 --days 60 --out /tmp/bench
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGE_ORDER = ("prepare", "load", "signals", "backtest", "train", "train_hit", "predict", "reference")


def _versions() -> dict:
    import numba
    import numpy
    import pandas
    import pyarrow

    return {"python": platform.python_version(), "numpy": numpy.__version__, "pandas": pandas.__version__,
            "pyarrow": pyarrow.__version__, "numba": numba.__version__}


def _git_commit() -> str | None:
    """The checked-out commit, with a note when the working tree has uncommitted changes."""
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit} + uncommitted changes" if commit and dirty else commit or None


def run_stage(stage: str, spec: dict, timeout: float, in_process: bool = False) -> dict:
    """Run one stage in a fresh interpreter (or, for smoke tests, in this one); its JSON result or an ``error``."""
    workdir = Path(spec["workdir"])
    if in_process:
        from benchmarks import stages

        os.environ["POKEWATCH_CACHE_DIR"] = str(workdir / "cache")
        started = time.perf_counter()
        try:
            memory = stages.PeakMemory()
            result = json.loads(json.dumps(stages.STAGES[stage](spec, memory), default=str))
        except Exception as exc:  # reported like a failed stage process
            return {"error": [f"{type(exc).__name__}: {exc}"]}
        result["memory_method"] = memory.method + " (in-process: peaks include earlier stages)"
        result["process_seconds"] = round(time.perf_counter() - started, 2)
        return result
    spec_path, out_path = workdir / f"{stage}.spec.json", workdir / f"{stage}.out.json"
    spec_path.write_text(json.dumps(spec))
    out_path.unlink(missing_ok=True)
    env = {**os.environ, "POKEWATCH_CACHE_DIR": str(workdir / "cache"), "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.stages", stage, str(spec_path), str(out_path)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f}s"}
    if proc.returncode != 0 or not out_path.exists():
        return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-5:],
                "process_seconds": round(time.perf_counter() - started, 2)}
    result = json.loads(out_path.read_text())
    result["process_seconds"] = round(time.perf_counter() - started, 2)
    return result


def bench_scale(series: int, args, base: Path) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{series}-", dir=base))
    spec = {"workdir": str(workdir), "series": series, "days": args.days, "end": args.end,
            "repeats": args.repeats, "calls": args.calls, "reference_repeats": args.reference_repeats,
            "mask": series <= args.mask_max_series, "engines": ["loky", "threading"]}
    stages = list(STAGE_ORDER)
    if args.skip_reference:
        stages.remove("reference")
    if args.parallel:
        stages.append("parallel")
    results: dict = {"series": series, "days": args.days}
    try:
        for stage in stages:
            print(f"  {series:>6} series: {stage} ...", end="", flush=True)
            result = run_stage(stage, spec, args.stage_timeout, args.in_process)
            results[stage] = result
            if stage == "prepare" and "rows" in result:
                spec["rows"] = results["rows"] = result["rows"]
            error = f"  ERROR {result['error']}" if "error" in result else ""
            print(f" {result.get('process_seconds', '?')}s{error}")
            if stage == "prepare" and "error" in result:
                break
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return results


def bench_pipeline(args, base: Path) -> dict:
    """``scripts/run_pipeline.sh`` twice on a fresh runs/data/cache folder: first run, then a re-run."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-pipeline-", dir=base))
    env = {**os.environ, "POKEWATCH_RUNS_DIR": str(workdir / "runs"), "POKEWATCH_DATA_DIR": str(workdir / "data"),
           "POKEWATCH_CACHE_DIR": str(workdir / "cache"), "TQDM_DISABLE": "1"}
    command = ["bash", str(ROOT / "scripts" / "run_pipeline.sh"), "--date", args.pipeline_date, "--force-train",
               "--param", f"n_series={args.pipeline_series}", "--param", f"history_days={args.days}",
               "--param", f"train_days={args.days}", "--param", f"eval_days={args.days}"]
    out = {"series": args.pipeline_series, "days": args.days, "date": args.pipeline_date, "command": command}
    try:
        for label in ("first_run", "rerun"):
            print(f"  pipeline {label} ...", end="", flush=True)
            started = time.perf_counter()
            proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                                  timeout=args.stage_timeout)
            seconds = time.perf_counter() - started
            steps = [line.split("pipeline: ", 1)[1] for line in proc.stderr.splitlines() if "step " in line
                     and "done in" in line]
            out[label] = {"seconds": round(seconds, 2), "exit_status": proc.returncode, "steps": steps}
            if proc.returncode != 0:
                out[label]["stderr_tail"] = proc.stderr.strip().splitlines()[-15:]
            print(f" {seconds:.1f}s (exit {proc.returncode})")
            out[label]["slowest_cells"] = _slowest_cells(workdir / "runs" / "latest")
        manifest_path = workdir / "runs" / "latest" / "manifest.json"
        if manifest_path.exists():
            manifest = json.loads(manifest_path.read_text())
            out["rerun"]["manifest_steps"] = manifest.get("steps", {})
    except subprocess.TimeoutExpired:
        out["error"] = f"timed out after {args.stage_timeout:.0f}s"
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return out


def _slowest_cells(run_dir: Path, n: int = 8) -> list[dict]:
    """The slowest notebook cells of a run (papermill records each cell's duration)."""
    cells = []
    for notebook in ("collect", "train", "evaluate"):
        path = run_dir / f"{notebook}.ipynb"
        if not path.exists():
            continue
        for cell in json.loads(path.read_text()).get("cells", []):
            seconds = (cell.get("metadata", {}).get("papermill", {}) or {}).get("duration")
            if cell.get("cell_type") == "code" and seconds:
                first = next((line for line in "".join(cell["source"]).splitlines()
                              if line.strip() and not line.startswith("#")), "")
                cells.append({"notebook": notebook, "seconds": round(seconds, 2), "cell": first.strip()[:90]})
    return sorted(cells, key=lambda c: -c["seconds"])[:n]


def parse_args(argv: list[str] | None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("--scales", default="1000,5000,20000,45000",
                        help="comma-separated numbers of series (default 1000,5000,20000,45000)")
    parser.add_argument("--days", type=int, default=730, help="days of history per series (default 730)")
    parser.add_argument("--end", default="2026-11-27", help="last simulated day (default 2026-11-27)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats of each timed stage (default 5)")
    parser.add_argument("--calls", type=int, default=10_000, help="distinct predict calls (default 10000)")
    parser.add_argument("--reference-repeats", type=int, default=1, help="repeats of the reference loop (default 1)")
    parser.add_argument("--mask-max-series", type=int, default=1000,
                        help="also time the boolean-mask loop up to this many series (default 1000)")
    parser.add_argument("--skip-reference", action="store_true", help="do not time the reference loop")
    parser.add_argument("--parallel", action="store_true", help="also time the loky and threading shard engines")
    parser.add_argument("--pipeline", action="store_true", help="also time scripts/run_pipeline.sh end to end")
    parser.add_argument("--pipeline-series", type=int, default=20_000, help="series for --pipeline (default 20000)")
    parser.add_argument("--pipeline-date", default="2021-12-31",
                        help="run date for --pipeline (default 2021-12-31: its --days window starts at the demo "
                             "market's 2020-01-01 epoch, so no earlier years are simulated)")
    parser.add_argument("--stage-timeout", type=float, default=1800, help="seconds before a stage is stopped")
    parser.add_argument("--out", type=Path, default=ROOT / "docs",
                        help="folder for performance.json, .md and .png (default docs/)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the temporary stores go (default $TMPDIR)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary stores")
    parser.add_argument("--in-process", action="store_true",
                        help="run the stages in this process (fast smoke test; peak memory is then not per stage)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scales = [int(s) for s in args.scales.split(",") if s.strip()]
    base = args.workdir or Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    from benchmarks import report

    results = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": {
        "cpus": os.cpu_count(), "load_average_at_start": os.getloadavg(), "platform": platform.platform()},
        "versions": _versions(), "git_commit": _git_commit(), "settings": {
            "days": args.days, "end": args.end, "repeats": args.repeats, "calls": args.calls}, "scales": []}
    for series in scales:
        print(f"scale {series:,} series x {args.days} days")
        results["scales"].append(bench_scale(series, args, base))
    if args.pipeline:
        print(f"pipeline {args.pipeline_series:,} series x {args.days} days")
        results["pipeline"] = bench_pipeline(args, base)
    results["machine"]["load_average_at_end"] = os.getloadavg()
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    args.out.mkdir(parents=True, exist_ok=True)
    paths = report.write(results, args.out)
    print(report.table(results))
    for path in paths:
        print(f"wrote {path}")
    failed = [s["series"] for s in results["scales"] for k, v in s.items() if isinstance(v, dict) and "error" in v]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
