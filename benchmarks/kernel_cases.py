"""Fair value + signal at catalogue scale, side by side: each checkout's pass, the plain loop, the floor, the card loop.

Everything runs on the same arrays, exported once from this checkout's stored
history (``prices``, ``low``, ``days``, ``bounds`` as ``.npy`` files), so the checkouts
are compared on identical input and their outputs bit for bit:

* each checkout's compiled pass (:mod:`benchmarks.kernel_stage`, in that checkout's python);
* :func:`benchmarks.plain_loop.plain_rule` (the plain single-pass loop) and
  :func:`benchmarks.plain_loop.memory_floor` (pure memory traffic), in this python;
* the original per-card ``groupby`` loop (:mod:`benchmarks.reference`) over the
  history as a string table (``PriceStore.load``).

Each is repeated; figures are medians with min and max, and ratios are median against
median of the same run. Subcommands (``python -m benchmarks.kernel_cases ...``) run
each part in a fresh process, so one part's memory does not weigh on the next.
"""
from __future__ import annotations

from benchmarks.compat import pokewatch_module
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
STAGE = Path(__file__).with_name("kernel_stage.py")


def stats(seconds: list[float]) -> dict:
    """Median, min and max of repeats (and the repeats)."""
    values = [float(s) for s in seconds]
    return {"median": float(np.median(values)), "min": min(values), "max": max(values), "n": len(values),
            "repeats": len(values), "seconds": [round(v, 6) for v in values]}


def ratio(a: dict | None, b: dict | None) -> dict | None:
    """a / b, median against median, with the range min(a)/max(b) .. max(a)/min(b)."""
    if not a or not b or not b.get("median"):
        return None
    return {"median": a["median"] / b["median"], "low": a["min"] / b["max"], "high": a["max"] / b["min"]}


# -- subcommands (each in its own process) -----------------------------------------------------
def export(store: str, out: str, source: str = "demo") -> int:
    """Write the kernel inputs of ``store``'s whole ``source`` history as .npy files."""
    PriceStore = pokewatch_module("data.store").PriceStore

    pf = PriceStore(store).load_frame(source)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in (("prices", pf.prices), ("low", pf.low), ("days", pf.days), ("bounds", pf.bounds)):
        np.save(folder / f"{name}.npy", np.ascontiguousarray(array))
    print(json.dumps({"rows": len(pf), "series": pf.n_series}))
    return 0


def yardsticks(arrays: str, out: str, own: str, repeats: str, *threads: str) -> int:
    """Time the plain loop and the floor; check this checkout's pass (``own``.fair.npy, ...) against the plain loop."""
    from benchmarks.plain_loop import memory_floor, plain_rule
    thresholds = pokewatch_module("core.rules").thresholds

    folder = Path(arrays)
    prices, bounds = np.load(folder / "prices.npy"), np.load(folder / "bounds.npy")
    cuts = thresholds()                                   # the default rule's cuts
    result: dict = {"plain": {}, "floor": {}}
    for count in (int(t) for t in threads):
        for name, work in (("plain", lambda n=count: plain_rule(prices, bounds, 7, *cuts, threads=n)),
                           ("floor", lambda n=count: memory_floor(prices, bounds, threads=n))):
            work()
            seconds = []
            for _ in range(int(repeats)):
                started = time.perf_counter()
                work()
                seconds.append(time.perf_counter() - started)
            result[name][str(count)] = seconds
    fair, _dev, codes = plain_rule(prices, bounds, 7, *cuts, threads=1)
    if Path(f"{own}.fair.npy").exists():
        result["own_equals_plain"] = {
            "fair": bool(np.array_equal(np.load(f"{own}.fair.npy"), fair, equal_nan=True)),
            "codes": bool(np.array_equal(np.load(f"{own}.codes.npy"), codes))}
    Path(out).write_text(json.dumps(result))
    return 0


def reference(store: str, out: str, repeats: str, source: str = "demo") -> int:
    """Time the per-card groupby loop; check it against this checkout's seed_mean3 fair value."""
    from benchmarks.reference import groupby_loop_mean3
    fair_value = pokewatch_module("core.fair_value").fair_value
    PriceStore = pokewatch_module("data.store").PriceStore

    store = PriceStore(store)
    history = store.load(source)
    seconds, means = [], None
    for _ in range(int(repeats)):
        means = None
        started = time.perf_counter()
        means = groupby_loop_mean3(history)
        seconds.append(time.perf_counter() - started)
    fast = fair_value(store.load_frame(source), "seed_mean3", 3)
    values = means.to_numpy()
    Path(out).write_text(json.dumps({"rows": len(history), "seconds": seconds,
                                     "max_abs_diff_vs_fast_path": float(np.nanmax(np.abs(values - fast))),
                                     "bit_identical_share": float(np.mean(values == fast))}))
    return 0


# -- the case ---------------------------------------------------------------------------------
def _python(argv: list[str], timeout: float, env: dict | None = None, python: str | None = None) -> None:
    proc = subprocess.run([python or sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed: " + "\n".join((proc.stderr or proc.stdout).splitlines()[-8:]))


def case_kernels(checkouts: list, store: Path, work: Path, repeats: int, reference_repeats: int, timeout: float,
                 threads: tuple[int, ...] = (1, 2)) -> dict:
    """Every figure of the module docstring at the scale of ``store`` (this checkout's stored history)."""
    import os

    arrays = work / "arrays"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    _python(["-m", "benchmarks.kernel_cases", "export", str(store), str(arrays)], timeout, env)
    out: dict = {"checkouts": {}, "threads": list(threads)}
    own_prefix = arrays / "none"
    for i, checkout in enumerate(checkouts):
        prefix = arrays / f"column-{i}"
        if checkout.own:
            own_prefix = prefix
        print(f"  {checkout.name}: fair value + signal pass", flush=True)
        _python(["-P", str(STAGE), str(arrays), str(prefix), str(repeats), *map(str, threads)], timeout,
                checkout.env(work), str(checkout.python))
        measured = json.loads(Path(f"{prefix}.json").read_text())
        out["rows"], out["series"] = measured["rows"], measured["series"]
        out["checkouts"][checkout.name] = {"own": prefix == own_prefix, "prefix": str(prefix),
                                           "by_threads": {t: stats(s) for t, s in measured["by_threads"].items()}}
    print("  plain loop and memory floor", flush=True)
    _python(["-m", "benchmarks.kernel_cases", "yardsticks", str(arrays), str(work / "yardsticks.json"),
             str(own_prefix), str(repeats), *map(str, threads)], timeout, env)
    measured = json.loads((work / "yardsticks.json").read_text())
    out["plain"] = {t: stats(s) for t, s in measured["plain"].items()}
    out["floor"] = {t: stats(s) for t, s in measured["floor"].items()}
    out["own_equals_plain"] = measured.get("own_equals_plain")
    own = next((c for c in out["checkouts"].values() if c["prefix"] == str(own_prefix)), None)
    for entry in out["checkouts"].values():
        if entry is own or own is None:
            continue
        a = np.load(f"{own['prefix']}.fair.npy", mmap_mode="r")
        b = np.load(f"{entry['prefix']}.fair.npy", mmap_mode="r")
        codes_a = np.load(f"{own['prefix']}.codes.npy", mmap_mode="r")
        codes_b = np.load(f"{entry['prefix']}.codes.npy", mmap_mode="r")
        entry["fair_identical_to_own"] = bool(np.array_equal(a, b, equal_nan=True))
        entry["codes_identical_share"] = float(np.mean(codes_a == codes_b))
    if reference_repeats:
        print("  per-card groupby loop", flush=True)
        _python(["-m", "benchmarks.kernel_cases", "reference", str(store), str(work / "reference.json"),
                 str(reference_repeats)], timeout, env)
        measured = json.loads((work / "reference.json").read_text())
        out["reference"] = {**stats(measured["seconds"]), **{k: v for k, v in measured.items() if k != "seconds"}}
    for path in arrays.glob("*.npy"):
        path.unlink()
    return out


COMMANDS = {"export": export, "yardsticks": yardsticks, "reference": reference}

if __name__ == "__main__":
    sys.exit(COMMANDS[sys.argv[1]](*sys.argv[2:]))
