"""scripts/run_pipeline.sh end to end: success, idempotent re-run, weekly training,
bad parameters, a failing notebook, a killed run and the lock, and a log cron can keep.
Each run uses a small demo market."""
from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from pokewatch.data.raw_archive import RawArchive
from pokewatch.run.folder import RunFolder
from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "run_pipeline.sh"
SMALL = ["--param", "n_series=80", "--param", "history_days=150"]
pytestmark = pytest.mark.slow


STAMPED = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z [a-z]+: ")


class Home:
    """A self-contained runs/, store, cache and temporary folder for pipeline runs."""

    def __init__(self, root: Path):
        self.root = root
        (root / "tmp").mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "POKEWATCH_RUNS_DIR": str(root / "runs"),
                    "POKEWATCH_DATA_DIR": str(root / "data"), "POKEWATCH_CACHE_DIR": str(root / "cache"),
                    "TQDM_DISABLE": "1", "TMPDIR": str(root / "tmp")}
        self.runs = root / "runs"

    def run(self, *args: str, env: dict | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=300,
                              env={**self.env, **(env or {})}, cwd=cwd)

    def leftovers(self) -> list[Path]:
        """Temporary files the script left behind (the plan file must never be one)."""
        return sorted((self.root / "tmp").iterdir())

    def manifest(self, date: str) -> dict:
        return json.loads(RunFolder(self.runs / date).manifest.read_text())

    def attempts(self) -> list[Path]:
        return sorted((self.runs / "attempts").iterdir())


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = Home(tmp_path_factory.mktemp("pipeline"))
    first = home.run("--date", "2026-11-28", *SMALL, "--param", "portfolio_file=portfolio.example.csv")
    assert first.returncode == 0, first.stderr
    home.first = first
    return home


def test_a_run_publishes_a_complete_dated_folder(home):
    folder = home.runs / "2026-11-28"
    files = RunFolder(folder)
    for path in (*map(files.notebook, ("collect", "train", "evaluate")), files.prices, files.quality, files.model,
                 files.metrics, files.signals, files.track_record, files.manifest):
        assert path.exists(), path.name
    assert len(list(files.plots.glob("*.png"))) >= 4
    manifest = home.manifest("2026-11-28")
    assert manifest["status"] == "success"
    assert manifest["parameters"]["collect"]["n_series"] == 80
    assert {"git_commit", "package_version", "started_at", "finished_at"} <= set(manifest)
    assert {"collect", "train", "evaluate"} <= set(manifest["steps"])
    assert manifest["steps"]["train"]["data_fingerprint"]
    assert (home.runs / "latest").resolve() == folder.resolve()
    signals = pd.read_csv(RunFolder(folder).signals)
    assert set(signals["signal"]) <= {"BUY", "HOLD", "SELL"} and len(signals) == 80


def test_the_log_has_one_line_per_step_and_the_summary(home):
    log = home.first.stderr
    for step in ("collect", "train", "evaluate", "publish"):
        assert f"step {step}: done in" in log
    assert "BUY" in home.first.stdout and "run folder" in home.first.stdout


def test_every_log_line_is_stamped_and_free_of_kernel_noise(home):
    lines = (home.first.stdout + home.first.stderr).splitlines()
    assert lines and all(STAMPED.match(line) for line in lines), [x for x in lines if not STAMPED.match(x)]
    text = "\n".join(lines)
    for noise in ("TCP without encryption", "ZMQError", "Traceback", "WARNING", "step api"):
        assert noise not in text
    assert not home.leftovers()


def test_every_parameter_reaches_the_manifest_with_paths_made_absolute(home):
    evaluate = home.manifest("2026-11-28")["parameters"]["evaluate"]
    assert evaluate["portfolio_file"] == str(REPO / "portfolio.example.csv")
    assert {"eval_days", "top_n", "engine"} <= set(evaluate)
    train = home.manifest("2026-11-28")["parameters"]["train"]
    assert {"horizon_days", "buy_threshold", "sell_threshold"} <= set(train)


def test_each_steps_wall_time_is_recorded_beside_its_cell_time(home):
    steps = home.manifest("2026-11-28")["steps"]
    for step in ("collect", "train", "evaluate"):
        assert steps[step]["wall_seconds"] > steps[step]["seconds"] > 0
        assert RunFolder(home.runs / "2026-11-28").log(step).exists()


def test_a_second_run_the_same_day_hits_the_cache_and_adds_no_duplicates(home):
    again = home.run("--date", "2026-11-28", *SMALL)
    assert again.returncode == 0, again.stderr
    manifest = home.manifest("2026-11-28")
    assert manifest["training"]["trained"] is False
    assert manifest["steps"]["evaluate"]["cache_hits"] == {"track_record": True, "selection": True}
    store = pd.read_parquet(home.root / "data" / "store" / "demo")
    assert not store.duplicated(["card_id", "variant", "currency", "date"]).any()
    assert store["date"].nunique() == 151


@pytest.mark.parametrize(("args", "named"), [
    (("--param", "buy_threshold=-1"), "parameter buy_threshold must be more than 0"),
    (("--param", "eval_days=999999999"), "parameter eval_days must be at most 3650"),
    (("--param", 'source_options={"n_series":"abc"}'), "parameter source_options: its n_series"),
    (("--date", "9999-12-31"), "--date must lie between"),
    (("--date", "2262-04-11"), "days after today"),
    (("--date", ""), "--date needs a value"),
    (("--wait-lock", "abc"), "--wait-lock must be a number of seconds"),
    (("--wait-lock", "-1"), "--wait-lock must be a number of seconds"),
    (("--source", "file", "--param", "input_path=my_prices.csv"), "parameter input_path must be an existing file"),
    (("--source", "tcgcsv", "--archives", "../shared/data/nowhere", "--backfill", "2025-09-21..2025-09-22"),
     "--archives must be an existing folder"),
])
def test_bad_input_fails_fast_naming_it_and_leaves_nothing_behind(home, args, named):
    before = (home.runs / "latest").resolve()
    attempts = home.attempts()
    started = time.monotonic()
    result = home.run(*args)
    assert result.returncode == 2, result.stderr
    assert named in result.stderr
    assert all(STAMPED.match(line) for line in result.stderr.splitlines()), result.stderr
    assert time.monotonic() - started < 60
    assert (home.runs / "latest").resolve() == before
    assert home.attempts() == attempts
    assert not home.leftovers(), "the plan file is removed on every exit"


def test_an_unknown_parameter_lists_the_known_ones(home):
    result = home.run("--param", "bye_threshold=0.1")
    assert result.returncode == 2 and "bye_threshold" in result.stderr and "buy_threshold" in result.stderr


def test_a_failing_notebook_is_named_kept_and_not_published(home, tmp_path):
    broken_data_dir = tmp_path / "not-a-folder"
    broken_data_dir.write_text("a file where the store should be")
    before = (home.runs / "latest").resolve()
    result = home.run("--date", "2026-11-30", *SMALL, env={"POKEWATCH_DATA_DIR": str(broken_data_dir)})
    assert result.returncode == 1
    failed = [a for a in home.attempts() if a.name.startswith("2026-11-30")]
    assert len(failed) == 1 and RunFolder(failed[0]).notebook("collect").exists()
    summary = [line for line in result.stderr.splitlines() if "collect failed at cell" in line]
    assert len(summary) == 1 and f"full output in {failed[0]}/logs/collect.log" in summary[0]
    assert "Traceback" not in result.stderr and all(STAMPED.match(x) for x in result.stderr.splitlines())
    assert "PapermillExecutionError" in RunFolder(failed[0]).log("collect").read_text()
    manifest = json.loads(RunFolder(failed[0]).manifest.read_text())
    assert manifest["status"] == "failed" and manifest["failure"]["step"] == "collect"
    assert manifest["failure"]["log"] == "logs/collect.log" and manifest["steps"]["collect"]["wall_seconds"] > 0
    assert "NotADirectoryError" in manifest["failure"]["cell"] or "FileExistsError" in manifest["failure"]["cell"]
    assert (home.runs / "latest").resolve() == before
    assert not (home.runs / "2026-11-30").exists()


def test_an_overlapping_run_exits_clearly_while_the_lock_is_held(home):
    with open(home.runs / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = home.run("--date", "2026-11-28")
    assert result.returncode == 75
    assert "another pipeline run holds" in result.stderr
    assert result.stderr.rstrip().endswith("(use --wait-lock SECONDS to wait)"), "no stray exit status"
    assert not home.leftovers()


def test_a_killed_run_is_marked_abandoned_by_the_next_run(home):
    before = set(home.attempts())
    script = subprocess.Popen(["bash", str(SCRIPT), "--date", "2026-11-27", *SMALL], env=home.env, cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    for line in script.stderr:
        if "step collect: started" in line:
            break
    os.killpg(script.pid, signal.SIGKILL)  # what the OOM killer or a power cut does: no trap runs
    script.wait()
    killed = sorted(set(home.attempts()) - before)
    assert len(killed) == 1 and json.loads(RunFolder(killed[0]).manifest.read_text())["status"] == "running"
    again = home.run("--date", "2026-11-28", *SMALL)
    assert again.returncode == 0, again.stderr
    assert f"marked {killed[0].name} abandoned" in again.stderr
    manifest = json.loads(RunFolder(killed[0]).manifest.read_text())
    assert manifest["status"] == "abandoned" and manifest["abandoned_at"]


def test_help_explains_the_options():
    result = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for option in ("--date", "--source", "--force-train", "--param", "--backfill", "--archives"):
        assert option in result.stdout


def test_training_is_weekly_on_mondays(tmp_path):
    home = Home(tmp_path)
    monday = home.run("--date", "2026-01-05", *SMALL)
    assert monday.returncode == 0, monday.stderr
    tuesday = home.run("--date", "2026-01-06", *SMALL)
    assert tuesday.returncode == 0, tuesday.stderr
    assert home.manifest("2026-01-05")["training"]["trained"] is True
    assert "Monday" in home.manifest("2026-01-05")["training"]["reason"]
    tuesday_manifest = home.manifest("2026-01-06")
    assert tuesday_manifest["training"]["trained"] is False
    assert tuesday_manifest["model"]["trained_on"] == "2026-01-05"
    assert not RunFolder(home.runs / "2026-01-06").notebook("train").exists()


def test_tcgcsv_source_runs_end_to_end_against_a_local_server(tmp_path):
    from sources_server import RecordedServer, tcgcsv_routes

    home = Home(tmp_path)
    with tcgcsv_routes(RecordedServer()) as server:
        result = home.run("--source", "tcgcsv", "--date", "2026-01-05",
                          env={"POKEWATCH_TCGCSV_URL": server.url, "POKEWATCH_HTTP_RETRIES": "1"})
    assert result.returncode == 0, result.stderr
    folder = home.runs / "2026-01-05"
    signals = pd.read_csv(RunFolder(folder).signals)
    assert len(signals) > 0 and (signals["currency"] == "USD").all()
    raw = RawArchive(RunFolder(folder).raw / "tcgcsv")     # the responses moved to the kept folder it names
    assert raw.entries() and all(raw.has(entry["name"]) for entry in raw.entries())
    assert home.manifest("2026-01-05")["parameters"]["collect"]["source"] == "tcgcsv"


def test_a_backfill_from_archives_collects_every_day_and_is_idempotent(tmp_path):
    from sources_server import write_archive

    archive_dir = tmp_path / "archives"
    days = pd.date_range("2025-09-01", "2025-09-20", freq="D")
    for i, day in enumerate(days):
        prices = [{"productId": 1000 + n, "subTypeName": "Holofoil", "marketPrice": round(5 + n + (i % 3), 2),
                   "lowPrice": 1.0, "highPrice": 999.0} for n in range(12)]
        write_archive(archive_dir, f"{day:%Y-%m-%d}", {3: {"604": prices}})
    home = Home(tmp_path / "home")
    # The user stands in another checkout: its package must not shadow this one's.
    (tmp_path / "pokewatch").mkdir()
    (tmp_path / "pokewatch" / "__init__.py").write_text("raise ImportError('the wrong pokewatch')\n")
    (tmp_path / "pokewatch.egg-info").mkdir()
    (tmp_path / "pokewatch.egg-info" / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: pokewatch\n")
    # typed relative to where the user stands, although the notebooks run in notebooks/
    args = ("--source", "tcgcsv", "--archives", "archives", "--backfill", "2025-09-01..2025-09-20")
    first = home.run(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert home.manifest("2025-09-20")["parameters"]["collect"]["archives"] == str(archive_dir)
    store = pd.read_parquet(home.root / "data" / "store" / "tcgcsv")
    assert store["date"].nunique() == 20 and len(store) == 20 * 12
    assert home.manifest("2025-09-20")["training"]["trained"] is True
    before = sorted((p.name, p.stat().st_mtime_ns) for p in (home.root / "data" / "store" / "tcgcsv").iterdir())
    assert home.run(*args, cwd=tmp_path).returncode == 0
    after = sorted((p.name, p.stat().st_mtime_ns) for p in (home.root / "data" / "store" / "tcgcsv").iterdir())
    assert after == before
