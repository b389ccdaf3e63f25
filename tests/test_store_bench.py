"""The store benchmark runs each case in the measured checkout's interpreter and reports time and peak memory."""
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_store_benchmark_measures_two_checkouts_side_by_side(tmp_path):
    out = tmp_path / "store_bench.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.store_bench", "--checkout", f"one={REPO}",
                           "--checkout", f"two={REPO}", "--series", "30", "--days", "12", "--history-days", "5",
                           "--repeats", "1", "--cron-days", "2", "--workdir", str(tmp_path / "work"),
                           "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(out.read_text())
    for label in ("one", "two"):
        measured = results["checkouts"][label]
        assert measured["backfill"]["rows"] > 300 and measured["backfill"]["peak_bytes"] > 1_000_000
        assert measured["add_day_write"]["rows"] > 10
        assert len(measured["cron"]["seconds"]["values"]) == 2
        assert measured["load_backfilled"]["load_frame_all_rows"] == measured["backfill"]["rows"]
        assert measured["base_merge"]["seconds"] > 0
    assert "| add one day: write_days |" in proc.stdout and "one time" in proc.stdout
