#!/usr/bin/env python
"""How fast does the latest run's model answer, and how often do the caches hit under a realistic workload?

It measures two things and says exactly what each measured:

* **The model** of the latest good run (``runs/latest``, or ``--run-dir``), answering a
  realistic stream of API requests: ``--calls`` requests (10,000 by default) whose
  cards follow a Zipf popularity (exponent ``--zipf``, 1.1: a few cards are asked for
  often, most rarely), four in five for the latest day and the rest for a day drawn
  from the model's window. Reported: the hit rate of the model's in-process
  prediction cache over that stream (a request hits when the same card and day were
  asked before), and the latency of the requests that missed and of those that hit,
  as p50 / p95 / p99; plus the first call after loading and ``predict_all``.
* **The disk cache of the pipeline steps** over a simulated cron schedule (not read
  from the runs folder, whose superseded attempts are pruned and whose failed ones
  say nothing about hits). In fresh temporary folders, a demo market of
  ``--workload-series`` series with ``--workload-history`` days of history is run for
  ``--workload-days`` consecutive days as the pipeline runs them: each day stores
  its prices, trains on Mondays (and on the first day), and evaluates (track record,
  today's selection, signals, model); every third day is run twice (a cron retry),
  and halfway one earlier day is stored again with corrected prices (a late
  correction). Each cached step's hits and misses are counted per call.

Prints a small table and writes the figures as JSON (``--json``).

Examples:
    .venv/bin/python scripts/test_performance.py
    .venv/bin/python scripts/test_performance.py --calls 20000 --json /tmp/perf.json
    .venv/bin/python scripts/test_performance.py --workload-days 0        # the model only
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import joblib
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pokewatch.run import runs  # noqa: E402
from pokewatch.run.folder import RunFolder  # noqa: E402
from pokewatch.errors import PokeWatchError, RunError  # noqa: E402

DEFAULT_JSON = ROOT / "benchmarks" / "results" / "test_performance.json"
LATEST_SHARE = 0.8


def percentiles(nanoseconds: list[int]) -> dict:
    """p50 / p95 / p99 / mean / max of call latencies, in microseconds (``calls`` 0 when there are none)."""
    if not len(nanoseconds):
        return {"calls": 0}
    values = np.asarray(nanoseconds, dtype=np.float64) / 1000.0
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"calls": int(len(values)), "p50_us": round(float(p50), 3), "p95_us": round(float(p95), 3),
            "p99_us": round(float(p99), 3), "mean_us": round(float(values.mean()), 3),
            "max_us": round(float(values.max()), 3)}


def request_stream(model, calls: int, zipf: float = 1.1, seed: int = 0) -> list[tuple[str, str | None]]:
    """``calls`` (card_id, date) requests: Zipf-popular cards, mostly the latest day (date None).

    Cards are ranked in a random order and the k-th is asked with weight 1 / k**zipf;
    a request is for the latest day with probability 0.8, else for a uniformly drawn
    day of the model's window on which the card has a price on or before.
    """
    model._require_fitted()  # builds the lookup indexes
    cards = sorted(model._card_index)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(cards))
    weights = 1.0 / np.arange(1, len(cards) + 1) ** zipf
    picks = order[rng.choice(len(cards), size=calls, p=weights / weights.sum())]
    dates = [f"{d:%Y-%m-%d}" for d in model.dates]
    positions = np.array([model._card_index[card][0][2] for card in cards])
    first_priced = np.argmax(model._asof[positions] >= 0, axis=1)
    latest = rng.random(calls) < LATEST_SHARE
    day = rng.integers(0, len(dates), calls)
    day = np.maximum(day, first_priced[picks])
    return [(cards[c], None if now else dates[d]) for c, now, d in zip(picks, latest, day)]


def measure_stream(model, requests: list[tuple[str, str | None]]) -> dict:
    """Latency of each request of the stream, split by whether the prediction cache hit, and the hit rate."""
    clock = time.perf_counter_ns
    predict = model.predict
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection pause is not the model's latency
    missed, hit = [], []
    try:
        card, date = requests[0]
        started = clock()
        predict(card, date)
        first = clock() - started
        for card, date in requests[1:]:
            before = model.cache_hits
            started = clock()
            predict(card, date)
            elapsed = clock() - started
            (hit if model.cache_hits > before else missed).append(elapsed)
    finally:
        if gc_was_enabled:
            gc.enable()
    stats = model.cache_stats()
    distinct = len({(c, d) for c, d in requests})
    return {"first_call_us": round(first / 1000.0, 3), "miss": percentiles(missed), "hit": percentiles(hit),
            "cache": {"requests": len(requests), "hits": stats["hits"], "misses": stats["misses"],
                      "hit_rate": round(stats["hit_rate"], 4), "distinct_requests": distinct,
                      "best_possible_hit_rate": round(1 - distinct / len(requests), 4)}}


def measure_predict_all(model, repeats: int = 20) -> dict:
    """Milliseconds of ``predict_all()`` (every card, the latest day): first call, median, min and max."""
    times = []
    rows = 0
    for _ in range(repeats):
        started = time.perf_counter()
        rows = len(model.predict_all())
        times.append(time.perf_counter() - started)
    return {"rows": rows, "cards": int(model.cards()["card_id"].nunique()), "first_ms": round(times[0] * 1e3, 3),
            "median_ms": round(float(np.median(times)) * 1e3, 3), "min_ms": round(min(times) * 1e3, 3),
            "max_ms": round(max(times) * 1e3, 3), "repeats": repeats}


def measure_model(run_dir: Path, calls: int = 10_000, repeats: int = 20, zipf: float = 1.1) -> dict:
    """The model part (see the module docstring) for the model in ``run_dir``."""
    model_path = RunFolder(run_dir).model
    if not model_path.exists():
        raise RunError(f"{run_dir} has no {model_path.name}; run scripts/run_pipeline.sh first")
    started = time.perf_counter()
    model = joblib.load(model_path)
    load_seconds = time.perf_counter() - started
    requests = request_stream(model, calls, zipf)
    fresh = joblib.load(model_path)  # a model nobody has asked anything yet
    return {
        "run_dir": str(Path(run_dir).resolve()),
        "model": {"method": model.method, "window": model.window, "series": int(len(model.cards())),
                  "days": int(len(model.dates)), "fitted_through": model.fitted_through,
                  "load_seconds": round(load_seconds, 4)},
        "workload": {"what": f"{calls:,} requests, Zipf({zipf:g}) card popularity, {LATEST_SHARE:.0%} for the "
                             "latest day, the rest for a random day of the model's window; a freshly loaded model",
                     "calls": calls, "zipf": zipf},
        "predict": measure_stream(fresh, requests),
        "predict_all": measure_predict_all(model, repeats),
    }


# -- the disk cache over a simulated cron schedule ------------------------------------------------
def simulate_schedule(days: int = 14, n_series: int = 300, history_days: int = 400, start: str = "2026-01-05",
                      retry_every: int = 3) -> dict:
    """Hits and misses of each cached pipeline step over ``days`` simulated cron runs (see the module docstring)."""
    import pandas as pd

    from pokewatch.run import caching, steps
    from pokewatch.core import training, walkforward
    from pokewatch.data.demo_market import demo_prices
    from pokewatch.data.store import PriceStore

    saved = {name: os.environ.get(name) for name in ("POKEWATCH_DATA_DIR", "POKEWATCH_CACHE_DIR",
                                                     "POKEWATCH_RUNS_DIR")}
    counts: dict[str, dict] = {}
    runs_log = []
    first = pd.Timestamp(start)
    correction = first + pd.Timedelta(days=days // 2) if days >= 4 else None

    def note(step: str, hits: int, calls: int = 1) -> None:
        entry = counts.setdefault(step, {"hits": 0, "calls": 0})
        entry["calls"] += calls
        entry["hits"] += int(hits)

    try:
        with tempfile.TemporaryDirectory(prefix="pokewatch-workload-") as folder:
            os.environ.update({"POKEWATCH_DATA_DIR": f"{folder}/data", "POKEWATCH_CACHE_DIR": f"{folder}/cache",
                               "POKEWATCH_RUNS_DIR": f"{folder}/runs"})
            caching.memory.cache_clear()
            store = PriceStore.default()
            epoch = first - pd.Timedelta(days=history_days)
            store.write_days("demo", demo_prices(epoch, first - pd.Timedelta(days=1), n_series=n_series,
                                                 epoch=epoch))
            spec = steps.TrainingSpec()
            trained = False
            for offset in range(days):
                day = first + pd.Timedelta(days=offset)
                store.write_days("demo", demo_prices(day, day, n_series=n_series, epoch=epoch))
                if correction is not None and day == correction:     # a late correction of an earlier day
                    old = day - pd.Timedelta(days=20)
                    fixed = demo_prices(old, old, n_series=n_series, epoch=epoch)
                    store.write_days("demo", fixed.assign(market_price=fixed["market_price"] * 1.01))
                for attempt in range(2 if retry_every and offset % retry_every == retry_every - 1 else 1):
                    steps._MEMO.clear()                               # each run is a fresh kernel
                    started = time.perf_counter()
                    hits = {}
                    if not trained or day.day_of_week == training.TRAINING_WEEKDAY:
                        result = steps.train_step(steps.history_key("demo", day, store), day, spec)
                        hits["selection, train step"] = result.hit
                        trained = True
                    key = steps.evaluation_key("demo", day, store)
                    pf = steps.price_frame(*key.args(), allow_empty=True)
                    weeks = walkforward.training_dates(day - pd.Timedelta(days=365),
                                                       day - pd.Timedelta(days=spec.horizon_days))
                    replayed = steps.replay_selections("demo", weeks, spec, pf, store)
                    note("replayed selections (per week)", sum(r.hit for r in replayed), len(replayed))
                    hits["track record"] = steps.track_record_step(key, day, 365, spec).hit
                    hits["selection, evaluate step"] = steps.selection_step(
                        "demo", training.training_date(day), spec, store).hit
                    for step, hit in hits.items():
                        note(step, hit)
                    runs_log.append({"date": f"{day:%Y-%m-%d}", "attempt": attempt + 1, "hits": hits,
                                     "weeks_from_cache": f"{sum(r.hit for r in replayed)}/{len(replayed)}",
                                     "seconds": round(time.perf_counter() - started, 3)})
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        caching.memory.cache_clear()
        steps._MEMO.clear()
    for entry in counts.values():
        entry["hit_rate"] = round(entry["hits"] / entry["calls"], 4) if entry["calls"] else None
    what = (f"{days} consecutive daily runs from {start} of a {n_series}-series demo market with {history_days} "
            f"days of history; training on Mondays and on the first day; every {retry_every} days a run is "
            "repeated (a cron retry)")
    if correction is not None:
        what += f"; on {correction:%Y-%m-%d} an earlier day is stored again with corrected prices"
    return {"what": what, "by_step": counts, "runs": runs_log}


def table(result: dict) -> str:
    """The figures as a small plain-text table."""
    lines = []
    model = result.get("model_part")
    if model:
        p, pa, cache = model["predict"], model["predict_all"], model["predict"]["cache"]
        lines += [f"model {model['model']['method']}({model['model']['window']}), {model['model']['series']:,} "
                  f"series, fitted through {model['model']['fitted_through']} ({model['run_dir']})",
                  f"workload: {model['workload']['what']}", "",
                  f"{'request latency (us)':<34}{'p50':>10}{'p95':>10}{'p99':>10}{'calls':>10}"]
        for label, key in (("cache miss", "miss"), ("cache hit", "hit")):
            s = p[key]
            if s.get("calls"):
                lines.append(f"{label:<34}{s['p50_us']:>10.2f}{s['p95_us']:>10.2f}{s['p99_us']:>10.2f}"
                             f"{s['calls']:>10}")
        lines += [f"{'first call after load':<34}{p['first_call_us']:>10.1f}",
                  f"in-process prediction cache: {cache['hits']:,} hits of {cache['requests']:,} requests "
                  f"({cache['hit_rate']:.1%}; at most {cache['best_possible_hit_rate']:.1%} with "
                  f"{cache['distinct_requests']:,} distinct requests)",
                  f"predict_all: {pa['rows']:,} series: first {pa['first_ms']:.2f} ms, median {pa['median_ms']:.2f} "
                  f"ms ({pa['min_ms']:.2f}-{pa['max_ms']:.2f}, {pa['repeats']} repeats)", ""]
    workload = result.get("disk_cache")
    if workload:
        lines += [f"disk cache over a simulated schedule: {workload['what']}",
                  f"{'cached step':<34}{'hits':>10}{'calls':>10}{'hit rate':>10}"]
        for name, entry in workload["by_step"].items():
            lines.append(f"{name:<34}{entry['hits']:>10}{entry['calls']:>10}{entry['hit_rate']:>10.1%}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("--run-dir", type=Path, help="run folder to measure (default: runs/latest)")
    parser.add_argument("--calls", type=int, default=10_000, help="requests in the stream (default 10000)")
    parser.add_argument("--zipf", type=float, default=1.1, help="Zipf exponent of card popularity (default 1.1)")
    parser.add_argument("--repeats", type=int, default=20, help="predict_all repeats (default 20)")
    parser.add_argument("--workload-days", type=int, default=14,
                        help="simulated daily runs for the disk cache (default 14; 0 skips it)")
    parser.add_argument("--workload-series", type=int, default=300, help="series of the simulated market")
    parser.add_argument("--workload-history", type=int, default=400, help="days of history before the first run")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON,
                        help=f"where to write the JSON (default {DEFAULT_JSON})")
    args = parser.parse_args(argv)
    result = {}
    try:
        run_dir = args.run_dir or runs.latest_run()
        if run_dir is None:
            raise RunError("there is no successful run yet (runs/latest is missing); run scripts/run_pipeline.sh "
                           "first or pass --run-dir")
        if args.calls < 2:
            raise RunError(f"--calls must be at least 2, got {args.calls}")
        result["model_part"] = measure_model(run_dir, args.calls, max(args.repeats, 1), args.zipf)
        if args.workload_days > 0:
            result["disk_cache"] = simulate_schedule(args.workload_days, args.workload_series, args.workload_history)
    except PokeWatchError as exc:
        print(f"test_performance: {exc}", file=sys.stderr)
        return 2
    print(table(result))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
