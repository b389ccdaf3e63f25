"""One benchmark stage, run in a fresh process: ``python -m benchmarks.stages STAGE SPEC.json OUT.json``.

Each stage runs in its own process so its peak memory is its own. Peak memory is
the kernel's own high-water mark of the process's resident set (``VmHWM`` in
``/proc/self/status``), reset just before the measured work by writing ``5`` to
``/proc/self/clear_refs``: it counts everything resident while the stage ran,
including the inputs it had already loaded (for example the mapped history), and
misses nothing between samples. Where that reset is not allowed, a thread samples
the resident set every millisecond instead (the JSON says which method was used).

Times are wall-clock seconds of ``time.perf_counter``; each stage repeats its work
and reports every repeat, the best and the median.
"""
from __future__ import annotations

from benchmarks.compat import pokewatch_module
import gc
import importlib.util
import json
import re
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SOURCE = "demo"


# -- peak memory ------------------------------------------------------------------------
def _status_kb(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    return int(match.group(1)) if match else 0


class PeakMemory:
    """Peak resident set of this process between :meth:`reset` and :meth:`peak`."""

    def __init__(self) -> None:
        self.method = "VmHWM after clear_refs"
        self._sampled = 0
        self._running = False
        self._thread: threading.Thread | None = None

    def reset(self) -> None:
        gc.collect()
        try:
            Path("/proc/self/clear_refs").write_text("5")
            if _status_kb("VmHWM") > _status_kb("VmRSS") * 1.05 + 1024:
                raise OSError("VmHWM was not reset")
        except OSError:
            self.method = "RSS sampled every 1 ms"
            self._sampled = _status_kb("VmRSS")
            self._running = True
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        self.baseline = _status_kb("VmRSS") * 1024

    def _sample(self) -> None:
        while self._running:
            self._sampled = max(self._sampled, _status_kb("VmRSS"))
            time.sleep(0.001)

    def peak(self) -> int:
        if self._thread is not None:
            self._running = False
            self._thread.join()
            return max(self._sampled, _status_kb("VmRSS")) * 1024
        return _status_kb("VmHWM") * 1024


def timed(work, repeats: int, before=None) -> tuple[list[float], object]:
    """Run ``work()`` ``repeats`` times (``before()`` untimed ahead of each); seconds and last result."""
    times, result = [], None
    for _ in range(repeats):
        result = None  # the previous repeat's output must not inflate this one's peak memory
        arg = before() if before else None
        gc.collect()
        started = time.perf_counter()
        result = work(arg) if before else work()
        times.append(time.perf_counter() - started)
        del arg
    return times, result


def summary(times: list[float], rows: int | None = None) -> dict:
    best = min(times)
    out = {"seconds": [round(t, 6) for t in times], "best": round(best, 6), "median": round(float(np.median(times)), 6)}
    if rows:
        out["rows_per_second"] = round(rows / best)
    return out


# -- stages ------------------------------------------------------------------------------
def _store(spec: dict):
    PriceStore = pokewatch_module("data.store").PriceStore

    return PriceStore(Path(spec["workdir"]) / "store")


def _window(spec: dict) -> tuple[str, str]:
    end = pd.Timestamp(spec["end"])
    return f"{end - pd.Timedelta(days=spec['days'] - 1):%Y-%m-%d}", f"{end:%Y-%m-%d}"


def stage_prepare(spec: dict, memory: PeakMemory) -> dict:
    """Simulate the demo market and write it into a fresh store (timing the store write)."""
    demo_prices = pokewatch_module("data.demo_market").demo_prices

    start, end = _window(spec)
    started = time.perf_counter()
    history = demo_prices(start, end, n_series=spec["series"], seed=spec.get("seed", 20261128), epoch=start)
    generate = time.perf_counter() - started
    rows = len(history)
    store = _store(spec)
    memory.reset()
    started = time.perf_counter()
    store.write_days(SOURCE, history)
    write = time.perf_counter() - started
    return {"rows": rows, "series": spec["series"], "days": spec["days"], "generate_seconds": round(generate, 3),
            "write": summary([write], rows), "peak_bytes": memory.peak()}


def stage_load(spec: dict, memory: PeakMemory) -> dict:
    """History load: the mapped compacted history as the steps use it, and the string long table."""
    store = _store(spec)
    start, end = _window(spec)
    memory.reset()
    times, pf = timed(lambda: store.load_frame(SOURCE, start, end), spec["repeats"])
    peak = memory.peak()
    load_times, frame = timed(lambda: store.load(SOURCE, start, end), max(1, spec["repeats"] // 2))
    return {"rows": len(pf), "load_frame": summary(times, len(pf)), "peak_bytes": peak,
            "load_dataframe": summary(load_times, len(frame))}


def stage_signals(spec: dict, memory: PeakMemory) -> dict:
    """Fair value and signals over the full history, as the long table (frame built inside the timing)."""
    fair_value = pokewatch_module("core.fair_value").fair_value
    compute_signals = pokewatch_module("core.signals").compute_signals

    store = _store(spec)
    start, end = _window(spec)
    memory.reset()
    times, signals = timed(lambda pf: compute_signals(pf, "rolling_mean", 7),
                           spec["repeats"], before=lambda: store.load_frame(SOURCE, start, end))
    peak = memory.peak()
    pf = store.load_frame(SOURCE, start, end)
    methods = {}
    for method, window in (("rolling_mean", 7), ("ewm", 7), ("rolling_median", 7), ("seed_mean3", 3)):
        method_times, _ = timed(lambda method=method, window=window: fair_value(pf, method, window),
                                max(2, spec["repeats"] // 2))
        methods[f"{method}({window})"] = summary(method_times, len(pf))
    return {"rows": len(signals), "signals": summary(times, len(signals)), "peak_bytes": peak,
            "fair_value_by_method": methods}


def stage_backtest(spec: dict, memory: PeakMemory) -> dict:
    """The full backtest: every KPI, the scored rows and the forecast errors."""
    run_backtest = pokewatch_module("core.backtest").run_backtest
    compute_signals = pokewatch_module("core.signals").compute_signals

    store = _store(spec)
    start, end = _window(spec)
    signals = compute_signals(store.load_frame(SOURCE, start, end), "rolling_mean", 7)

    def full():
        result = run_backtest(signals, horizon_days=7, target_return=0.05)
        return result, len(result.scored), len(result.errors)

    memory.reset()
    times, (result, scored, errors) = timed(full, spec["repeats"])
    peak = memory.peak()
    kpi_times, _ = timed(lambda: run_backtest(signals).kpis, spec["repeats"])
    return {"rows": len(signals), "backtest": summary(times, len(signals)), "kpis_only": summary(kpi_times),
            "rows_scored": scored, "forecast_rows": errors, "peak_bytes": peak,
            "kpis": {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in result.kpis.items()}}


def _steps(spec: dict):
    import os

    os.environ["POKEWATCH_CACHE_DIR"] = str(Path(spec["workdir"]) / "cache")
    caching = pokewatch_module("run.caching")
    steps = pokewatch_module("run.steps")

    caching.memory.cache_clear()
    return steps


def stage_train(spec: dict, memory: PeakMemory) -> dict:
    """Train on unchanged data twice over: a cold run (cache miss, full candidate search) first."""
    from pokewatch.run import model_file

    steps = _steps(spec)
    start, end = _window(spec)
    memory.reset()
    started = time.perf_counter()
    key = steps.history_key(SOURCE, end, _store(spec))
    result = steps.train_step(key, end, steps.TrainingSpec())
    seconds = time.perf_counter() - started
    peak = memory.peak()
    model, selection = result.value
    candidates = selection.table
    model_file.write(model_file.path_in(spec["workdir"]), model)
    return {"rows": spec.get("rows"), "train": summary([seconds]), "cache_hit": result.hit, "peak_bytes": peak,
            "candidates": candidates["method"].nunique() if len(candidates) else 0,
            "chosen": f"{model.method}({model.window})",
            "reason": model.selection.get("reason")}


def stage_train_hit(spec: dict, memory: PeakMemory) -> dict:
    """Train re-run on unchanged data: fingerprint the store, then hit the disk cache."""
    steps = _steps(spec)
    start, end = _window(spec)
    store = _store(spec)
    hits = []

    def rerun():
        key = steps.history_key(SOURCE, end, store)
        result = steps.train_step(key, end, steps.TrainingSpec())
        hits.append(result.hit)
        return result

    memory.reset()
    times, _ = timed(rerun, spec["repeats"] + 1)
    peak = memory.peak()
    return {"train_hit": summary(times[1:]), "first_in_process": round(times[0], 6), "all_hits": all(hits),
            "peak_bytes": peak}


def _performance_script():
    path = ROOT / "scripts" / "test_performance.py"
    module_spec = importlib.util.spec_from_file_location("pokewatch_test_performance", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def stage_predict(spec: dict, memory: PeakMemory) -> dict:
    """predict_all for every card, and predict latency over a realistic stream of 10,000 requests."""
    from pokewatch.run import model_file

    perf = _performance_script()
    path = model_file.path_in(spec["workdir"])
    model = model_file.read(path)
    memory.reset()
    times, frame = timed(lambda: model.predict_all(), max(20, spec["repeats"]))
    peak = memory.peak()
    requests = perf.request_stream(model, spec.get("calls", 10_000))
    latency = perf.measure_stream(model_file.read(path), requests)
    return {"predict_all": {**summary(times), "first": round(times[0], 6), "rows": len(frame)},
            "predict": latency, "peak_bytes": peak}


def stage_reference(spec: dict, memory: PeakMemory) -> dict:
    """The original per-card groupby loop, and a check that the fast path gives the same numbers."""
    from benchmarks.reference import groupby_loop_mean3, mask_loop_mean3
    fair_value = pokewatch_module("core.fair_value").fair_value

    store = _store(spec)
    start, end = _window(spec)
    history = store.load(SOURCE, start, end)
    memory.reset()
    times, means = timed(lambda: groupby_loop_mean3(history), spec.get("reference_repeats", 1))
    peak = memory.peak()
    fast = fair_value(store.load_frame(SOURCE, start, end), "seed_mean3", 3)
    reference = means.to_numpy()
    out = {"rows": len(history), "groupby_loop": summary(times, len(history)), "peak_bytes": peak,
           "max_abs_diff_vs_fast_path": float(np.nanmax(np.abs(reference - fast))),
           "bit_identical_share": float(np.mean(reference == fast))}
    if spec.get("mask"):
        memory.reset()
        mask_times, mask_means = timed(lambda: mask_loop_mean3(history), 1)
        out["mask_loop"] = {**summary(mask_times, len(history)), "peak_bytes": memory.peak(),
                            "max_abs_diff_vs_fast_path": float(np.nanmax(np.abs(mask_means.to_numpy() - fast)))}
    return out


def stage_parallel(spec: dict, memory: PeakMemory) -> dict:
    """Signals and backtest through the shard engines, checked identical to the single-process path."""
    parallel = pokewatch_module("core.parallel")
    scoring_window = pokewatch_module("core.backtest").scoring_window
    Rule = pokewatch_module("core.rules").Rule

    store = _store(spec)
    start, end = _window(spec)
    pf = store.load_frame(SOURCE, start, end)
    rule = Rule("rolling_mean", 7)
    single = parallel.rule_arrays(pf, rule)
    start_day, end_day, _ = scoring_window(pf.days, 7)
    single_bt = parallel.backtest_partials(pf, *single, 7, start_day, end_day, 1.0, 0.05)
    out = {}
    for engine in spec.get("engines", ["loky", "threading"]):
        memory.reset()
        times, arrays = timed(lambda engine=engine: parallel.rule_arrays(pf, rule, workers=2, engine=engine),
                              spec["repeats"])
        bt_times, tables = timed(lambda engine=engine: parallel.backtest_partials(
            pf, *single, 7, start_day, end_day, 1.0, 0.05, workers=2, engine=engine), spec["repeats"])
        identical = all(np.array_equal(a, b, equal_nan=True) for a, b in zip(arrays, single)) and \
            all(np.array_equal(a, b, equal_nan=True) for a, b in zip(tables, single_bt))
        out[engine] = {"workers": 2, "signals": summary(times, len(pf)), "backtest_tables": summary(bt_times, len(pf)),
                       "identical_to_single_process": identical, "peak_bytes": memory.peak()}
    single_times, _ = timed(lambda: parallel.rule_arrays(pf, rule), spec["repeats"])
    out["single_process"] = {"signals": summary(single_times, len(pf))}
    return out


STAGES = {name[len("stage_"):]: func for name, func in globals().items() if name.startswith("stage_")}


def main(argv: list[str]) -> int:
    stage, spec_path, out_path = argv
    spec = json.loads(Path(spec_path).read_text())
    sys.path.insert(0, str(ROOT))
    memory = PeakMemory()
    started = time.perf_counter()
    result = STAGES[stage](spec, memory)
    result["resident_before_bytes"] = getattr(memory, "baseline", None)
    result["stage_wall_seconds"] = round(time.perf_counter() - started, 3)
    result["memory_method"] = memory.method
    Path(out_path).write_text(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
