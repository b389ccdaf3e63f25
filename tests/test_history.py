"""The pandas-free reader of the runs folder agrees with pokewatch.run.runs and explore.run_history."""
from __future__ import annotations

from pokewatch.analysis import history
from pokewatch.run import runs
from pokewatch.run.folder import ATTEMPTS, RunFolder
from tests.analyst_fixtures import failed_run, make_run


def test_attempts_are_the_ones_pokewatch_runs_lists(isolated_dirs):
    root = isolated_dirs["runs"]
    make_run(root, "2026-11-27")
    make_run(root, "2026-11-28", publish=False)
    failed_run(root, "2026-11-28")
    expected = runs.attempts(root)
    listed = history.attempts(root)
    assert [a["path"] for a in listed] == expected["path"].tolist()
    assert [a["published"] for a in listed] == expected["published"].tolist() == [True, False, False]
    assert history.published_dates(root) == runs.published_dates(root) == ["2026-11-27"]


def test_a_broken_manifest_is_skipped_not_fatal(isolated_dirs):
    root = isolated_dirs["runs"]
    good = make_run(root, "2026-11-27")
    broken = root / ATTEMPTS / "2026-11-28T000000-1"
    broken.mkdir(parents=True)
    RunFolder(broken).manifest.write_text("{not json")
    assert [r["attempt"] for r in history.records(root)] == [good.name]
