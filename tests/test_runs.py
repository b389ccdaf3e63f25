import datetime as dt
import os
import subprocess
import sys
import time

import joblib
import pytest

from pokewatch import atomic
from pokewatch.core.model import FairValueModel
from pokewatch.core.rules import Rule
from pokewatch.run import model_file, runs
from pokewatch.errors import RunError
from tests.conftest import series
from pokewatch.run.folder import RunFolder


def good_run(date, trained_on=None):
    attempt = runs.start_run(date, {"collect": {"source": "demo"}})
    RunFolder(attempt).signals.write_text("signal\nBUY\n")
    if trained_on:
        model = FairValueModel(Rule("rolling_mean", 3), trained_on=trained_on)
        model_file.write(model_file.path_in(attempt), model.fit(series("base1-4", [1.0, 2.0, 3.0])))
        runs.update_manifest(attempt, model={"trained_on": trained_on})
    runs.publish(attempt)
    return attempt


def test_publishing_points_the_date_and_latest_at_the_attempt(isolated_dirs):
    attempt = good_run("2026-11-27")
    root = isolated_dirs["runs"]
    assert (root / "2026-11-27").resolve() == attempt.resolve()
    assert runs.latest_run() == attempt.resolve()
    assert runs.read_manifest(root / "latest")["status"] == "success"


def test_a_failed_run_leaves_latest_on_the_last_good_run():
    good = good_run("2026-11-27")
    failed = runs.start_run("2026-11-28")
    runs.fail(failed, "evaluate", "exit status 1", "cell 3 (In [2]): ValueError: boom")
    assert runs.latest_run() == good.resolve()
    assert runs.read_manifest(failed)["failure"]["cell"].startswith("cell 3")
    with pytest.raises(RunError, match="no successful run for '2026-11-28'"):
        runs.run_folder("2026-11-28")


def test_rerunning_a_day_replaces_its_folder_only_on_success():
    first = good_run("2026-11-27")
    second = runs.start_run("2026-11-27")
    assert runs.run_folder("2026-11-27") == first.resolve()
    runs.publish(second)
    assert runs.run_folder("2026-11-27") == second.resolve()
    assert first.exists(), "superseded attempts are kept whole (a few per day)"


def test_latest_only_moves_forward_in_time():
    newer = good_run("2026-11-28")
    good_run("2026-11-20")
    assert runs.latest_run() == newer.resolve()


def test_same_day_attempts_never_share_a_folder():
    assert runs.start_run("2026-11-27") != runs.start_run("2026-11-27")


def test_find_model_never_uses_a_model_trained_after_the_run_date():
    good_run("2026-11-23", trained_on="2026-11-23")
    good_run("2026-11-30", trained_on="2026-11-30")
    assert runs.find_model("2026-11-26").parent.name.startswith("2026-11-23")
    assert runs.find_model("2026-11-30").parent.name.startswith("2026-11-30")
    assert runs.find_model("2026-11-01") is None


def test_find_model_skips_models_it_cannot_load_old_pickles_and_other_format_versions(monkeypatch):
    good_run("2026-11-23", trained_on="2026-11-23")
    pickled = good_run("2026-11-24", trained_on="2026-11-24")
    model_file.path_in(pickled).unlink()
    joblib.dump({"a pickle": "as runs before model.npz hold"}, pickled / model_file.OLD_MODEL_FILE)
    with monkeypatch.context() as older:
        older.setattr(model_file, "FORMAT_VERSION", 0)
        good_run("2026-11-25", trained_on="2026-11-25")                      # written in format version 0
    assert runs.find_model("2026-11-26").parent.name.startswith("2026-11-23")


def test_bad_dates_are_refused():
    with pytest.raises(RunError, match="YYYY-MM-DD"):
        runs.start_run("28/11/2026")


def test_run_links_are_relative_so_the_runs_folder_can_move(isolated_dirs):
    good_run("2026-11-27")
    assert not os.readlink(isolated_dirs["runs"] / "2026-11-27").startswith("/")


# -- latest never pinned by a future run --------------------------------------------------------
def future(days: int) -> str:
    return f"{dt.date.today() + dt.timedelta(days=days):%Y-%m-%d}"


def test_a_run_for_a_future_date_is_published_but_does_not_become_latest(isolated_dirs):
    today = good_run(future(0))
    stray = good_run(future(180))
    assert runs.run_folder(future(180)) == stray.resolve()
    assert runs.latest_run() == today.resolve()
    assert os.readlink(isolated_dirs["runs"] / "latest") == future(0)


def test_a_latest_link_left_on_a_future_run_no_longer_pins_it(isolated_dirs):
    yesterday = good_run(future(-1))
    stray = good_run(future(180))
    root = isolated_dirs["runs"]
    (root / "latest").unlink()
    os.symlink(future(180), root / "latest")  # as publish left it before this fix
    assert runs.latest_run() == yesterday.resolve()
    today = good_run(future(0))
    assert os.readlink(root / "latest") == future(0) and runs.latest_run() == today.resolve()
    assert stray.exists()


def test_latest_honours_a_link_pointed_back_at_an_older_good_run(isolated_dirs):
    older = good_run("2026-11-20")
    good_run("2026-11-27")
    root = isolated_dirs["runs"]
    (root / "latest").unlink()
    os.symlink("2026-11-20", root / "latest")  # an operator rolling back
    assert runs.latest_run() == older.resolve()


# -- crash bookkeeping ---------------------------------------------------------------------------
def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_an_attempt_whose_process_is_gone_is_marked_abandoned_with_the_time():
    killed = runs.start_run("2026-11-27", pid=dead_pid())
    runs.record_step(killed, "collect", 1.0)
    live = runs.start_run("2026-11-28")  # this test's own process
    assert runs.abandon_dead_attempts() == [killed]
    manifest = runs.read_manifest(killed)
    assert manifest["status"] == "abandoned" and manifest["abandoned_at"] >= manifest["started_at"]
    assert manifest["abandoned"]["last_step_done"] == "collect"
    assert "is gone" in manifest["abandoned"]["reason"]
    assert runs.read_manifest(live)["status"] == "running"


def test_a_reused_pid_does_not_keep_a_dead_attempt_running():
    attempt = runs.start_run("2026-11-27")
    runs.update_manifest(attempt, process={"started": "1"})  # same pid, another process start time
    assert runs.abandon_dead_attempts() == [attempt]


def test_attempts_of_other_hosts_and_finished_ones_are_left_alone():
    other = runs.start_run("2026-11-27", pid=dead_pid())
    runs.update_manifest(other, process={"host": "another-machine"})
    failed = runs.start_run("2026-11-28", pid=dead_pid())
    runs.fail(failed, "collect", "exit status 1")
    assert runs.abandon_dead_attempts() == []
    assert runs.read_manifest(other)["status"] == "running"


def test_an_attempt_started_before_processes_were_recorded_is_abandoned():
    attempt = runs.start_run("2026-11-27")
    manifest = runs.read_manifest(attempt)
    del manifest["process"]
    atomic.write_json(RunFolder(attempt).manifest, manifest)
    assert runs.abandon_dead_attempts() == [attempt]


def age(path, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old), follow_symlinks=False)


def test_stale_temporary_files_are_removed_but_a_live_writers_are_kept(isolated_dirs, tmp_path):
    killed = runs.start_run("2026-11-27", pid=dead_pid())
    stale = RunFolder(killed).plots / ".top_cards.png.abc123.tmp"
    stale.write_bytes(b"half a png")
    age(stale, 2 * runs.STALE_TEMP_SECONDS)
    fresh = killed / ".signals.csv.def456.tmp"
    fresh.write_text("being written")
    link = isolated_dirs["runs"] / ".latest.4242.tmp"
    os.symlink("2026-11-27", link)
    age(link, 2 * runs.STALE_TEMP_SECONDS)
    store = tmp_path / "store"
    (store / "demo").mkdir(parents=True)
    left = store / "demo" / ".2026-11-27.parquet.x1.tmp"
    left.write_bytes(b"par")
    age(left, 2 * runs.STALE_TEMP_SECONDS)
    kept_name = killed / "notes.tmp"  # not a temporary file of ours
    kept_name.write_text("mine")
    age(kept_name, 2 * runs.STALE_TEMP_SECONDS)
    removed = runs.remove_stale_temp_files(extra_folders=(store,))
    assert sorted(removed) == sorted([stale, link, left])
    assert fresh.exists() and kept_name.exists() and not link.is_symlink()


def test_a_failure_records_its_log_and_the_cell():
    attempt = runs.start_run("2026-11-27")
    runs.fail(attempt, "collect", "exit status 1", "cell 3 (In [2]): OSError: boom", log="logs/collect.log")
    assert runs.read_manifest(attempt)["failure"] == {"step": "collect", "cell": "cell 3 (In [2]): OSError: boom",
                                                      "error": "exit status 1", "log": "logs/collect.log"}


def test_a_steps_wall_time_is_kept_beside_its_cell_time():
    attempt = runs.start_run("2026-11-27")
    runs.record_step(attempt, "collect", 0.4, {"history": True}, rows=10)
    runs.record_wall_times(attempt, {"collect": 6.25, "train": 5.0})
    runs.record_step(attempt, "train", 0.1)
    steps = runs.read_manifest(attempt)["steps"]
    assert steps["collect"] == {"seconds": 0.4, "cache_hits": {"history": True}, "rows": 10, "wall_seconds": 6.25}
    assert steps["train"] == {"seconds": 0.1, "cache_hits": {}, "wall_seconds": 5.0}


# -- superseded attempts: pruned explicitly, never silently ----------------------------------------
def test_superseded_attempts_beyond_two_are_pruned_to_their_record_and_listed():
    first, second, third = (good_run("2026-11-27") for _ in range(3))
    for attempt in (first, second, third):
        atomic.write_json(RunFolder(attempt).metrics, {"kpis": {}})
    fourth = good_run("2026-11-27")
    assert [p.exists() for p in (first, second, third, fourth)] == [True] * 4
    pruned = runs.read_manifest(first)
    assert pruned["status"] == "pruned" and pruned["pruned"]["by"] == fourth.name
    assert pruned["pruned"]["freed_bytes"] > 0
    assert sorted(p.name for p in first.iterdir()) == sorted([RunFolder.manifest.name, RunFolder.metrics.name])
    assert runs.read_manifest(second)["status"] == runs.read_manifest(third)["status"] == "success"
    assert RunFolder(second).signals.exists()
    assert runs.read_manifest(fourth)["pruned"] == [{"attempt": first.name,
                                                     "freed_bytes": pruned["pruned"]["freed_bytes"]}]
    assert set(runs.attempts()["status"]) == {"pruned", "success"}


def test_helpers_of_runs_import_no_pandas():
    code = ("import sys; from pokewatch.run import runs; runs.latest_run(); "
            "print(any(m in sys.modules for m in ('pandas', 'pydantic', 'joblib')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
