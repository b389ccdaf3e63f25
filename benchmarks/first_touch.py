"""What this machine charges for fresh memory: the first write to a gigabyte, seconds after others were freed.

Why: on the benchmark's virtual machine a process's first write to a page costs far
more when the host has taken that page back than when it still backs it, and freed
guest memory goes back to the host within seconds. So a large array allocated in a
fresh kernel is paid for by the megabyte, on either checkout, and touching memory once
before a benchmark (``benchmarks.run``'s ``--prefault-gb``) only helps the processes
that start right after it. Measuring this keeps the evaluate figures at 45,000 series
readable: their peak of about 1.3 GB is largely fresh memory. Timing both page sizes
(``--pages``) is what showed that numpy's default of huge pages pays the high cost
sooner (:mod:`pokewatch.memory_pages`).

For each page size and wait it touches and frees ``--gb`` GB in one child process, sleeps, then
times the first write to ``--gb`` GB in another (``np.ones``), each in a fresh
interpreter so nothing is reused inside a process.

Examples:
    .venv/bin/python -m benchmarks.first_touch --gb 0.25 --waits 0,4
    .venv/bin/python -m benchmarks.first_touch --gb 0.5 --waits 4 --pages small,huge
    .venv/bin/python -m benchmarks.first_touch --gb 1 --waits 0,1,2,4,8,16 --json
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from benchmarks.run import touch_and_free

TOUCH = ("import time, numpy as np\nstarted = time.perf_counter()\nheld = np.ones({n})\n"
         "print(time.perf_counter() - started)\n")


def _float_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds separated by commas, got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError("give at least one wait, none negative")
    return values


def _pages(text: str) -> tuple[str, ...]:
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    if not values or set(values) - {"small", "huge"}:
        raise argparse.ArgumentTypeError(f"expected small, huge or both, got {text!r}")
    return values


def _gigabytes(text: str) -> float:
    value = float(text)
    if not 0 < value <= 16:
        raise argparse.ArgumentTypeError("--gb must be more than 0 and at most 16")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.first_touch", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gb", type=_gigabytes, default=1.0, help="memory touched and freed, then timed (default 1)")
    parser.add_argument("--waits", type=_float_list, default=[0.0, 1.0, 2.0, 4.0, 8.0, 16.0],
                        help="seconds between freeing and timing, comma-separated (default 0,1,2,4,8,16)")
    parser.add_argument("--pages", type=_pages, default=("small", "huge"),
                        help="page sizes to time, comma-separated: small, huge (default both)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    return parser.parse_args(argv)


def measure(gb: float, waits: list[float], pages: tuple[str, ...] = ("small",)) -> list[dict]:
    """One row per page size and wait: seconds for the first write to ``gb`` GB, and that per MB.

    ``pages``: ``small`` (what a PokeWatch process uses, :mod:`pokewatch.memory_pages`) or ``huge``
    (numpy's default, transparent huge pages), set through ``NUMPY_MADVISE_HUGEPAGE``.
    """
    n = int(gb * 2**30) // 8
    rows = []
    for page in pages:
        env = {**os.environ, "NUMPY_MADVISE_HUGEPAGE": "1" if page == "huge" else "0"}
        for wait in waits:
            touch_and_free(gb)
            time.sleep(wait)
            out = subprocess.run([sys.executable, "-c", TOUCH.format(n=n)], check=True, capture_output=True,
                                 text=True, env=env)
            seconds = float(out.stdout.strip())
            rows.append({"pages": page, "wait_seconds": wait, "gigabytes": gb, "seconds": seconds,
                         "ms_per_mb": seconds * 1000 / (gb * 1024)})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| Pages | Seconds after freeing | First write | Per MB |", "|---|---:|---:|---:|"]
    lines += [f"| {r.get('pages', 'small')} | {r['wait_seconds']:g} | {r['seconds']:.3f} s for {r['gigabytes']:g} GB "
              f"| {r['ms_per_mb']:.2f} ms |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = measure(args.gb, args.waits, args.pages)
    print(json.dumps(rows, indent=1) if args.json else table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
