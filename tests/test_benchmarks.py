"""The benchmark entry point runs end to end at a tiny scale and reports what the docs need."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--scales", "200", "--days", "60", "--repeats", "2",
                           "--calls", "500", "--out", str(out), "--workdir", str(out / "work"), "--in-process"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads((out / "performance.json").read_text()), out


def test_every_stage_reports_time_and_peak_memory(bench):
    results, _ = bench
    scale = results["scales"][0]
    assert scale["series"] == 200 and scale["rows"] > 10_000
    for stage in ("prepare", "load", "signals", "backtest", "train", "train_hit", "predict", "reference"):
        assert "error" not in scale[stage], scale[stage]
        assert scale[stage]["peak_bytes"] > 1_000_000
    assert scale["signals"]["signals"]["best"] > 0 and scale["signals"]["signals"]["rows_per_second"] > 0
    assert scale["train_hit"]["all_hits"] is True
    assert set(scale["predict"]["predict"]["warm"]) >= {"p50_us", "p95_us", "p99_us"}


def test_the_reference_loop_is_timed_and_agrees_with_the_fast_path(bench):
    scale = bench[0]["scales"][0]
    reference = scale["reference"]
    assert reference["groupby_loop"]["best"] > 0 and reference["mask_loop"]["best"] > 0
    assert reference["max_abs_diff_vs_fast_path"] <= 1e-9


def test_the_ratio_to_the_reference_and_the_targets_are_written(bench):
    results, out = bench
    from benchmarks.report import ratio

    measured = ratio(results["scales"][0])
    assert measured["speedup"] == pytest.approx(1 / measured["ratio"])
    assert {t["what"] for t in results["targets"]} >= {"History load", "Peak memory of train"}
    page = (out / "performance.md").read_text()
    assert "Fast path vs reference loop, same run" in page and "DASK_SCHEDULER_ADDRESS" in page
    assert (out / "performance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_help_names_the_scales_option():
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--help"], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and "--scales" in proc.stdout and "--days" in proc.stdout
