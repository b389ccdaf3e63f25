"""scripts/test_performance.py: latency and hit rates under a stated workload, not built-in ones."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import joblib
import pytest

from pokewatch.run import runs
from pokewatch.data.demo_market import demo_prices
from pokewatch.core.model import FairValueModel
from pokewatch.core.rules import Rule
from pokewatch.run.folder import RunFolder

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "test_performance.py"


def script():
    spec = importlib.util.spec_from_file_location("test_performance_script_module", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fresh_model() -> FairValueModel:
    history = demo_prices("2026-10-01", "2026-11-27", n_series=40, epoch="2026-10-01")
    return FairValueModel(Rule("rolling_mean", 3)).fit(history)


@pytest.fixture
def model():
    return fresh_model()


@pytest.fixture
def published(model, isolated_dirs):
    attempt = runs.start_run("2026-11-27")
    joblib.dump(model, RunFolder(attempt).model)
    runs.update_manifest(attempt, model={"trained_on": "2026-11-27"})
    runs.publish(attempt)
    return attempt


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)


def test_each_distinct_request_misses_once_and_every_repeat_hits(model):
    perf = script()
    requests = perf.request_stream(model, 3000, zipf=1.1)
    measured = perf.measure_stream(model, requests)
    cache = measured["cache"]
    distinct = len(set(requests))
    assert cache["misses"] == distinct and cache["hits"] == len(requests) - distinct
    assert cache["hit_rate"] == pytest.approx(cache["hits"] / len(requests), abs=1e-4)
    assert measured["miss"]["calls"] + measured["hit"]["calls"] == len(requests) - 1   # the first call on its own
    assert 0.3 < cache["hit_rate"] < 1.0            # popular cards repeat, rare ones do not


def test_a_flatter_popularity_hits_less(model):
    perf = script()
    skewed = perf.measure_stream(model, perf.request_stream(model, 2000, zipf=1.5))["cache"]["hit_rate"]
    other = fresh_model()
    flat = perf.measure_stream(other, perf.request_stream(other, 2000, zipf=0.0))["cache"]["hit_rate"]
    assert flat < skewed


def test_the_schedule_hits_where_the_pipeline_would_and_misses_after_a_correction():
    measured = script().simulate_schedule(days=5, n_series=30, history_days=120, start="2026-01-05", retry_every=3)
    by_step = measured["by_step"]
    # runs: Mon, Tue, Wed, Wed again (a retry), Thu, Fri; the correction is stored on Wednesday
    assert [(r["date"], r["attempt"]) for r in measured["runs"]][2:4] == [("2026-01-07", 1), ("2026-01-07", 2)]
    assert by_step["selection, train step"] == {"hits": 0, "calls": 1, "hit_rate": 0.0}
    assert by_step["track record"]["calls"] == 6 and by_step["track record"]["hits"] == 1     # only the retry
    assert by_step["selection, evaluate step"]["hits"] == 5   # all but the run right after the correction
    assert measured["runs"][2]["hits"]["selection, evaluate step"] is False
    assert "corrected prices" in measured["what"] and "2026-01-07" in measured["what"]


def test_the_json_says_what_it_measured(published, tmp_path):
    out = tmp_path / "perf.json"
    proc = run_script("--calls", "500", "--repeats", "3", "--workload-days", "0", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    model = result["model_part"]
    assert "Zipf(1.1)" in model["workload"]["what"] and model["workload"]["calls"] == 500
    assert model["predict"]["cache"]["requests"] == 500
    assert model["predict"]["miss"]["p99_us"] >= model["predict"]["miss"]["p50_us"] > 0
    assert model["predict_all"]["rows"] == 40 and model["predict_all"]["repeats"] == 3
    assert "disk_cache" not in result
    assert "p99" in proc.stdout and "distinct requests" in proc.stdout


def test_without_a_run_it_says_what_to_do(isolated_dirs, tmp_path):
    proc = run_script("--json", str(tmp_path / "perf.json"))
    assert proc.returncode == 2
    assert "run_pipeline.sh" in proc.stderr


def test_help_describes_the_workloads():
    proc = run_script("--help")
    assert proc.returncode == 0 and "--calls" in proc.stdout and "Zipf" in proc.stdout
    assert "--workload-days" in proc.stdout and "cron" in proc.stdout
