"""benchmarks/cli_startup.py runs and reports wall and CPU time per command (the figures are not asserted)."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO


def test_the_startup_benchmark_reports_every_command_it_timed(tmp_path):
    done = subprocess.run([sys.executable, "-m", "benchmarks.cli_startup", "--repeats", "1", "--command=--version",
                           "--command=runs", "--runs-dir", str(tmp_path), "--json"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout)["results"]
    assert [r["command"] for r in results] == ["pokewatch --version", "pokewatch runs"]
    for result in results:
        assert len(result["seconds"]) == len(result["cpu_seconds"]) == 1 and result["median"] > 0
        assert "pandas" not in result["heavy_imports"], "neither command needs pandas"
