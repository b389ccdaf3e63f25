"""The price store at catalogue scale, side by side with another checkout: backfill, daily add, load.

Why a separate benchmark: the store's costs grow with the history, not with start-up, so
they need a full-size store (45,000 series x 730 days, 32 million rows), which takes
minutes to build on a shared machine. This script builds it once per checkout (by the
730-day demo backfill it measures) and reuses it for every other case.

Every case runs in a fresh interpreter of the checkout being measured (its own
``.venv/bin/python`` with ``PYTHONPATH`` set to the checkout), so the same script
measures this branch and, say, today's main in one run. Peak memory is the process's
``VmHWM`` after ``clear_refs`` (:class:`benchmarks.stages.PeakMemory`, loaded from this
folder so both columns use the same meter), reset just before the measured work.

=============  =============================================================================
case           what is timed
=============  =============================================================================
backfill       ``collect("demo", ...)`` of ``--days`` days into an empty store (the 730-day backfill)
demo_collect   the demo's first run: ``--history-days`` + 1 days into an empty store
add_day        the day after the backfill into a copy of the backfilled store: ``write_days``
               of the validated day, and the whole ``collect`` (which simulates the market too)
cron           ``--cron-days`` successive days into one copy, one process per day; then the
               merge of all its parts into one base (the rare day a write does that)
load           ``load_frame`` of the whole history and of the last 365 days, ``load`` of 365 days,
               on the backfilled store and on the store after the cron days
=============  =============================================================================

Example (this worktree beside today's main, already set up in /work/ref)::

    .venv/bin/python -m benchmarks.store_bench --checkout branch=. --checkout main=/work/ref \\
        --workdir /tmp/storebench --out /tmp/storebench/store_bench.json
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

# Run as a script in the other checkout's python (-P, its PYTHONPATH): compat sits beside this file.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from compat import pokewatch_module  # noqa: E402

HERE = Path(__file__).resolve()
FIRST_DAY = "2020-01-01"  # the demo market's epoch: a window from here simulates no earlier years


# -- the measuring side (runs inside the checkout's interpreter) ---------------------------------
def _meter():
    spec = importlib.util.spec_from_file_location("pokewatch_bench_stages", HERE.parent / "stages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PeakMemory()


def _day(offset: int) -> str:
    import pandas as pd

    return f"{pd.Timestamp(FIRST_DAY) + pd.Timedelta(days=offset):%Y-%m-%d}"


def stage_collect(spec: dict, memory) -> dict:
    """A demo collect of [start, end] into ``spec['store']``."""
    collect = pokewatch_module("run.collect").collect
    PriceStore = pokewatch_module("data.store").PriceStore

    store = PriceStore(Path(spec["store"]))
    memory.reset()
    started = time.perf_counter()
    result = collect("demo", spec["start"], spec["end"], spec["run_dir"], options={"n_series": spec["series"]},
                     store=store)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_bytes": memory.peak(), "days": len(result.stored),
            "rows": int(sum(result.stored.values()))}


def stage_daygen(spec: dict, memory) -> dict:
    """The demo market's days after the backfill, validated, saved for the add cases (untimed)."""
    demo_prices = pokewatch_module("data.demo_market").demo_prices
    validate_observations = pokewatch_module("core.schema").validate_observations

    frame = validate_observations(demo_prices(spec["start"], spec["end"], n_series=spec["series"])).valid
    frame.to_parquet(spec["days_file"], index=False)
    return {"rows": len(frame)}


def stage_write_day(spec: dict, memory) -> dict:
    """``write_days`` of one pre-generated, validated day (what collect hands the store)."""
    import pandas as pd

    conform = pokewatch_module("core.schema").conform
    PriceStore = pokewatch_module("data.store").PriceStore

    day = pd.read_parquet(spec["days_file"], filters=[("date", "==", pd.Timestamp(spec["day"]))])
    day = conform(day)
    store = PriceStore(Path(spec["store"]))
    memory.reset()
    started = time.perf_counter()
    store.write_days("demo", day)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_bytes": memory.peak(), "rows": len(day)}


def stage_load(spec: dict, memory) -> dict:
    """``load_frame`` (what the steps use) and ``load`` (the string table) of the stored history."""
    import pandas as pd

    PriceStore = pokewatch_module("data.store").PriceStore

    store = PriceStore(Path(spec["store"]))
    store.load_frame("demo")  # bring the compacted history in step first (not what is timed)
    end = max(store.dates("demo"))
    recent = f"{end - pd.Timedelta(days=364):%Y-%m-%d}"
    out = {}
    memory.reset()
    for label, start in (("load_frame_all", None), ("load_frame_365", recent)):
        times = []
        for _ in range(spec["repeats"]):
            started = time.perf_counter()
            frame = store.load_frame("demo", start, None)
            times.append(time.perf_counter() - started)
            out[f"{label}_rows"] = len(frame)
            del frame
        out[label] = times
    out["load_frame_peak_bytes"] = memory.peak()
    memory.reset()
    out["load_365"] = []
    for _ in range(spec["repeats"]):
        started = time.perf_counter()
        table = store.load("demo", recent, None)
        out["load_365"].append(time.perf_counter() - started)
        out["load_365_rows"] = len(table)
        del table
    out["load_peak_bytes"] = memory.peak()
    return out


def stage_compact(spec: dict, memory) -> dict:
    """Merge the whole compacted history into one base: the rare day a write does that (None without segments)."""
    PriceStore = pokewatch_module("data.store").PriceStore

    store = PriceStore(Path(spec["store"]))
    if not hasattr(store, "compact"):
        return {"seconds": None, "peak_bytes": None}
    store.compacted("demo")
    memory.reset()
    started = time.perf_counter()
    store.compact("demo")
    return {"seconds": time.perf_counter() - started, "peak_bytes": memory.peak()}


STAGES = {name[len("stage_"):]: func for name, func in globals().items() if name.startswith("stage_")}


def _stage_main(argv: list[str]) -> int:
    stage, spec_path, out_path = argv
    spec = json.loads(Path(spec_path).read_text())
    memory = _meter()
    result = STAGES[stage](spec, memory)
    result["memory_method"] = memory.method
    Path(out_path).write_text(json.dumps(result, default=str))
    return 0


# -- the driving side -----------------------------------------------------------------------------
class Checkout:
    """A source tree with its own .venv, measured by running this file with its interpreter."""

    def __init__(self, label: str, root: Path, workdir: Path) -> None:
        self.label, self.root = label, root.resolve()
        self.python = self.root / ".venv" / "bin" / "python"
        if not self.python.exists():
            raise SystemExit(f"{self.python} is missing: run `make setup` in {self.root} first")
        self.work = workdir / label
        self.work.mkdir(parents=True, exist_ok=True)

    def run(self, stage: str, spec: dict, timeout: float) -> dict:
        name = f"{stage}-{time.monotonic_ns()}"
        spec_path, out_path = self.work / f"{name}.spec.json", self.work / f"{name}.out.json"
        spec_path.write_text(json.dumps(spec))
        env = {**os.environ, "PYTHONPATH": str(self.root), "TQDM_DISABLE": "1",
               "POKEWATCH_DATA_DIR": str(self.work / "data"), "POKEWATCH_CACHE_DIR": str(self.work / "cache"),
               "POKEWATCH_RUNS_DIR": str(self.work / "runs")}
        started = time.perf_counter()
        proc = subprocess.run([str(self.python), str(HERE), "--stage", stage, str(spec_path), str(out_path)],
                              cwd=self.root, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"{self.label} {stage} failed:\n{proc.stderr[-3000:]}")
        result = json.loads(out_path.read_text())
        result["process_seconds"] = time.perf_counter() - started
        spec_path.unlink()
        out_path.unlink()
        return result

    def fresh_copy(self, source: Path, name: str) -> Path:
        """A hard-linked copy of a store (every store file is replaced by rename, never edited in place)."""
        target = self.work / name
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run(["cp", "-al", str(source), str(target)], check=True)
        return target


def _stats(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values),
            "values": [round(v, 4) for v in values]}


def measure(checkout: Checkout, args, days_file: Path) -> dict:
    out: dict = {"root": str(checkout.root)}
    timeout = args.timeout
    backfilled = checkout.work / "store-backfilled"
    last = args.days - 1
    if args.rebuild or not (backfilled / "demo").is_dir():
        shutil.rmtree(backfilled, ignore_errors=True)
        print(f"  {checkout.label}: backfill {args.days} days x {args.series} series ...", flush=True)
        out["backfill"] = checkout.run("collect", {"store": str(backfilled), "run_dir": str(checkout.work / "run-bf"),
                                                   "start": _day(0), "end": _day(last), "series": args.series},
                                       timeout)
        (checkout.work / "backfill.json").write_text(json.dumps(out["backfill"]))
    elif (checkout.work / "backfill.json").exists():
        out["backfill"] = json.loads((checkout.work / "backfill.json").read_text())
    if "demo_collect" in args.cases:
        print(f"  {checkout.label}: demo first-run collect ...", flush=True)
        runs = []
        for i in range(args.collect_repeats):
            store = checkout.work / "store-demo-collect"
            shutil.rmtree(store, ignore_errors=True)
            runs.append(checkout.run("collect", {"store": str(store), "run_dir": str(checkout.work / f"run-dc{i}"),
                                                 "start": _day(max(0, last - args.history_days)), "end": _day(last),
                                                 "series": args.series}, timeout))
            shutil.rmtree(store, ignore_errors=True)
        out["demo_collect"] = {"seconds": _stats([r["seconds"] for r in runs]),
                               "peak_bytes": _stats([r["peak_bytes"] for r in runs]), "rows": runs[0]["rows"]}
    if "load" in args.cases:
        print(f"  {checkout.label}: load the backfilled store ...", flush=True)
        out["load_backfilled"] = checkout.run("load", {"store": str(backfilled), "repeats": args.repeats}, timeout)
    if "add_day" in args.cases:
        print(f"  {checkout.label}: add one day ({args.repeats} repeats) ...", flush=True)
        writes, collects = [], []
        for i in range(args.repeats):
            store = checkout.fresh_copy(backfilled, "store-add")
            writes.append(checkout.run("write_day", {"store": str(store), "day": _day(last + 1),
                                                     "days_file": str(days_file)}, timeout))
            store = checkout.fresh_copy(backfilled, "store-add")
            collects.append(checkout.run("collect", {"store": str(store), "run_dir": str(checkout.work / f"run-a{i}"),
                                                     "start": _day(last + 1), "end": _day(last + 1),
                                                     "series": args.series}, timeout))
        shutil.rmtree(checkout.work / "store-add", ignore_errors=True)
        out["add_day_write"] = {"seconds": _stats([r["seconds"] for r in writes]),
                                "peak_bytes": _stats([r["peak_bytes"] for r in writes]), "rows": writes[0]["rows"]}
        out["add_day_collect"] = {"seconds": _stats([r["seconds"] for r in collects]),
                                  "peak_bytes": _stats([r["peak_bytes"] for r in collects])}
    if "cron" in args.cases and args.cron_days:
        print(f"  {checkout.label}: {args.cron_days} successive days ...", flush=True)
        store = checkout.fresh_copy(backfilled, "store-cron")
        runs = [checkout.run("write_day", {"store": str(store), "day": _day(last + 1 + i),
                                           "days_file": str(days_file)}, timeout) for i in range(args.cron_days)]
        out["cron"] = {"seconds": _stats([r["seconds"] for r in runs]),
                       "peak_bytes": _stats([r["peak_bytes"] for r in runs])}
        if "load" in args.cases:
            out["load_after_cron"] = checkout.run("load", {"store": str(store), "repeats": args.repeats}, timeout)
        merge = checkout.run("compact", {"store": str(store)}, timeout)
        if merge["seconds"] is not None:
            out["base_merge"] = merge
        shutil.rmtree(store, ignore_errors=True)
    return out


def _fmt_seconds(stats: dict | None) -> str:
    if not stats:
        return "n/a"
    if stats["n"] == 1:
        return f"{stats['median']:.2f} s"
    return f"{stats['median']:.2f} s ({stats['min']:.2f}-{stats['max']:.2f})"


def _fmt_bytes(stats) -> str:
    if stats is None:
        return "n/a"
    if isinstance(stats, (int, float)):
        return f"{stats / 1e9:.2f} GB"
    if stats["n"] == 1:
        return f"{stats['median'] / 1e9:.2f} GB"
    return f"{stats['median'] / 1e9:.2f} GB ({stats['min'] / 1e9:.2f}-{stats['max'] / 1e9:.2f})"


def rows_of(result: dict, settings: dict) -> list[tuple[str, str, str]]:
    """(what, time, peak) rows of one checkout's results."""
    rows = []
    if "backfill" in result:
        b = result["backfill"]
        rows.append((f"{settings['days']}-day demo backfill (collect)", f"{b['seconds']:.1f} s",
                     _fmt_bytes(b["peak_bytes"])))
    if "demo_collect" in result:
        d = result["demo_collect"]
        rows.append((f"demo first-run collect ({settings['history_days'] + 1} days)", _fmt_seconds(d["seconds"]),
                     _fmt_bytes(d["peak_bytes"])))
    for key, what in (("add_day_write", "add one day: write_days"), ("add_day_collect", "add one day: whole collect"),
                      ("cron", "successive days: write_days each")):
        if key in result:
            rows.append((what, _fmt_seconds(result[key]["seconds"]), _fmt_bytes(result[key]["peak_bytes"])))
    if "base_merge" in result:
        merge = result["base_merge"]
        rows.append(("the rare day the segments merge into the base", f"{merge['seconds']:.2f} s",
                     _fmt_bytes(merge["peak_bytes"])))
    for key, what in (("load_backfilled", "after the backfill"), ("load_after_cron", "after the successive days")):
        if key in result:
            load = result[key]
            rows.append((f"load_frame, all days, {what}", _fmt_seconds(_stats(load["load_frame_all"])),
                         _fmt_bytes(load["load_frame_peak_bytes"])))
            rows.append((f"load_frame, last 365 days, {what}", _fmt_seconds(_stats(load["load_frame_365"])), ""))
            rows.append((f"load (strings), last 365 days, {what}", _fmt_seconds(_stats(load["load_365"])),
                         _fmt_bytes(load["load_peak_bytes"])))
    return rows


def table(results: dict) -> str:
    labels = list(results["checkouts"])
    by_label = {label: {what: (t, p) for what, t, p in rows_of(results["checkouts"][label], results["settings"])}
                for label in labels}
    whats = list(dict.fromkeys(what for label in labels for what in by_label[label]))
    header = "| case | " + " | ".join(f"{label} time | {label} peak" for label in labels) + " |"
    lines = [header, "|" + "---|" * (1 + 2 * len(labels))]
    for what in whats:
        cells = []
        for label in labels:
            t, p = by_label[label].get(what, ("n/a", "n/a"))
            cells += [t, p]
        lines.append(f"| {what} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--stage"]:
        return _stage_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m benchmarks.store_bench", description=__doc__.split("\n\n")[0],
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkout", action="append", default=[], metavar="LABEL=PATH",
                        help="a checkout to measure (repeatable; default: this one as 'branch')")
    parser.add_argument("--series", type=int, default=45_000, help="series in the demo market (default 45000)")
    parser.add_argument("--days", type=int, default=730, help="days of the backfilled history (default 730)")
    parser.add_argument("--history-days", type=int, default=365, help="demo first-run history (default 365)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the add and load cases (default 3)")
    parser.add_argument("--collect-repeats", type=int, default=1, help="repeats of the demo first run (default 1)")
    parser.add_argument("--cron-days", type=int, default=10, help="successive days added in the cron case")
    parser.add_argument("--cases", default="demo_collect,add_day,cron,load",
                        help="comma-separated cases besides the backfill (default demo_collect,add_day,cron,load)")
    parser.add_argument("--workdir", type=Path, required=True, help="where the stores are built and kept")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the backfilled stores even if present")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds before a case is stopped")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    args.cases = {c.strip() for c in args.cases.split(",") if c.strip()}
    args.workdir.mkdir(parents=True, exist_ok=True)
    checkouts = []
    for item in args.checkout or [f"branch={HERE.parents[1]}"]:
        label, _, path = item.partition("=")
        checkouts.append(Checkout(label, Path(path), args.workdir))
    days_file = args.workdir / f"days-{args.series}.parquet"
    span = max(args.repeats, args.cron_days, 1)
    if not days_file.exists():
        print(f"generating {span} day(s) after the backfill ...", flush=True)
        checkouts[-1].run("daygen", {"start": _day(args.days), "end": _day(args.days + span - 1),
                                     "series": args.series, "days_file": str(days_file)}, args.timeout)
    results = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "load_average_at_start": os.getloadavg(),
               "settings": {"series": args.series, "days": args.days, "history_days": args.history_days,
                            "repeats": args.repeats,
                            "cron_days": args.cron_days}, "checkouts": {}}
    for checkout in checkouts:
        print(f"{checkout.label}: {checkout.root}", flush=True)
        results["checkouts"][checkout.label] = measure(checkout, args, days_file)
        if args.out:
            args.out.write_text(json.dumps(results, indent=2, default=str))
    results["load_average_at_end"] = os.getloadavg()
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, default=str))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
