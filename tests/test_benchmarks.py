"""The benchmark harness: what it measures is real, and the page shows what was measured.

The fast tests run the harness's parts on small real inputs (a stored demo market,
a pipeline run's processes and notebooks) and render the page from a small recorded
results file (tests/fixtures/benchmarks/performance.json) whose figures are easy to
check by hand; the end-to-end one, marked slow, runs the pipeline through the shim
and checks that its processes account for the wall time.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import kernel_cases, pipeline_cases, plain_loop, report
from pokewatch.core import kernels, rules
from pokewatch.data.demo_market import demo_prices
from pokewatch.core.rules import Rule
from pokewatch.data.store import PriceStore
from pokewatch.run.folder import RunFolder

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    store = PriceStore(tmp_path_factory.mktemp("bench") / "store")
    store.write_days("demo", demo_prices("2026-01-01", "2026-04-30", n_series=300, epoch="2026-01-01"))
    return store


def test_the_plain_loop_computes_exactly_what_the_package_kernel_computes(demo_store):
    pf = demo_store.load_frame("demo")
    cuts = rules.thresholds()
    ours = kernels.rule_rows(pf.prices, pf.low, pf.bounds, kernels.MEAN_PRIOR, 7, 3.0, *cuts,
                             *Rule().kernel_filters())
    for threads in (1, 3):
        plain = plain_loop.plain_rule(pf.prices, pf.bounds, 7, *cuts, threads=threads)
        assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(ours, plain))
    assert (ours[2] != rules.HOLD).sum() > 50
    floor = plain_loop.memory_floor(pf.prices, pf.bounds, threads=2)
    assert np.array_equal(floor[0], pf.prices) and (floor[2] == 1).all()


def test_the_kernel_case_times_every_pass_on_the_same_arrays_and_the_page_shows_its_medians(demo_store, tmp_path):
    own = pipeline_cases.Checkout.at("this checkout", REPO, own=True)
    other = pipeline_cases.Checkout("a second column", own.root, own.python, own.commit, own=True)
    measured = kernel_cases.case_kernels([other, own], demo_store.root, tmp_path, repeats=3, reference_repeats=1,
                                         timeout=600, threads=(1, 2))
    assert measured["rows"] == len(demo_store.load_frame("demo")) and measured["series"] == 300
    assert measured["own_equals_plain"] == {"fair": True, "codes": True}
    assert measured["checkouts"]["a second column"]["fair_identical_to_own"] is True
    assert measured["checkouts"]["a second column"]["codes_identical_share"] == 1.0
    for entry in (measured["plain"]["2"], measured["floor"]["1"], measured["checkouts"]["this checkout"]
                  ["by_threads"]["1"]):
        assert entry["repeats"] == 3 and entry["min"] <= entry["median"] <= entry["max"]
        assert entry["median"] == pytest.approx(np.median(entry["seconds"]), abs=1e-6)
    assert measured["reference"]["max_abs_diff_vs_fast_path"] <= 1e-9
    page = report.kernel_table({"kernels": {"300": measured}}, "300")
    ours = measured["checkouts"]["this checkout"]["by_threads"]["2"]
    assert report._spread(report.stats(ours["seconds"])) in page
    assert "(300 series); 3 repeats each." in page and "fair values yes, codes yes" in page


def _process_log(tmp_path: Path) -> Path:
    """A shim log of a pipeline run: the helper commands (in both layouts' spelling), two notebooks and finish."""
    log = tmp_path / "processes.tsv"
    t = 1_000.0
    lines = []
    for seconds, command in [(2.0, "-m pokewatch pipeline plan --date 2026-11-27"),
                             (0.5, "-m pokewatch.pipeline start"),
                             (6.0, f"-m papermill --kernel python3 -f p.yaml in.ipynb {tmp_path}/collect.ipynb"),
                             (0.7, "-m pokewatch pipeline should-train --date 2026-11-27"),
                             (5.0, f"-m papermill --kernel python3 -f p.yaml in.ipynb {tmp_path}/evaluate.ipynb"),
                             (3.0, "-m pokewatch pipeline finish --attempt x")]:
        lines.append(f"{t}\t{t + seconds}\t0\t300000\t{command}")
        t += seconds + 0.1
    log.write_text("\n".join(lines) + "\n")
    return log


def _notebook(path: Path, start: float, cells: list[tuple[float, float]]) -> None:
    from datetime import UTC, datetime

    def iso(value):
        return datetime.fromtimestamp(value, UTC).isoformat()

    path.write_text(json.dumps({"cells": [
        {"cell_type": "code", "source": [f"step_{i}()"], "metadata": {"papermill": {
            "start_time": iso(start + a), "end_time": iso(start + b)}}} for i, (a, b) in enumerate(cells)]}))


def test_the_breakdown_of_a_run_accounts_for_its_wall_time(tmp_path):
    log = _process_log(tmp_path)
    processes = pipeline_cases._processes(log)
    assert [p.get("helper") or p.get("notebook") for p in processes] == [
        "plan", "start", "collect", "should-train", "evaluate", "finish"]
    collect, evaluate = processes[2], processes[4]
    _notebook(RunFolder(tmp_path).notebook("collect"), collect["started"], [(2.0, 2.1), (2.1, 4.5)])
    _notebook(RunFolder(tmp_path).notebook("evaluate"), evaluate["started"], [(1.5, 1.6), (1.6, 3.8)])
    run = pipeline_cases.Run(["--date", "2026-11-27"], 18.0, 0, processes=processes,
                             renders=[{"command": ["finish"], "render_seconds": 1.25}])
    run.notebooks = {p["notebook"]: pipeline_cases._notebook_times(Path(p["output"]), p) for p in processes
                     if p["kind"] == "notebook"}
    parts = pipeline_cases.breakdown(run)
    assert parts["helper processes"] == pytest.approx(2.0 + 0.5 + 0.7)
    assert parts["kernel start"] == pytest.approx(2.0 + 1.5, abs=1e-3)
    assert parts["cells"] == pytest.approx(2.5 + 2.3, abs=1e-3)
    assert parts["kernel shutdown"] == pytest.approx((6.0 - 4.5) + (5.0 - 3.8), abs=1e-3)
    assert parts["report render"] == 1.25 and parts["publish"] == pytest.approx(3.0 - 1.25)
    # what no process accounts for: the gaps between the six processes (0.1 s each) and nothing else
    assert parts["bash and other"] == pytest.approx(18.0 - (2.0 + 0.5 + 6.0 + 0.7 + 5.0 + 3.0), abs=1e-3)


def test_the_page_puts_both_checkouts_side_by_side_with_their_ratio(tmp_path):
    log = _process_log(tmp_path)
    runs = []
    for scale in (1.0, 2.0, 3.0):
        processes = pipeline_cases._processes(log)
        run = pipeline_cases.Run([], 18.0 * scale, 0, processes=processes)
        runs.append({**run.__dict__, "breakdown": {**pipeline_cases.breakdown(run), "total": 18.0 * scale}})
    results = {"checkouts": [{"name": "today's main", "root": "/ref", "commit": "48a26c6"},
                             {"name": "this checkout", "root": "/own", "commit": "abc"}],
               "cases": {"today's main": {"demo": {"runs": runs}}, "this checkout": {"demo": {"runs": runs[:1]}}}}
    table = report.breakdown_table(results, ("demo", "runs"))
    assert "today's main (3 runs)" in table and "this checkout (1 runs)" in table
    assert "36.00 s (18.00 s–54.00 s)" in table          # median (min–max) of the three totals
    assert "| **total** | 36.00 s (18.00 s–54.00 s) | 18.00 s | 0.50× |" in table
    demo = next(t for t in report.targets(results) if t["what"].startswith("Demo pipeline"))
    assert demo["measured"] == "18.00 s" and demo["today_main"].startswith("36.00 s") and demo["met"] is False


RECORDED = REPO / "tests" / "fixtures" / "benchmarks" / "performance.json"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """``python -m benchmarks.report`` on a small recorded results file: the page, its JSON and what it printed.

    The recording: two checkouts' demo runs (today's main 10, 12 and 14 s plus one failed
    run of 99 s; this checkout 5.5, 6 and 9 s), and the fair value + signal pass at
    20,000 series (this checkout 50/60/80 ms on 2 threads against a plain loop of 50 ms,
    a floor of 20 ms and a groupby loop of 6 s).
    """
    folder = tmp_path_factory.mktemp("report")
    (folder / "performance.json").write_text(RECORDED.read_text())
    assert report.main([str(folder / "performance.json")]) == 0
    return (folder / "performance.md").read_text(), json.loads((folder / "performance.json").read_text())


def test_the_page_shows_the_median_and_range_of_successful_runs_and_their_ratio(rendered):
    page, _ = rendered
    # the failed run (99 s) is left out of today's main
    assert "| Seconds | today's main (3 runs) | this checkout (3 runs) | this / main |" in page
    assert "| **total** | 12.00 s (10.00 s–14.00 s) | 6.00 s (5.50 s–9.00 s) | 0.50× |" in page
    assert "| … of which evaluate cells | 5.00 s (4.00 s–6.00 s) | 2.00 s (1.00 s–3.00 s) | 0.40× |" in page
    assert "| peak memory, evaluate kernel | 400 MB (300 MB–500 MB) | 200 MB (200 MB–200 MB) | 0.50× |" in page
    assert "| `pokewatch pipeline plan` | 6.00 s (5.00 s–7.00 s) | 1.50 s (1.00 s–2.00 s) |" in page


def test_the_page_compares_the_pass_with_the_plain_loop_the_floor_and_the_groupby_loop(rendered):
    page, _ = rendered
    assert "| this checkout: fair value + signal pass | 2 | 60.0 ms (50.0 ms–80.0 ms) | 1.20× | 3.00× |" in page
    assert "| memory-traffic floor (read price, write 17 bytes) | 2 | 20.0 ms (20.0 ms–20.0 ms) | 0.40× | 1.00× |" \
        in page
    assert "14.0M rows (20,000 series); 3 repeats each." in page
    assert "today's main 120× (100–150×); this checkout 100× (75–120×)" in page     # 6 s over 40..80 ms
    assert "3.0× the memory-traffic floor" in page and "so it is not memory-bound" in page


def test_a_target_is_judged_on_the_median_and_one_not_measured_says_so(rendered):
    page, results = rendered
    # met although the slowest run took 9 s
    assert "| Demo pipeline after set-up (issue 14) | ≤ 8 s | 6.00 s (5.50 s–9.00 s) | 12.00 s (10.00 s–14.00 s) " \
           "| met |" in page
    assert "| 20,000-series warm re-run (issue 14) | ≤ 12 s | not measured | not measured | not measured |" in page
    targets = {t["what"]: t for t in results["targets"]}
    assert targets["Demo pipeline after set-up (issue 14)"]["value"] == 6.0
    plain = "Fair value + signal at 20,000 × 730, vs the plain loop (2 threads, issue 15)"
    assert (targets[plain]["measured"], targets[plain]["today_main"], targets[plain]["met"]) == ("1.20×", "1.00×", True)


def test_a_checkout_without_a_successful_run_is_named_with_its_exit_statuses():
    results = json.loads(RECORDED.read_text())
    for run in results["cases"]["this checkout"]["demo"]["runs"]:
        run["exit_status"] = 3
    results["cases"]["today's main"]["demo"]["runs"] = results["cases"]["today's main"]["demo"]["runs"][3:]
    table = report.breakdown_table(results, ("demo", "runs"))
    assert table == "No successful run (exit statuses: {\"today's main\": [1], 'this checkout': [3, 3, 3]})."


def test_an_unknown_case_is_refused():
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--cases", "demo,nope"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "nope" in proc.stderr


@pytest.mark.slow
def test_a_real_pipeline_run_through_the_shim_is_broken_down_and_writes_nothing_into_another_checkout(tmp_path):
    own = pipeline_cases.Checkout.at("this checkout", REPO, own=True)
    folders = pipeline_cases.Folders(tmp_path / "folders")
    run = pipeline_cases.run_pipeline(own, ["--date", "2026-11-27", "--param", "n_series=40", "--param",
                                            "history_days=60"], folders, tmp_path, timeout=900)
    assert run["exit_status"] == 0, run["stderr_tail"]
    parts = run["breakdown"]
    assert set(parts["helpers"]) >= {"plan", "start", "should-train", "finish"}
    assert set(run["notebooks"]) == {"collect", "train", "evaluate"}
    assert all(run["notebooks"][n]["cells_seconds"] > 0 and run["notebooks"][n]["peak_bytes"] > 50e6
               for n in run["notebooks"])
    assert parts["report render"] > 0 and parts["publish"] > 0
    assert 0 <= parts["bash and other"] < 0.2 * parts["total"]      # the processes account for the wall time
    foreign = pipeline_cases.Checkout("other", own.root, own.python, "x", own=False)
    env = foreign.env(tmp_path)
    assert env["NUMBA_CACHE_DIR"].startswith(str(tmp_path)) and env["PYTHONPYCACHEPREFIX"].startswith(str(tmp_path))


def test_memory_is_touched_once_before_measuring_and_zero_skips_it():
    from benchmarks.run import _prefault

    assert _prefault(0) == 0.0
    assert _prefault(0.25) > 0.0          # 256 MB in a child process, then returned to the system


def test_the_first_touch_benchmark_times_a_fresh_write_per_wait_and_refuses_bad_sizes():
    from benchmarks import first_touch

    rows = first_touch.measure(0.01, [0.0, 0.1], ("small", "huge"))
    assert [(r["pages"], r["wait_seconds"]) for r in rows] == [("small", 0.0), ("small", 0.1), ("huge", 0.0),
                                                                ("huge", 0.1)]
    assert all(r["gigabytes"] == 0.01 and r["seconds"] > 0 for r in rows)
    assert rows[0]["ms_per_mb"] == pytest.approx(rows[0]["seconds"] * 1000 / (0.01 * 1024))
    assert "| huge | 0.1 |" in first_touch.table(rows)
    for bad in (["--gb", "0"], ["--gb", "17"], ["--waits", "-1"], ["--waits", "x"], ["--pages", "giant"]):
        with pytest.raises(SystemExit):
            first_touch.parse_args(bad)
