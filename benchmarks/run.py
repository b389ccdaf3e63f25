"""Measure PokeWatch end to end and at catalogue scale, side by side with another checkout, in one run.

Cases (``--cases``, all by default but ``stages``), each run for this checkout and for
the checkout at ``--ref`` (today's main, with its own python and ``PYTHONPATH``):

==========  =====================================================================
demo        ``scripts/run_pipeline.sh`` on the demo market after set-up (fresh folders each repeat)
rerun       a first run and identical re-runs of one day at ``--rerun-series`` series x 730 days
backfill    the 18 real tcgcsv days in ``../shared``: first runs (fresh folders) and re-runs, run folder size
daily       at each ``--daily-scales``: a first run for the day before (cold walk-forward), then the daily
            run (one more day collected, warm); peak memory of every kernel, evaluate's cells
kernels     at the same scales, on identical arrays: fair value + signal of each checkout, the plain
            single-pass loop, the memory-traffic floor, the per-card groupby loop
stages      (this checkout only) the micro stages of :mod:`benchmarks.stages` at ``--scales``
==========  =====================================================================

Every pipeline run is broken down per step (:mod:`benchmarks.pipeline_cases`);
every figure is the median of ``--repeats`` with min and max, and every ratio is
median against median of the same run. Results go to ``--out`` as
``performance.json`` (every repeat), ``performance.md`` and ``performance.png``.

Examples:
    .venv/bin/python -m benchmarks --ref /work/ref                      # everything, 3 repeats
    .venv/bin/python -m benchmarks --ref /work/ref --cases demo,kernels --daily-scales 20000
    .venv/bin/python -m benchmarks --cases demo --repeats 1 --out /tmp/bench   # this checkout alone
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
DEFAULT_CASES = ("demo", "rerun", "backfill", "daily", "kernels")
ALL_CASES = (*DEFAULT_CASES, "stages")
SHARED_ARCHIVES = ROOT.parent / "shared" / "data" / "tcgcsv-archives"


def _versions(python: str | Path = sys.executable) -> dict:
    code = ("import json, platform, numba, numpy, pandas, pyarrow; print(json.dumps({'python': "
            "platform.python_version(), 'numpy': numpy.__version__, 'pandas': pandas.__version__, "
            "'pyarrow': pyarrow.__version__, 'numba': numba.__version__}))")
    try:
        return json.loads(subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                                         timeout=120).stdout)
    except (OSError, ValueError, subprocess.SubprocessError):
        return {}


def _git_commit() -> str | None:
    from benchmarks.pipeline_cases import git_commit

    return git_commit(ROOT)


# -- the micro stages of this checkout (benchmarks.stages) -------------------------------------------
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


# -- the side-by-side cases ------------------------------------------------------------------------
def checkouts(args) -> list:
    """This checkout, and the one at ``--ref`` when given (the reference column comes first)."""
    from benchmarks.pipeline_cases import Checkout

    own = Checkout.at("this checkout", ROOT, own=True)
    if not args.ref:
        return [own]
    ref = Checkout.at(args.ref_name, args.ref)
    if ref.root == own.root:
        raise SystemExit(f"--ref {args.ref} is this checkout; give another one (for example today's main)")
    return [ref, own]


def run_cases(args, base: Path, results: dict, save) -> None:
    from benchmarks import kernel_cases, pipeline_cases as pc

    columns = checkouts(args)
    results["checkouts"] = [c.describe() for c in columns]
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    pipeline_cases = [c for c in cases if c in ("demo", "rerun", "backfill", "daily")]
    stores: dict[int, Path] = {}
    for checkout in columns:
        work = base / ("own" if checkout.own else "ref")
        work.mkdir(parents=True, exist_ok=True)
        entry = results["cases"].setdefault(checkout.name, {})
        if pipeline_cases or "kernels" in cases:
            entry["warm_up"] = pc.warm_up(checkout, work, args.stage_timeout)["breakdown"]
        for case in pipeline_cases:
            print(f"{case}: {checkout.name}", flush=True)
            try:
                if case == "demo":
                    entry["demo"] = pc.case_demo(checkout, work, args.repeats, args.stage_timeout)
                elif case == "rerun":
                    entry["rerun"] = pc.case_rerun(checkout, work, args.repeats, args.stage_timeout,
                                                   series=args.rerun_series)
                elif case == "backfill":
                    if not args.archives.is_dir():
                        entry["backfill"] = {"skipped": f"{args.archives} is not a folder (../shared absent)"}
                        continue
                    entry["backfill"] = pc.case_backfill(checkout, work, args.repeats, args.stage_timeout,
                                                         args.archives)
                elif case == "daily":
                    for series in args.daily_scales:
                        daily = pc.case_daily(checkout, work, args.repeats, args.stage_timeout, series)
                        entry.setdefault("daily", {})[str(series)] = daily
                        if checkout.own:
                            stores[series] = Path(daily["store"])
            except Exception as exc:  # one case failing must not lose the others
                entry[case] = {"error": f"{type(exc).__name__}: {exc}"}
            save()
    if "kernels" in cases:
        for series in args.daily_scales:
            print(f"kernels: {series:,} series", flush=True)
            work = base / f"kernels-{series}"
            work.mkdir(parents=True, exist_ok=True)
            try:
                store = stores.get(series) or _collected_store(columns[-1], work, series, args.stage_timeout)
                results["kernels"][str(series)] = kernel_cases.case_kernels(
                    columns, store, work, args.kernel_repeats, args.reference_repeats, args.stage_timeout)
            except Exception as exc:
                results["kernels"][str(series)] = {"error": f"{type(exc).__name__}: {exc}"}
            save()


def _collected_store(checkout, work: Path, series: int, timeout: float) -> Path:
    """A stored demo history of ``series`` x 730 days, collected by this checkout's collect notebook alone."""
    import os

    data = work / "data"
    env = {**checkout.env(work), "POKEWATCH_DATA_DIR": str(data), "POKEWATCH_RUNS_DIR": str(work / "runs"),
           "POKEWATCH_CACHE_DIR": str(work / "cache")}
    out = work / "collect.ipynb"
    command = [str(checkout.python), "-m", "papermill", "--log-level", "WARNING", "--no-progress-bar",
               str(checkout.root / "notebooks" / "collect.ipynb"), str(out), "-p", "run_date", "2021-12-31",
               "-p", "n_series", str(series), "-p", "history_days", "729", "-p", "run_dir", str(work / "run"),
               "--cwd", str(checkout.root / "notebooks")]
    print(f"  collecting {series:,} series x 730 days for the kernels", flush=True)
    proc = subprocess.run(command, cwd=checkout.root, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError("collect failed: " + "\n".join(proc.stderr.splitlines()[-8:]))
    return data / "store"


def parse_args(argv: list[str] | None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("--ref", type=Path, default=os.environ.get("POKEWATCH_BENCH_REF") or None,
                        help="checkout to measure beside this one, with its own .venv (default "
                             "$POKEWATCH_BENCH_REF; none: this checkout alone)")
    parser.add_argument("--ref-name", default="today's main", help="column label of --ref (default: today's main)")
    parser.add_argument("--cases", default=",".join(DEFAULT_CASES),
                        help=f"comma-separated cases out of {', '.join(ALL_CASES)} (default all but stages)")
    parser.add_argument("--pipeline", action="store_true",
                        help="run the pipeline cases (demo, rerun, backfill, daily); they are in the default --cases")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each timed run (default 3)")
    parser.add_argument("--rerun-series", type=int, default=20_000, help="series of the re-run case (default 20000)")
    parser.add_argument("--daily-scales", default="20000,45000",
                        help="series of the daily and kernels cases (default 20000,45000)")
    parser.add_argument("--kernel-repeats", type=int, default=7, help="repeats of each kernel timing (default 7)")
    parser.add_argument("--archives", type=Path, default=SHARED_ARCHIVES,
                        help="tcgcsv archives of the backfill case (default ../shared/data/tcgcsv-archives)")
    parser.add_argument("--scales", default="20000,45000",
                        help="series of the stages case (default 20000,45000)")
    parser.add_argument("--days", type=int, default=730, help="days of history in the stages case (default 730)")
    parser.add_argument("--end", default="2026-11-27", help="last simulated day of the stages case")
    parser.add_argument("--calls", type=int, default=10_000, help="distinct predict calls (default 10000)")
    parser.add_argument("--reference-repeats", type=int, default=3,
                        help="repeats of the per-card groupby loop (default 3)")
    parser.add_argument("--mask-max-series", type=int, default=1000,
                        help="stages case: also time the boolean-mask loop up to this many series (default 1000)")
    parser.add_argument("--skip-reference", action="store_true", help="stages case: do not time the reference loop")
    parser.add_argument("--parallel", action="store_true", help="stages case: also time the loky and thread engines")
    parser.add_argument("--stage-timeout", type=float, default=3600, help="seconds before a run is stopped")
    parser.add_argument("--out", type=Path, default=ROOT / "docs",
                        help="folder for performance.json, .md and .png (default docs/)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the temporary folders go (default $TMPDIR)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    parser.add_argument("--prefault-gb", type=float, default=None,
                        help="touch this much memory once before measuring (default: all but 3 GB of what is "
                             "available; 0 skips it), see _prefault")
    parser.add_argument("--in-process", action="store_true",
                        help="stages case: run the stages in this process (smoke test; peaks are then not per stage)")
    args = parser.parse_args(argv)
    args.daily_scales = [int(s) for s in args.daily_scales.split(",") if s.strip()]
    unknown = sorted(set(c.strip() for c in args.cases.split(",") if c.strip()) - set(ALL_CASES))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(ALL_CASES)}")
    return args


def _prefault(gigabytes: float | None) -> float:
    """Touch ``gigabytes`` of fresh memory once, in a child process; returns the seconds it took.

    Why: on this kind of virtual machine the first write to a page the host does not
    back costs 1-3 ms per MB, 4 to 10 times what a backed page costs, and the
    host backs guest memory lazily. Touching memory once here backs it, but freed guest
    memory goes back to the host within seconds (``python -m benchmarks.first_touch``
    measures how fast), so this only evens out the first case's start: later processes
    pay for their fresh arrays by the megabyte on either checkout.
    """
    if gigabytes is None:
        try:
            available = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                             if line.startswith("MemAvailable:")) / 2**20
        except (OSError, StopIteration, ValueError):
            return 0.0
        gigabytes = max(0.0, available - 3.0)
    if gigabytes <= 0:
        return 0.0
    started = time.perf_counter()
    touch_and_free(gigabytes, check=False)
    return time.perf_counter() - started


def touch_and_free(gigabytes: float, *, check: bool = True) -> None:
    """Write ``gigabytes`` of fresh memory in a child process (256 MB at a time), which then exits and frees it."""
    n, chunk = int(gigabytes * 2**30) // 8, 2**25
    code = (f"import numpy as np\nheld = [np.ones({chunk}) for _ in range({n // chunk})]\n"
            f"held.append(np.ones({n % chunk}))\n")
    subprocess.run([sys.executable, "-c", code], check=check, timeout=1800)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    prefault_seconds = _prefault(args.prefault_gb)
    base = Path(tempfile.mkdtemp(prefix="pokewatch-bench-", dir=args.workdir))
    sys.path.insert(0, str(ROOT))
    from benchmarks import report

    results = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": {
        "cpus": os.cpu_count(), "load_average_at_start": os.getloadavg(), "platform": platform.platform()},
        "versions": _versions(), "git_commit": _git_commit(), "settings": {
            "repeats": args.repeats, "kernel_repeats": args.kernel_repeats, "cases": args.cases,
            "rerun_series": args.rerun_series, "daily_scales": args.daily_scales, "days": args.days,
            "end": args.end, "calls": args.calls, "reference_repeats": args.reference_repeats},
        "cases": {}, "kernels": {}, "scales": [], "load_samples": []}
    if prefault_seconds:
        how_much = "all but 3 GB of the available" if args.prefault_gb is None else f"{args.prefault_gb:g} GB of"
        results["notes"] = [f"Before measuring, the benchmark touched {how_much} memory once "
                            f"({prefault_seconds:.0f} s), so the first case does not start on memory the host has "
                            "never backed. Memory freed later goes back to the host within seconds, so each "
                            "process still pays for its fresh arrays (see \"Fresh memory on this machine\")."]
    args.out.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        results["load_samples"].append([time.strftime("%H:%M:%S"), *os.getloadavg()])
        (base / "partial.json").write_text(json.dumps(results, default=str))

    try:
        run_cases(args, base, results, save)
        if "stages" in args.cases.split(","):
            for series in [int(s) for s in args.scales.split(",") if s.strip()]:
                print(f"stages: {series:,} series x {args.days} days")
                results["scales"].append(bench_scale(series, args, base))
                save()
    finally:
        results["machine"]["load_average_at_end"] = os.getloadavg()
        results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        if args.ref:
            results["ref_versions"] = _versions(Path(args.ref) / ".venv" / "bin" / "python")
        paths = report.write(results, args.out)
        for path in paths:
            print(f"wrote {path}")
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"kept {base}")
    failed = [name for name, entry in results["cases"].items() for case in entry.values()
              if isinstance(case, dict) and "error" in case]
    return 1 if failed or any("error" in k for k in results["kernels"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
