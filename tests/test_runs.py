import os

import pytest

from pokewatch import atomic, runs
from pokewatch.errors import RunError


def good_run(date, trained_on=None):
    attempt = runs.start_run(date, {"collect": {"source": "demo"}})
    (attempt / "signals.csv").write_text("signal\nBUY\n")
    if trained_on:
        atomic.write_bytes(attempt / "model.joblib", b"model")
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
    assert first.exists(), "superseded attempts are kept (a few per day)"


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


def test_bad_dates_are_refused():
    with pytest.raises(RunError, match="YYYY-MM-DD"):
        runs.start_run("28/11/2026")


def test_run_links_are_relative_so_the_runs_folder_can_move(isolated_dirs):
    good_run("2026-11-27")
    assert not os.readlink(isolated_dirs["runs"] / "2026-11-27").startswith("/")
