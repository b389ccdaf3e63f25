"""Turn benchmark results into docs/performance.json, performance.md and performance.png.

``python -m benchmarks.report [docs/performance.json]`` renders the page and the plot
again from saved results (after editing the text, say) without re-running anything.
"""
from __future__ import annotations

import json
from pathlib import Path

TARGET_SCALE = 20_000
FULL_SCALE = 45_000
GB = 1e9
MB = 1e6

#: (label, stage, path into the stage's result) of the timed rows in the tables.
TIMED = [
    ("History load (`load_frame`, mapped compacted history)", "load", ("load_frame", "best")),
    ("History load as string DataFrame (`PriceStore.load`)", "load", ("load_dataframe", "best")),
    ("Fair value + signals, full history (`compute_signals`)", "signals", ("signals", "best")),
    ("Full backtest, every KPI + scored rows (`run_backtest`)", "backtest", ("backtest", "best")),
    ("Train, cold cache (11-candidate search + fit)", "train", ("train", "best")),
    ("Train re-run on unchanged data (cache hit)", "train_hit", ("train_hit", "best")),
    ("`predict_all` (every card)", "predict", ("predict_all", "best")),
    ("Reference: per-card groupby loop, rolling(3) mean", "reference", ("groupby_loop", "best")),
    ("Reference: boolean-mask loop (small scales only)", "reference", ("mask_loop", "best")),
    ("Store write: 730 daily files + compacted history", "prepare", ("write", "best")),
]
PEAKS = [("History load", "load"), ("Fair value + signals", "signals"), ("Full backtest", "backtest"),
         ("Train (cold)", "train"), ("Train re-run (hit)", "train_hit"), ("predict_all", "predict"),
         ("Reference groupby loop", "reference"), ("Store write (collect side)", "prepare")]
PIPELINE_STAGES = ("load", "signals", "backtest", "train", "train_hit", "predict")


def _get(result: dict, path: tuple):
    for key in path:
        if not isinstance(result, dict) or key not in result:
            return None
        result = result[key]
    return result


def _scale(results: dict, series: int) -> dict | None:
    return next((s for s in results.get("scales", []) if s["series"] == series), None)


def _seconds(value) -> str:
    if value is None:
        return "n/a"
    if value < 0.001:
        return f"{value * 1e6:.0f} µs"
    if value < 1:
        return f"{value * 1e3:.1f} ms"
    return f"{value:.2f} s"


def _bytes(value) -> str:
    return "n/a" if value is None else f"{value / MB:,.0f} MB"


def ratio(scale: dict) -> dict | None:
    """Fast path vs the reference loop, measured in the same run."""
    ours = _get(scale, ("signals", "signals", "best"))
    reference = _get(scale, ("reference", "groupby_loop", "best"))
    if not ours or not reference:
        return None
    return {"ours_seconds": ours, "reference_seconds": reference, "ratio": ours / reference,
            "speedup": reference / ours}


def targets(results: dict) -> list[dict]:
    """Every target of the issue with its measured value and whether it is met."""
    s = _scale(results, TARGET_SCALE) or {}
    full = _scale(results, FULL_SCALE) or {}
    r = ratio(s) if s else None
    pipeline = results.get("pipeline", {})
    warm = _get(s, ("predict", "predict", "warm")) or {}

    def row(what, target, value, limit, shown, higher_is_better=False):
        met = None if value is None else (value >= limit if higher_is_better else value <= limit)
        return {"what": what, "target": target, "measured": shown if value is not None else "not measured",
                "value": value, "met": met}

    full_peaks = [_get(full, (stage, "peak_bytes")) for stage in PIPELINE_STAGES]
    full_errors = [stage for stage in PIPELINE_STAGES if isinstance(full.get(stage), dict) and "error" in full[stage]]
    full_peak = max((p for p in full_peaks if p is not None), default=None) if full and not full_errors else None
    rows = [
        row("Fair value + signals over the full history", "≤ 0.5 s", _get(s, ("signals", "signals", "best")), 0.5,
            _seconds(_get(s, ("signals", "signals", "best")))),
        row("… speed-up over the reference loop, same run", "≥ 60×", r["speedup"] if r else None, 60,
            f"{r['speedup']:.0f}× ({_seconds(r['reference_seconds'])} vs {_seconds(r['ours_seconds'])})" if r else "",
            higher_is_better=True),
        row("Full backtest with every KPI", "≤ 2 s", _get(s, ("backtest", "backtest", "best")), 2.0,
            _seconds(_get(s, ("backtest", "backtest", "best")))),
        row("History load", "≤ 0.5 s", _get(s, ("load", "load_frame", "best")), 0.5,
            _seconds(_get(s, ("load", "load_frame", "best")))),
        row("Train re-run on unchanged data (cache overhead)", "≤ 0.1 s", _get(s, ("train_hit", "train_hit", "best")),
            0.1, f"{_seconds(_get(s, ('train_hit', 'train_hit', 'best')))} (median "
                 f"{_seconds(_get(s, ('train_hit', 'train_hit', 'median')))}, first in a fresh process "
                 f"{_seconds(_get(s, ('train_hit', 'first_in_process')))})"),
        row("Peak memory of train", "≤ 2 GB", _get(s, ("train", "peak_bytes")), 2 * GB,
            _bytes(_get(s, ("train", "peak_bytes")))),
        row("`predict` warm, p50", "≤ 5 µs", warm.get("p50_us"), 5, f"{warm.get('p50_us')} µs"),
        row("`predict` warm, p99", "≤ 50 µs", warm.get("p99_us"), 50, f"{warm.get('p99_us')} µs"),
        row("`predict_all` (20,000 cards)", "≤ 20 ms", _get(s, ("predict", "predict_all", "best")), 0.020,
            _seconds(_get(s, ("predict", "predict_all", "best")))),
        row("`scripts/run_pipeline.sh` end to end (first run)", "≤ 60 s", _get(pipeline, ("first_run", "seconds")),
            60, f"{_get(pipeline, ('first_run', 'seconds'))} s (re-run: {_get(pipeline, ('rerun', 'seconds'))} s)"),
        row("45,000 series: every stage completes, peak memory", "≤ 5 GB", full_peak, 5 * GB, _bytes(full_peak)),
    ]
    return rows


def _header(title: str, columns: list[str]) -> list[str]:
    """A markdown table's title row and its right-aligned separator row."""
    return [f"| {title} | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]


def table(results: dict) -> str:
    """Markdown: seconds (best of the repeats) of every stage at every scale."""
    scales = results.get("scales", [])
    lines = _header("Stage", [f"{s['series']:,} × {s['days']} ({(s.get('rows') or 0) / 1e6:.1f}M rows)"
                              for s in scales])
    for label, stage, path in TIMED:
        cells = []
        for s in scales:
            value = _get(s, (stage, *path))
            rows = s.get("rows")
            err = isinstance(s.get(stage), dict) and "error" in s[stage]
            if err:
                cells.append("failed")
            elif value is None:
                cells.append("–")
            else:
                rate = f" ({rows / value / 1e6:,.0f}M rows/s)" if rows and stage in ("load", "signals", "backtest",
                                                                                  "reference", "prepare") else ""
                cells.append(_seconds(value) + rate)
        if any(c != "–" for c in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    cells = []
    for s in scales:
        r = ratio(s)
        cells.append(f"**{r['speedup']:.0f}×** (ratio {r['ratio']:.4f})" if r else "–")
    lines.append("| Fast path vs reference loop, same run | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def peak_table(results: dict) -> str:
    scales = results.get("scales", [])
    lines = _header("Peak resident memory", [f"{s['series']:,}" for s in scales])
    for label, stage in PEAKS:
        cells = [_bytes(_get(s, (stage, "peak_bytes"))) for s in scales]
        if any(c != "n/a" for c in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    cells = []
    for s in scales:
        peak, before = _get(s, ("prepare", "peak_bytes")), _get(s, ("prepare", "resident_before_bytes"))
        cells.append(_bytes(peak - before) if peak and before else "n/a")
    lines.append("| … store write beyond the simulated table it was handed | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def latency_table(results: dict) -> str:
    scales = results.get("scales", [])
    lines = _header("`predict` latency (µs)", [f"{s['series']:,}" for s in scales])
    for label, path in (("cold p50 / p95 / p99", ("cold",)), ("warm p50 / p95 / p99", ("warm",))):
        cells = []
        for s in scales:
            stats = _get(s, ("predict", "predict", *path))
            cells.append(f"{stats['p50_us']:.2f} / {stats['p95_us']:.2f} / {stats['p99_us']:.2f}" if stats else "–")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    cells = [f"{_get(s, ('predict', 'predict', 'first_call_us')):.0f}" if _get(s, ("predict", "predict")) else "–"
             for s in scales]
    lines.append("| first call after loading the model | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def growth_table(results: dict) -> str:
    """Seconds per million rows at each scale: flat means linear growth."""
    scales = [s for s in results.get("scales", []) if s.get("rows")]
    lines = _header("Seconds per million rows", [f"{s['series']:,}" for s in scales])
    for label, stage, path in TIMED[:4] + [TIMED[4], TIMED[7]]:
        cells = []
        for s in scales:
            value = _get(s, (stage, *path))
            cells.append("–" if value is None else f"{value / (s['rows'] / 1e6):.4f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> Path:
    from matplotlib.figure import Figure

    scales = [s for s in results.get("scales", []) if s.get("rows")]
    fig = Figure(figsize=(11, 4.4))
    ax_time, ax_mem = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    rows = [s["rows"] / 1e6 for s in scales]
    for label, stage, path_ in TIMED[:8]:
        if "mask" in path_[0] or "DataFrame" in label:
            continue
        values = [_get(s, (stage, *path_)) for s in scales]
        points = [(r, v) for r, v in zip(rows, values) if v]
        if points:
            ax_time.plot(*zip(*points), marker="o", label=label.split(" (")[0].replace("`", ""))
    if rows:
        guide = [rows[0], rows[-1]]
        first = _get(scales[0], ("reference", "groupby_loop", "best"))
        if first:
            ax_time.plot(guide, [first, first * rows[-1] / rows[0]], ls=":", color="grey", label="∝ rows (linear)")
    ax_time.set_xscale("log")
    ax_time.set_yscale("log")
    ax_time.set_xlabel("rows (millions)")
    ax_time.set_ylabel("seconds (best of repeats)")
    ax_time.set_title("time per stage", fontsize=10)
    ax_time.grid(alpha=0.3, which="both")
    ax_time.legend(fontsize=6.5, loc="upper left")
    for label, stage in PEAKS[:7]:
        values = [_get(s, (stage, "peak_bytes")) for s in scales]
        points = [(r, v / GB) for r, v in zip(rows, values) if v]
        if points:
            ax_mem.plot(*zip(*points), marker="o", label=label)
    ax_mem.axhline(2, color="#d73027", ls="--", lw=0.8, label="train target 2 GB (at 20,000 series)")
    ax_mem.axhline(5, color="#7f0000", ls="--", lw=0.8, label="45k target 5 GB")
    ax_mem.set_xlabel("rows (millions)")
    ax_mem.set_ylabel("peak resident memory (GB)")
    ax_mem.set_title("peak memory per stage (own process)", fontsize=10)
    ax_mem.grid(alpha=0.3)
    ax_mem.legend(fontsize=6.5, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _pipeline_section(results: dict) -> str:
    p = results.get("pipeline")
    if not p:
        return "Not measured in this run (`python -m benchmarks --pipeline`)."
    lines = [f"`{' '.join(p['command'][1:]).replace(str(Path(p['command'][1]).parents[1]) + '/', '')}` with "
             f"runs, data and cache in a fresh temporary folder:", "",
             "| Run | Seconds | Exit | Steps (as the script logs them) |", "|---|---:|---:|---|"]
    for label in ("first_run", "rerun"):
        r = p.get(label)
        if r:
            lines.append(f"| {label.replace('_', ' ')} | {r['seconds']} | {r['exit_status']} | "
                         f"{'; '.join(s.replace('step ', '') for s in r['steps'])} |")
    slow = _get(p, ("first_run", "slowest_cells"))
    if slow:
        lines += ["", "Where the first run's time goes (slowest notebook cells, papermill's own timings):", "",
                  "| Notebook | Seconds | Cell starts with |", "|---|---:|---|"]
        lines += [f"| {c['notebook']} | {c['seconds']} | `{c['cell'].replace('|', '/')}` |" for c in slow]
    first = _get(p, ("first_run", "seconds"))
    if first and first > 60:
        lines += ["", f"**Not met ({first:.0f} s).** About half of it does not grow with the data: three kernel "
                  "start-ups, imports and the publish step took ~27 s in a 300-series run. Of the rest, the "
                  "biggest cells above are outside the fair-value, backtest and training code measured on this "
                  "page: the collect cell also simulates the demo market and validates every row before the "
                  "store write, the portfolio valuation and the plots walk the whole 14-million-row signals "
                  "table (converting its categorical key columns to strings) to pick out a handful of cards; "
                  "filtering the table to those cards first would bring these two cells under a second."]
    hits = _get(p, ("rerun", "manifest_steps"))
    if hits:
        lines += ["", "Cache hits recorded in the re-run's manifest: " + ", ".join(
            f"{step}: {entry.get('cache_hits')}" for step, entry in hits.items())]
    return "\n".join(lines)


def markdown(results: dict) -> str:
    target_rows = targets(results)
    mark = {True: "✅ met", False: "❌ not met", None: "not measured"}
    header = ["| What (20,000 series × 730 days unless said) | Target | Measured | |", "|---|---|---|---|"]
    target_table = "\n".join(header
                             + [f"| {t['what']} | {t['target']} | {t['measured']} | {mark[t['met']]} |"
                                for t in target_rows])
    m, v = results["machine"], results["versions"]
    load = f"{m['load_average_at_start'][0]:.1f} at the start, {m['load_average_at_end'][0]:.1f} at the end"
    pipeline_scale = results.get("pipeline", {})
    return TEMPLATE.format(
        pipeline_scale=f"{pipeline_scale.get('series', 20_000):,} series × {pipeline_scale.get('days', 730)} days",
        started=results["started"], commit=results.get("git_commit") or "uncommitted", cpus=m["cpus"], load=load,
        versions=", ".join(f"{k} {val}" for k, val in v.items()), repeats=results["settings"]["repeats"],
        target_table=target_table, stage_table=table(results), peak_table=peak_table(results),
        latency_table=latency_table(results), growth_table=growth_table(results),
        pipeline=_pipeline_section(results), parallel=_parallel_section(results))


def _parallel_section(results: dict) -> str:
    rows = []
    for s in results.get("scales", []):
        par = s.get("parallel")
        if not par or "error" in par:
            continue
        single = _get(par, ("single_process", "signals", "best"))
        for engine in ("loky", "threading"):
            e = par.get(engine)
            if e:
                rows.append(f"| {s['series']:,} | {engine}, 2 workers | {_seconds(_get(e, ('signals', 'best')))} | "
                            f"{_seconds(single)} | {_seconds(_get(e, ('backtest_tables', 'best')))} | "
                            f"{'yes' if e['identical_to_single_process'] else 'NO'} |")
    if not rows:
        return "Not measured in this run (`python -m benchmarks --parallel`)."
    return "\n".join(["| Series | Engine | Signal arrays | Same, in-process | Backtest tables | Identical |",
                      "|---:|---|---:|---:|---:|---|", *rows])


def write(results: dict, out: Path) -> list[Path]:
    out = Path(out)
    json_path = out / "performance.json"
    json_path.write_text(json.dumps({**results, "targets": targets(results)}, indent=2, default=str) + "\n")
    md_path = out / "performance.md"
    md_path.write_text(markdown(results))
    png_path = plot(results, out / "performance.png")
    return [json_path, md_path, png_path]


TEMPLATE = """# Performance at full-catalogue scale

The whole English Pokémon catalogue on TCGplayer is about 43,000 price series a day;
two years of it is about 30 million rows. This page shows what each pipeline stage
costs at 1,000 to 45,000 series × 730 days, beside the original per-card loop timed
in the same run, and how the work is organised to get there.

*Generated by `make bench` (`python -m benchmarks`) on {started}, commit {commit}, on
{cpus} cores; load average {load} (other work shared the machine: absolute times
drift, the ratio to the reference loop does not). {versions}. Every figure is the
best of {repeats} repeats unless said; `performance.json` beside this file holds every
repeat, the medians and the KPIs.*

## Targets

{target_table}

## Every stage at every scale

{stage_table}

![time and peak memory against rows](performance.png)

Growth is linear: the time per million rows stays flat from 0.7 to 33 million rows
(the small scales pay fixed costs such as process-pool and file overheads):

{growth_table}

{latency_table}

### Peak memory

{peak_table}

### `scripts/run_pipeline.sh` end to end, {pipeline_scale}

{pipeline}

The run date puts the 730-day window at the demo market's epoch (2020-01-01): the
demo source simulates every day from its epoch so that a day's prices never depend
on the window asked for, and a later date would add years of simulation that no real
source has. Kernel start-ups (three notebooks through papermill) are included.

### Sharded engines on this machine

{parallel}

On 2 cores the single in-process pass is already memory-bound, so sharding buys
nothing here; the engines exist for histories that outgrow one machine (below).

## How it gets there

**One compiled pass per series.** Fair value, signal and backtest are all "walk
each series once, in date order". `pokewatch/kernels.py` does exactly that with
numba: the rolling mean, EWM and rolling median replicate pandas' own algorithms
operation for operation (so the numbers are pandas'), the deviation and BUY/SELL/HOLD
code are computed in the same pass, and the backtest accumulates every KPI's counts
and sums per series while it walks (forward price by a pointer that only moves
forward, no searchsorted over the table). The training search fuses fair value,
signal and backtest of each of the 11 candidates per series, so it needs memory for
one series, not eleven 14-million-row arrays. The kernels release the GIL, so one
process uses every core: series ranges (or training candidates) run on threads.

**Integer codes, not strings.** Series keys and every string column are integer
codes from the moment prices are stored. Kernels see three arrays (series offsets,
day numbers, prices); string columns only appear as pandas categoricals over those
codes when a table is shown.

**A compacted history beside the daily files.** The store still writes one Parquet
file per day (re-collecting a day atomically replaces it; an unchanged day is not
rewritten at all, so the fingerprint and the caches survive a same-day re-run).
Every write also merges the changed days into one uncompressed Arrow file per source,
ordered by series and date (`pokewatch/compaction.py`). A load maps that file: no
parse, no copy, milliseconds for 14 million rows. The file is named after the
fingerprint of the daily files it was built from, so it is valid exactly when the
name matches; if anything else changed the daily files, the next load merges just
the changed days first. Deleting it is always safe.

**Why numba.** pandas and numpy could not reach the targets: a grouped rolling
median and EWM through pandas take several seconds at this scale, a numpy
formulation needs a dozen full passes and temporaries per method (and the cumulative
sum trick for rolling means loses precision: up to 1.6×10⁻⁷ relative at 1.2 million rows),
and the backtest's forward-price search alone was a second. numba compiles the
loops once (cached on disk) and is one dependency with no C to maintain.

Before this work, at 20,000 × 730 on this machine: history load 14.5 s (730 Parquet
files), building the coded frame 17.9 s, rolling-mean fair value 2.6 s, EWM 1.6 s,
rolling median 4.5 s, backtest 18.8 s, peak memory 9.5 GB for load + signals +
backtest in one process.

## Same numbers as before

* EWM and rolling median: bit-identical to the previous pandas implementation.
* Rolling means (`rolling_mean`, `seed_mean3`): bit-identical to pandas'
  `rolling(n, min_periods=1).mean()` per series, and therefore to the reference loop
  (the benchmark checks this at every scale: see `max_abs_diff_vs_fast_path` in
  `performance.json`). The previous cumulative-sum implementation drifted from the
  exact mean by up to 2×10⁻⁸ relative at 117,000 rows and 1.6×10⁻⁷ at 1.2 million
  (the error grows with the table); the only signals that change are prices that sit
  exactly on a threshold (deviation −0.10 in exact arithmetic: 1 row in 117,000, 7 in
  1.2 million), which now follow the documented rule and are BUY.
* Backtest KPIs equal the previous implementation's to 10⁻⁹ (same scored rows,
  errors, per-signal and per-category tables), training candidate tables and the
  fitted model likewise.

## How the caches are keyed

* **History**: the compacted Arrow file is named after the store fingerprint of the
  source's daily files (SHA-256 over each file's name, size and mtime in nanoseconds).
  Re-collecting an unchanged day leaves its file untouched, so the fingerprint holds.
* **Steps** (`pokewatch/steps.py`, joblib.Memory): every cached function takes
  the store root, source, window start and end, the window's fingerprint, the
  method parameters and `CACHE_VERSION`, never a DataFrame (hashing a 14M-row frame
  alone costs ~0.7 s). `workers` and `engine` are left out of the key: results are
  identical whatever they are. Cached values are small or array-shaped and are loaded
  with `mmap_mode="r"`: the per-row fair value and signal code (two arrays), the
  backtest KPIs, the trained model with its candidate table. The signals table and
  the backtest's scored rows are rebuilt around the mapped history when asked for.
  A train re-run on unchanged data therefore costs a directory scan for the
  fingerprint plus loading a few MB.
* **Predictions**: `FairValueModel.predict` keeps an in-process dict of answers
  (bounded at 200,000 entries); the model's lookup index is rebuilt lazily after
  loading, so loading stays cheap.

## Scale-out: workers, engines and a real Dask scheduler

The per-series work shards by card id (`pokewatch/parallel.py`): each shard holds
whole cards (all printings and currencies), shards are balanced by row count and run
through `joblib.Parallel`; per-row outputs are concatenated and KPIs are summed from
per-series tables in series order, so the results are identical to the
single-process path for any sharding (tests/test_parallel.py checks it on a 2-worker
`dask.distributed.LocalCluster` and on loky).

The train and evaluate notebooks take `workers` and `engine` (`loky`, `threading` or
`dask`). The default, `workers=1`, runs in-process with no pool; the compiled passes
then split the series over the machine's cores as threads (`POKEWATCH_THREADS`, the
core count by default), which is the fastest setting on one machine (table above).

```bash
# loky processes on this machine
scripts/run_pipeline.sh --param workers=2 --param engine=loky

# a real Dask cluster: start a scheduler and workers that can import pokewatch
dask scheduler                                   # on the scheduler host, port 8786
dask worker tcp://scheduler-host:8786            # on each worker host
DASK_SCHEDULER_ADDRESS=tcp://scheduler-host:8786 \\
  scripts/run_pipeline.sh --param workers=32 --param engine=dask
```

With `engine=dask` the steps use the client already active in the process if there
is one, else connect to `$DASK_SCHEDULER_ADDRESS`, else start a temporary local
cluster of `workers` processes. Workers need the same pokewatch and numba versions as
the client. Shards travel to the workers as three numpy arrays each (prices, day
numbers, series offsets) and come back as per-row arrays and per-series tables.

## Reproduce

```bash
make bench          # = .venv/bin/python -m benchmarks --pipeline --parallel
.venv/bin/python -m benchmarks --scales 1000,5000 --days 730   # a quicker look
.venv/bin/python scripts/test_performance.py                   # latency and cache hit rates of runs/latest
```

Method: each stage runs in its own Python process on a temporary store of the demo
market (simulated with `epoch=start`, no network). Time is wall clock
(`time.perf_counter`). Peak memory is the kernel's high-water mark of the process's
resident set (`VmHWM`), reset right before the measured work with
`/proc/self/clear_refs`: it counts everything resident during the stage, including
inputs loaded before it (such as the mapped history) and any page of the mapped file
the stage touched.
"""


def main(argv: list[str] | None = None) -> int:
    import sys

    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else Path(__file__).resolve().parents[1] / "docs" / "performance.json"
    results = json.loads(path.read_text())
    results.pop("targets", None)
    for written in write(results, path.parent):
        print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
