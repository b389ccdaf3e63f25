"""scripts/test_performance.py measures the latest run's model and the caches' hit rates."""
import json
import subprocess
import sys
from pathlib import Path

import joblib
import pytest

from pokewatch import runs
from pokewatch.demo_market import demo_prices
from pokewatch.model import FairValueModel
from pokewatch.rules import Rule

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "test_performance.py"


def a_run(model: FairValueModel, hits: dict[str, dict]) -> Path:
    """A published run of 2026-11-27 holding ``model`` and steps with these cache hits."""
    attempt = runs.start_run("2026-11-27")
    joblib.dump(model, attempt / "model.joblib")
    for step, cache_hits in hits.items():
        runs.record_step(attempt, step, 0.5, cache_hits)
    runs.update_manifest(attempt, model={"trained_on": "2026-11-27"})
    runs.publish(attempt)
    return attempt


@pytest.fixture
def tiny_runs(isolated_dirs):
    history = demo_prices("2026-10-01", "2026-11-27", n_series=40, epoch="2026-10-01")
    model = FairValueModel(Rule("rolling_mean", 3)).fit(history)
    a_run(model, {"train": {"train": False}, "evaluate": {"signals": False, "backtest": False}})
    a_run(model, {"train": {"train": True}, "evaluate": {"signals": True, "backtest": True}})
    return isolated_dirs


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_the_json_has_latency_percentiles_and_cache_hit_rates(tiny_runs, tmp_path):
    out = tmp_path / "perf.json"
    proc = run_script("--calls", "400", "--repeats", "3", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    for kind in ("cold", "warm"):
        assert {"p50_us", "p95_us", "p99_us"} <= set(result["predict"][kind])
        assert result["predict"][kind]["p99_us"] >= result["predict"][kind]["p50_us"] > 0
    assert result["predict_all"]["rows"] == 40
    prediction = result["cache"]["prediction"]
    assert prediction["hit_rate"] == pytest.approx(prediction["hits"] / (prediction["hits"] + prediction["misses"]))
    assert prediction["hits"] >= 400  # the warm pass asks every pair again
    disk = result["cache"]["disk"]
    assert disk["by_cache"]["train"] == {"hits": 1, "calls": 2, "hit_rate": 0.5}
    assert disk["overall"]["hit_rate"] == 0.5
    assert "p99" in proc.stdout and "hit rate" in proc.stdout


def test_without_a_run_it_says_what_to_do(isolated_dirs, tmp_path):
    proc = run_script("--json", str(tmp_path / "perf.json"))
    assert proc.returncode == 2
    assert "run_pipeline.sh" in proc.stderr


def test_help_describes_the_measurements():
    proc = run_script("--help")
    assert proc.returncode == 0 and "--calls" in proc.stdout and "p99" in proc.stdout
