"""``python -P kernel_stage.py ARRAYS_DIR OUT_PREFIX REPEATS THREADS...``: time one checkout's fair value + signal pass.

Standalone on purpose, like :mod:`benchmarks.finish_timer`: it runs with the python of
the checkout being measured and imports only that checkout's ``pokewatch``. It reads
the arrays of a stored history (``prices.npy``, ``low.npy``, ``bounds.npy``), runs the
checkout's compiled fair value + signal pass for the default rule (rolling mean of
the 7 prior observations, BUY at -10%, SELL at +15%, nothing under $1) ``REPEATS``
times on each thread count, and writes the seconds to ``OUT_PREFIX.json`` and the
last pass's fair values and codes to ``OUT_PREFIX.fair.npy`` / ``.codes.npy`` so the
caller can compare checkouts bit for bit.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

# Run as a script in the other checkout's python (-P, its PYTHONPATH): compat sits beside this file.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from compat import pokewatch_module  # noqa: E402


def signal_pass(kernels, prices, low, bounds, threads: int):
    """(fair, codes) of the default rule with whichever kernel this checkout has."""
    if hasattr(kernels, "rule_rows"):                       # the rule kernel (walk-forward main and later)
        _module = pokewatch_module("core.rules")
        Rule = _module.Rule
        thresholds = _module.thresholds

        cuts = thresholds()
        fair, _dev, codes = kernels.rule_rows(prices, low, bounds, kernels.MEAN_PRIOR, 7, 3.0, *cuts,
                                              *Rule().kernel_filters(), threads=threads)
        return fair, codes
    thresholds = pokewatch_module("core.signals").thresholds

    fair, _dev, codes = kernels.signal_rows(prices, bounds, kernels.MEAN_PRIOR, 7, 3.0, *thresholds(),
                                            threads=threads)
    return fair, codes


def main(argv: list[str]) -> int:
    arrays, prefix, repeats, *threads = argv
    kernels = pokewatch_module("core.kernels")

    folder = Path(arrays)
    prices, low, bounds = (np.load(folder / f"{name}.npy", mmap_mode="r") for name in ("prices", "low", "bounds"))
    prices, low, bounds = (np.ascontiguousarray(a) for a in (prices, low, bounds))
    out: dict = {"rows": int(len(prices)), "series": int(len(bounds) - 1), "by_threads": {}}
    fair = codes = None
    for count in (int(t) for t in threads):
        signal_pass(kernels, prices, low, bounds, count)         # page in, warm the pool
        seconds = []
        for _ in range(int(repeats)):
            fair = codes = None
            started = time.perf_counter()
            fair, codes = signal_pass(kernels, prices, low, bounds, count)
            seconds.append(time.perf_counter() - started)
        out["by_threads"][str(count)] = seconds
    np.save(f"{prefix}.fair.npy", fair)
    np.save(f"{prefix}.codes.npy", codes)
    Path(f"{prefix}.json").write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
