#!/usr/bin/env python
"""How fast does the latest run's model answer, and how often do the caches hit?

The seed project's performance script, grown up. It loads ``model.joblib`` of the
latest good run (``runs/latest``, or ``--run-dir``) and measures:

* ``predict(card_id, date)`` latency over ``--calls`` distinct (card, date) pairs
  (10,000 by default): cold (each pair asked for the first time after loading the
  model, so the in-process cache misses) and warm (the same pairs again, all hits),
  as p50 / p95 / p99, plus the very first call after loading on its own;
* ``predict_all(date)`` for every card (first call and best / median of repeats);
* the hit rate of each cache: the model's in-process prediction cache (over the
  calls above), and the joblib disk cache of the pipeline steps, read from the
  ``cache_hits`` of every successful run's manifest (so a train and evaluate re-run
  on unchanged data shows up as hits).

Prints a small table and writes the figures as JSON (``--json``).

Examples:
    .venv/bin/python scripts/test_performance.py
    .venv/bin/python scripts/test_performance.py --calls 20000 --json /tmp/perf.json
"""
from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import joblib
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pokewatch import runs  # noqa: E402
from pokewatch.errors import PokeWatchError, RunError  # noqa: E402

DEFAULT_JSON = ROOT / "benchmarks" / "results" / "test_performance.json"


def percentiles(nanoseconds: list[int]) -> dict:
    """p50 / p95 / p99 / mean / max of call latencies, in microseconds."""
    values = np.asarray(nanoseconds, dtype=np.float64) / 1000.0
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"calls": int(len(values)), "p50_us": round(float(p50), 3), "p95_us": round(float(p95), 3),
            "p99_us": round(float(p99), 3), "mean_us": round(float(values.mean()), 3),
            "max_us": round(float(values.max()), 3)}


def query_pairs(model, calls: int, seed: int = 0) -> list[tuple[str, str]]:
    """``calls`` distinct (card_id, date) pairs the model can answer, in random order.

    A pair is answerable when the card's preferred printing has a price on or before
    the date inside the model's window.
    """
    model.predict_all()  # builds the lookup index
    cards = sorted(model._card_index)
    positions = np.array([model._card_index[card][0][2] for card in cards])
    dates = [f"{d:%Y-%m-%d}" for d in model.dates]
    card_pos, date_pos = np.nonzero(model._asof[positions] >= 0)
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(card_pos), size=min(calls, len(card_pos)), replace=False)
    pairs = [(cards[card_pos[i]], dates[date_pos[i]]) for i in picks]
    while len(pairs) < calls:  # a model smaller than ``calls`` pairs: repeat (those calls are warm)
        pairs.extend(pairs[: calls - len(pairs)])
    return pairs


def measure_predict(model, pairs: list[tuple[str, str]]) -> dict:
    """Cold then warm latencies of ``model.predict`` over ``pairs`` (the model should be freshly loaded)."""
    clock = time.perf_counter_ns
    predict = model.predict
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection pause is not the model's latency
    try:
        card, date = pairs[0]
        started = clock()
        predict(card, date)
        first = clock() - started
        cold = []
        for card, date in pairs[1:]:
            started = clock()
            predict(card, date)
            cold.append(clock() - started)
        warm = []
        for card, date in pairs:
            started = clock()
            predict(card, date)
            warm.append(clock() - started)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {"first_call_us": round(first / 1000.0, 3), "cold": percentiles(cold), "warm": percentiles(warm)}


def measure_predict_all(model, repeats: int = 20) -> dict:
    """Milliseconds of ``predict_all()`` (every card, the latest day): first call, best and median."""
    times = []
    rows = 0
    for _ in range(repeats):
        started = time.perf_counter()
        rows = len(model.predict_all())
        times.append(time.perf_counter() - started)
    return {"rows": rows, "cards": int(model.cards()["card_id"].nunique()), "first_ms": round(times[0] * 1e3, 3),
            "best_ms": round(min(times) * 1e3, 3), "median_ms": round(float(np.median(times)) * 1e3, 3)}


def disk_cache_hits(runs_root: Path | None = None) -> dict:
    """Hit rate of each cached step across every successful run, from the manifests' ``cache_hits``."""
    table = runs.attempts(runs_root)
    counts: dict[str, dict] = {}
    considered = 0
    for manifest in table["manifest"] if len(table) else []:
        if manifest.get("status") != "success":
            continue
        considered += 1
        for step in manifest.get("steps", {}).values():
            for name, hit in (step.get("cache_hits") or {}).items():
                entry = counts.setdefault(name, {"hits": 0, "calls": 0})
                entry["calls"] += 1
                entry["hits"] += int(bool(hit))
    for entry in counts.values():
        entry["hit_rate"] = round(entry["hits"] / entry["calls"], 4) if entry["calls"] else None
    hits = sum(e["hits"] for e in counts.values())
    calls = sum(e["calls"] for e in counts.values())
    return {"runs_considered": considered, "by_cache": counts,
            "overall": {"hits": hits, "calls": calls, "hit_rate": round(hits / calls, 4) if calls else None}}


def measure(run_dir: Path, calls: int = 10_000, repeats: int = 20, runs_root: Path | None = None) -> dict:
    """Every figure of this script for the model in ``run_dir``."""
    model_path = Path(run_dir) / "model.joblib"
    if not model_path.exists():
        raise RunError(f"{run_dir} has no model.joblib; run scripts/run_pipeline.sh first")
    started = time.perf_counter()
    model = joblib.load(model_path)
    load_seconds = time.perf_counter() - started
    pairs = query_pairs(model, calls)
    fresh = joblib.load(model_path)  # a model nobody has asked anything yet
    latency = measure_predict(fresh, pairs)
    prediction_cache = fresh.cache_stats()
    return {
        "run_dir": str(Path(run_dir).resolve()),
        "model": {"method": model.method, "window": model.window, "series": int(len(model.cards())),
                  "days": int(len(model.dates)), "fitted_through": model.fitted_through,
                  "load_seconds": round(load_seconds, 4)},
        "predict": latency,
        "predict_all": measure_predict_all(model, repeats),
        "cache": {"prediction": {k: (round(v, 4) if isinstance(v, float) else v)
                                 for k, v in prediction_cache.items()},
                  "disk": disk_cache_hits(runs_root)},
    }


def table(result: dict) -> str:
    """The figures as a small plain-text table."""
    p, pa, cache = result["predict"], result["predict_all"], result["cache"]
    lines = [f"model {result['model']['method']}({result['model']['window']}), {result['model']['series']:,} series, "
             f"fitted through {result['model']['fitted_through']} ({result['run_dir']})",
             "", f"{'measure':<34}{'p50':>10}{'p95':>10}{'p99':>10}",
             f"{'predict, cold (us)':<34}{p['cold']['p50_us']:>10.2f}{p['cold']['p95_us']:>10.2f}"
             f"{p['cold']['p99_us']:>10.2f}",
             f"{'predict, warm (us)':<34}{p['warm']['p50_us']:>10.2f}{p['warm']['p95_us']:>10.2f}"
             f"{p['warm']['p99_us']:>10.2f}",
             f"{'predict, first call after load (us)':<34}{p['first_call_us']:>10.1f}",
             "", f"predict_all: {pa['rows']:,} series ({pa['cards']:,} cards): first {pa['first_ms']:.2f} ms, "
             f"best {pa['best_ms']:.2f} ms, median {pa['median_ms']:.2f} ms",
             "", f"{'cache':<34}{'hits':>10}{'calls':>10}{'hit rate':>10}"]
    pred = cache["prediction"]
    lines.append(f"{'in-process prediction cache':<34}{pred['hits']:>10}{pred['hits'] + pred['misses']:>10}"
                 f"{pred['hit_rate']:>10.1%}")
    disk = cache["disk"]
    for name, entry in sorted(disk["by_cache"].items()):
        lines.append(f"{'disk cache: ' + name:<34}{entry['hits']:>10}{entry['calls']:>10}{entry['hit_rate']:>10.1%}")
    overall = disk["overall"]
    if overall["calls"]:
        lines.append(f"{'disk cache, all steps':<34}{overall['hits']:>10}{overall['calls']:>10}"
                     f"{overall['hit_rate']:>10.1%}")
    lines.append(f"(disk cache hits read from {disk['runs_considered']} successful run manifest(s))")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("--run-dir", type=Path, help="run folder to measure (default: runs/latest)")
    parser.add_argument("--calls", type=int, default=10_000, help="distinct predict calls (default 10000)")
    parser.add_argument("--repeats", type=int, default=20, help="predict_all repeats (default 20)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON,
                        help=f"where to write the JSON (default {DEFAULT_JSON})")
    args = parser.parse_args(argv)
    try:
        run_dir = args.run_dir or runs.latest_run()
        if run_dir is None:
            raise RunError("there is no successful run yet (runs/latest is missing); run scripts/run_pipeline.sh "
                           "first or pass --run-dir")
        if args.calls < 1:
            raise RunError(f"--calls must be at least 1, got {args.calls}")
        result = measure(run_dir, args.calls, max(args.repeats, 1))
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
