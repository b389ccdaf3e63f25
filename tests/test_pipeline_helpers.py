"""The helper commands behind scripts/run_pipeline.sh, without running notebooks: the plan
refuses bad input naming what the user typed, start/should-train/fail stay lean, and a
failure is recorded even when the notebook on disk is truncated. They run as
``python -m pokewatch pipeline COMMAND``, as the script calls them."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import joblib
import pytest
import yaml

from pokewatch.run import helpers, model_file, runs
from pokewatch.errors import ParameterError
from pokewatch.run.folder import RunFolder
from tests.conftest import REPO


def run_helper(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pokewatch", "pipeline", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=120)


def test_the_plan_resolves_relative_paths_in_the_callers_folder(tmp_path):
    (tmp_path / "tcgcsv-archives").mkdir()
    (tmp_path / "my_prices.csv").write_text("card_id,date,market_price\n")
    result = helpers.plan("2026-11-27", "tcgcsv", [], archives="tcgcsv-archives",
                           backfill="2026-11-20..2026-11-27", cwd=tmp_path)
    collect = result["notebooks"]["collect"]
    assert collect == {"run_date": "2026-11-27", "source": "tcgcsv", "backfill_from": "2026-11-20",
                       "archives": str(tmp_path / "tcgcsv-archives")}
    assert result["notebooks"]["train"] == {"run_date": "2026-11-27", "source": "tcgcsv"}
    result = helpers.plan("2026-11-27", "file", ["input_path=my_prices.csv"], cwd=tmp_path)
    assert result["notebooks"]["collect"]["input_path"] == str(tmp_path / "my_prices.csv")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"archives": "../shared/data/tcgcsv-archives"}, "^--archives must be an existing folder"),
    ({"overrides": ["input_path=my_prices.csv"]}, "^parameter input_path must be an existing file"),
    ({"run_date": "2262-04-11"}, "^--date is .* days after today"),
    ({"backfill": "2026-11-01..9999-12-31"}, "^--backfill TO must lie between"),
    ({"backfill": "2026-11-30..2026-11-01"}, "^--backfill FROM must not be after the run date 2026-11-01"),
    ({"backfill": "2026-11-01"}, "^--backfill must be FROM..TO"),
    ({"overrides": ["eval_days=999999999"]}, "^parameter eval_days must be at most 3650"),
    ({"overrides": ['source_options={"n_series":"abc"}']}, "^parameter source_options: its n_series"),
    ({"overrides": ["top_n=0"]}, "^parameter top_n must be at least 1"),
    ({"overrides": ["run_dir=/tmp/x"]}, "^--param run_dir is not allowed: it is set by the pipeline itself"),
    ({"overrides": ["run_date=2026-11-27"]}, "^--param run_date is not allowed: use --date"),
    ({"overrides": ["buy_threshold"]}, "^--param expects NAME=VALUE"),
    ({"source": "ebay"}, "^--source must be one of demo"),
])
def test_the_plan_refuses_bad_input_naming_it_as_typed(kwargs, message, tmp_path):
    args = {"run_date": "2026-11-27", "source": "demo", "overrides": [], **kwargs}
    with pytest.raises(ParameterError, match=message):
        helpers.plan(args.pop("run_date"), args.pop("source"), args.pop("overrides"), cwd=tmp_path, **args)


def test_the_plan_records_every_parameter_of_every_notebook():
    result = helpers.plan("2026-11-27", "demo", ["portfolio_file=none", "buy_threshold=0.2"])
    assert result["parameters"]["evaluate"]["portfolio_file"] == "none"
    assert result["parameters"]["train"]["buy_threshold"] == 0.2
    assert result["parameters"]["collect"]["n_series"] == 500, "defaults are recorded too"


def test_plan_start_should_train_and_fail_load_only_what_they_need(tmp_path, isolated_dirs):
    plan_file = tmp_path / "plan.json"
    # An atexit hook reports the modules: the command ends with pokewatch.startup.exit_now,
    # which runs the hooks and then leaves without returning here.
    code = ("import atexit, sys, runpy; sys.argv = ['pokewatch', 'pipeline', *sys.argv[1:]]\n"
            "def report():\n"
            "    heavy = [m for m in ('pandas', 'numpy', 'pydantic', 'joblib', 'papermill', 'nbformat')\n"
            "             if m in sys.modules]\n"
            "    print('HEAVY', ' '.join(heavy), file=sys.stderr)\n"
            "atexit.register(report)\n"
            "runpy.run_module('pokewatch', run_name='__main__')\n")

    def heavy(*args: str) -> set[str]:
        out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True,
                             cwd=REPO).stderr
        return set(out.rsplit("HEAVY", 1)[1].split())

    assert "papermill" not in heavy("plan", "--date", "2026-11-27", "--out", str(plan_file))
    assert heavy("start", str(plan_file)) == set()
    attempt = Path(next((isolated_dirs["runs"] / "attempts").iterdir()))
    assert heavy("should-train", "--date", "2026-11-27", "--attempt", str(attempt)) == set()
    RunFolder(attempt).notebook("collect").write_text('{"cells": [')
    assert heavy("fail", "--attempt", str(attempt), "--step", "collect", "--notebook",
                 str(RunFolder(attempt).notebook("collect")), "--no-index") == set()


def test_start_writes_one_parameter_file_per_notebook_and_records_the_pipelines_pid(tmp_path, isolated_dirs):
    plan_file = tmp_path / "plan.json"
    assert run_helper("plan", "--date", "2026-11-27", "--param", "n_series=80", "--out", str(plan_file)).returncode == 0
    started = run_helper("start", str(plan_file), "--pid", str(os.getpid()))
    attempt = Path(started.stdout.strip())
    assert yaml.safe_load(RunFolder(attempt).parameters_file("collect").read_text()) == {
        "run_date": "2026-11-27", "source": "demo", "n_series": 80, "run_dir": str(attempt)}
    manifest = runs.read_manifest(attempt)
    assert manifest["process"]["pid"] == os.getpid() and manifest["parameters"]["collect"]["n_series"] == 80
    assert RunFolder(attempt).logs.is_dir()


def test_start_marks_a_killed_attempt_abandoned_and_says_so(tmp_path, isolated_dirs):
    child = subprocess.Popen(["true"])
    child.wait()
    killed = runs.start_run("2026-11-26", pid=child.pid)
    plan_file = tmp_path / "plan.json"
    run_helper("plan", "--date", "2026-11-27", "--out", str(plan_file))
    started = run_helper("start", str(plan_file))
    assert f"marked {killed.name} abandoned: its process is gone" in started.stderr
    assert started.stderr.startswith(dt.date.today().strftime("%Y-"))
    assert runs.read_manifest(killed)["status"] == "abandoned"


def test_should_train_decides_without_pandas_on_mondays_and_without_a_model():
    assert helpers.should_train("2026-11-30") == (True, "Monday: weekly training")
    assert helpers.should_train("2026-12-01") == (True, "no model trained on or before 2026-12-01 yet")
    assert helpers.should_train("2026-12-01", force=True)[0] is True


def failed_notebook(path: Path, cell_index: int = 2) -> None:
    cells = [{"cell_type": "code", "execution_count": i, "outputs": [], "source": ""} for i in range(4)]
    cells[cell_index]["outputs"] = [{"output_type": "error", "ename": "ValueError", "evalue": "boom"}]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


def test_fail_names_the_cell_and_points_at_the_full_log():
    attempt = runs.start_run("2026-11-27")
    failed_notebook(RunFolder(attempt).notebook("collect"))
    RunFolder(attempt).log("collect").write_text("Traceback ...\n" * 60)
    line = helpers.fail(attempt, "collect", "exit status 1", RunFolder(attempt).notebook("collect"),
                         RunFolder(attempt).log("collect"), {"collect": 4.2})
    assert line == f"collect failed at cell 2 (In [2]): ValueError: boom; full output in {attempt}/logs/collect.log"
    manifest = runs.read_manifest(attempt)
    assert manifest["failure"] == {"step": "collect", "cell": "cell 2 (In [2]): ValueError: boom",
                                   "error": "exit status 1", "log": "logs/collect.log"}
    assert manifest["steps"]["collect"]["wall_seconds"] == 4.2


def test_fail_records_the_failure_when_a_full_disk_truncated_the_notebook():
    attempt = runs.start_run("2026-11-27")
    failed_notebook(RunFolder(attempt).notebook("evaluate"))
    text = RunFolder(attempt).notebook("evaluate").read_text()
    RunFolder(attempt).notebook("evaluate").write_text(text[: len(text) // 2])
    RunFolder(attempt).log("evaluate").write_text("...\nOSError: [Errno 28] No space left on device\n  \n")
    line = helpers.fail(attempt, "evaluate", "exit status 1", RunFolder(attempt).notebook("evaluate"),
                         RunFolder(attempt).log("evaluate"))
    failure = runs.read_manifest(attempt)["failure"]
    assert runs.read_manifest(attempt)["status"] == "failed"
    assert failure["error"].startswith("exit status 1: OSError: [Errno 28] No space left on device; "
                                       f"the executed notebook {attempt}/evaluate.ipynb is unreadable")
    assert line.startswith("evaluate failed: exit status 1: OSError: [Errno 28]")


def test_fail_without_a_notebook_or_log_still_records_the_step():
    attempt = runs.start_run("2026-11-27")
    assert helpers.fail(attempt, "publish", "exit status 1") == "publish failed: exit status 1"
    assert runs.read_manifest(attempt)["failure"]["step"] == "publish"


def test_a_rejected_plan_is_one_stamped_line_and_exit_2():
    result = run_helper("plan", "--date", "2026-11-27", "--param", "eval_days=999999999")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and " pipeline: error: parameter eval_days" in result.stderr
    assert result.stderr[:4].isdigit()


def test_should_train_counts_only_models_of_the_runs_own_source(isolated_dirs):
    from tests.analyst_fixtures import make_run

    make_run(isolated_dirs["runs"], "2026-11-28")            # a demo run with its model
    assert helpers.should_train("2026-12-01", source="demo")[0] is False
    assert helpers.should_train("2026-12-01", source="pokemontcg") == \
        (True, "no pokemontcg model trained on or before 2026-12-01 yet")


def test_should_train_trains_when_the_only_model_is_an_old_pickle(isolated_dirs):
    """After an upgrade runs/ holds only a model.joblib, which evaluate cannot load: train, do not reuse it."""
    from tests.analyst_fixtures import make_run

    run = make_run(isolated_dirs["runs"], "2026-11-28")
    assert helpers.should_train("2026-12-01", source="demo")[0] is False
    model_file.path_in(run).unlink()
    joblib.dump({"pickled by": "an older PokeWatch"}, run / model_file.OLD_MODEL_FILE)
    assert helpers.should_train("2026-12-01", source="demo") == \
        (True, "no demo model trained on or before 2026-12-01 yet")
