"""How long ``pokewatch`` takes to answer, from a cold interpreter to its exit, per command.

Why: a terminal command that takes 2-4 s before printing anything is one people stop
using. Most of that was imports (pandas, matplotlib, numba) that the command did not
need; this benchmark keeps the figure honest after every change. It is a benchmark,
not a timed test: the machine's load moves wall times by a factor of two, so a test
with a threshold would either be flaky or meaningless.

For each command it runs ``python -m pokewatch ARGS`` ``--repeats`` times in fresh
processes and reports every time and the median of two clocks: wall time
(``time.perf_counter`` around the process, what a person waits) and the process's own
CPU time (user + system, from ``os.wait4``), which barely moves with the machine's
load and so shows whether a change helped when other jobs share the cores. It also
names the heavy modules the command imported (from one extra run under
``-X importtime``) so a regression shows where it came from.

Examples:
    .venv/bin/python -m benchmarks.cli_startup                       # --help, runs, --version on runs/
    .venv/bin/python -m benchmarks.cli_startup --runs-dir /tmp/runs --repeats 9
    .venv/bin/python -m benchmarks.cli_startup --command "signals --limit 5" --json
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The commands the issue's start-up target is about, plus --version as the floor.
DEFAULT_COMMANDS = ("--help", "runs", "--version")
#: Top-level packages whose import costs a noticeable share of a second.
HEAVY = ("pandas", "numpy", "matplotlib", "numba", "pyarrow", "joblib", "nbformat", "nbconvert", "rich",
         "scipy", "fastapi", "requests")
#: The issue's target for --help and runs, in seconds (median).
TARGET_SECONDS = 1.0


def _run(argv: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one fresh ``python -m pokewatch ARGV``."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "pokewatch", *argv], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(process.pid, 0)
    process.returncode = 0  # reaped above; stops Popen from waiting again
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime


def heavy_imports(argv: list[str], env: dict) -> dict[str, float]:
    """Heavy top-level packages one run of ``argv`` imported, with their cumulative import seconds."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "pokewatch", *argv], cwd=ROOT, env=env,
                          check=False, capture_output=True, text=True, timeout=120)
    found = {}
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)$", line)
        if match and match.group(3) in HEAVY:
            found[match.group(3)] = max(found.get(match.group(3), 0.0), int(match.group(1)) / 1e6)
    return dict(sorted(found.items(), key=lambda kv: -kv[1]))


def measure(command: str, repeats: int, env: dict) -> dict:
    """Wall times of ``repeats`` fresh runs of one command (after one warm-up for the OS file cache)."""
    argv = command.split()
    _run(argv, env)
    runs = [_run(argv, env) for _ in range(repeats)]
    wall, cpu = [w for w, _ in runs], [c for _, c in runs]
    return {"command": f"pokewatch {command}", "seconds": [round(t, 3) for t in wall],
            "median": round(statistics.median(wall), 3), "cpu_seconds": [round(t, 3) for t in cpu],
            "cpu_median": round(statistics.median(cpu), 3), "heavy_imports": heavy_imports(argv, env)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--command", action="append", metavar="ARGS",
                        help=f"pokewatch arguments to time, repeatable (default: {', '.join(DEFAULT_COMMANDS)})")
    parser.add_argument("--repeats", type=int, default=5, help="fresh runs per command (default 5; median)")
    parser.add_argument("--runs-dir", metavar="DIR", help="runs folder the commands read (POKEWATCH_RUNS_DIR)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}
    if args.runs_dir:
        env["POKEWATCH_RUNS_DIR"] = str(Path(args.runs_dir).resolve())
    results = [measure(c, max(1, args.repeats), env) for c in (args.command or DEFAULT_COMMANDS)]
    if args.json:
        print(json.dumps({"python": sys.version.split()[0], "cpus": os.cpu_count(), "results": results}, indent=2))
        return 0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"median of {args.repeats} fresh runs, {os.cpu_count()} CPU(s), load {load:.1f}, "
          f"target {TARGET_SECONDS:.1f} s wall")
    for r in results:
        heavy = ", ".join(f"{name} {s:.2f}s" for name, s in r["heavy_imports"].items()) or "none"
        print(f"  {r['command']:<24} wall {r['median']:5.2f} s  cpu {r['cpu_median']:5.2f} s  "
              f"(wall runs: {', '.join(f'{t:.2f}' for t in r['seconds'])}); heavy imports: {heavy}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
