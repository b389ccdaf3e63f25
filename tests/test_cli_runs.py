"""``pokewatch runs``, ``runs show``, ``signals`` and ``card`` on demo runs, including their errors.

All but the last test use small run folders built in Python; the last runs the real
pipeline once and checks what an analyst gets from it: report, index, portfolio, CLI.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pokewatch import cli
from pokewatch.demo_market import demo_catalogue
from tests.analyst_fixtures import failed_run, make_run
from tests.conftest import REPO


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out = capsys.readouterr()
    return status, out.out, out.err


@pytest.fixture
def history(isolated_dirs):
    """Two published days and a failed third."""
    root = isolated_dirs["runs"]
    make_run(root, "2026-11-26")
    make_run(root, "2026-11-27")
    failed_run(root, "2026-11-28")
    return root


def test_runs_lists_every_attempt_newest_first_with_status_and_kpis(history, capsys):
    status, out, _ = run_cli(capsys, "runs")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["date", "state", "BUY", "SELL"]
    assert lines[1].startswith("2026-11-28") and "failed" in lines[1] and "evaluate: cell 3" in lines[1]
    assert lines[2].startswith("2026-11-27") and "published" in lines[2] and "x" in lines[2]
    assert "3 attempt(s)" in out
    status, out, _ = run_cli(capsys, "runs", "--published")
    assert "failed" not in out and out.count("published") == 2


def test_runs_show_gives_the_details_of_a_good_and_of_a_failed_run(history, capsys):
    status, out, _ = run_cli(capsys, "runs", "show", "latest")
    assert status == 0 and out.startswith("Run 2026-11-27: published")
    assert "signals    BUY" in out and "card(s) are flagged BUY" in out and "BUY precision" in out
    status, out, _ = run_cli(capsys, "runs", "show", "2026-11-28")
    assert status == 0 and "FAILED at  step evaluate: cell 3 (In [2]): ValueError: boom" in out
    assert "evaluate.ipynb" in out


@pytest.mark.parametrize("argv", [("runs", "show", "2026-12-01"), ("signals", "--date", "2026-12-01"),
                                  ("card", "Pikachu", "--date", "2026-12-01")])
def test_an_unknown_date_is_one_clear_line_and_exit_status_2(history, capsys, argv):
    status, out, err = run_cli(capsys, *argv)
    assert status == 2 and out == ""
    assert err.startswith("pokewatch: error: no ") and "2026-12-01" in err and "2026-11-27" in err
    assert len(err.strip().splitlines()) == 1


def test_a_malformed_date_is_rejected_clearly(history, capsys):
    status, _, err = run_cli(capsys, "signals", "--date", "yesterday")
    assert status == 2 and "YYYY-MM-DD" in err


def test_signals_lists_flags_strongest_first_and_filters_by_signal(history, capsys):
    today = pd.read_csv(history / "2026-11-27" / "signals.csv")
    status, out, _ = run_cli(capsys, "signals", "--limit", "0")
    assert status == 0 and out.startswith("published run of 2026-11-27")
    flagged = today[today["signal"] != "HOLD"]
    rows = [line for line in out.splitlines()[2:] if line.strip()]
    assert len(rows) == len(flagged) or (flagged.empty and "no BUY or SELL flags" in out)
    status, out, _ = run_cli(capsys, "signals", "--signal", "hold", "--csv", "--limit", "3")
    frame = pd.read_csv(io.StringIO(out))
    assert len(frame) == 3 and set(frame["signal"]) == {"HOLD"}
    strength = frame["deviation"].abs().fillna(-1).tolist()
    assert strength == sorted(strength, reverse=True)


def test_card_prints_a_history_table_and_writes_a_png(history, capsys, tmp_path):
    today = pd.read_csv(history / "2026-11-27" / "signals.csv")
    name = today.loc[today["market_price"].idxmax(), "name"]
    status, out, _ = run_cli(capsys, "card", *name.lower().split(), "--days", "5", "--date", "2026-11-27")
    assert status == 0 and f"{name} (" in out and "matched by name" in out
    table = out.split("\n\n")[1].splitlines()
    assert table[0].split() == ["date", "market_price", "fair_value", "deviation", "signal"]
    assert len(table) <= 6 and table[-1].startswith("2026-11-27")
    png = out.strip().splitlines()[-1].removeprefix("plot: ")
    assert png.endswith(".png") and Path(png).read_bytes()[:4] == b"\x89PNG"
    status, out, _ = run_cli(capsys, "card", name, "--out", str(tmp_path / "c.png"))
    assert status == 0 and (tmp_path / "c.png").exists()


def test_an_unknown_card_lists_close_matches(history, capsys):
    today = pd.read_csv(history / "2026-11-27" / "signals.csv")
    name = today["name"].iloc[0]
    status, _, err = run_cli(capsys, "card", name[:-1] + "qqq")
    assert status == 2 and "no card matches" in err and "close matches" in err
    status, _, err = run_cli(capsys, "card", today["card_id"].iloc[0], "--variant", "Shadowless")
    assert status == 2 and "has no 'Shadowless' printing" in err


@pytest.mark.parametrize("command", ["runs", "signals", "card"])
def test_every_command_has_help_with_examples(command, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main([command, "--help"])
    assert done.value.code == 0 and "examples:" in capsys.readouterr().out


@pytest.mark.slow
def test_after_the_real_pipeline_an_analyst_has_a_report_an_index_a_portfolio_and_the_cli(tmp_path):
    """One real (small) pipeline run; the default market's example portfolio is checked in test_portfolio."""
    cards = demo_catalogue(80).drop_duplicates("card_id").head(4)
    holdings = tmp_path / "my_cards.csv"
    holdings.write_text("card_id,variant,quantity,purchase_price,purchase_date\n" + "".join(
        f"{c},{v},2,1.50,2026-09-01\n" for c, v in zip(cards["card_id"], cards["variant"])) + "zz-0,Normal,1,1,\n")
    env = {**os.environ, "POKEWATCH_RUNS_DIR": str(tmp_path / "runs"), "POKEWATCH_DATA_DIR": str(tmp_path / "data"),
           "POKEWATCH_CACHE_DIR": str(tmp_path / "cache"), "TQDM_DISABLE": "1"}
    env.pop("POKEWATCH_WEBHOOK_URL", None)
    done = subprocess.run(["bash", str(REPO / "scripts" / "run_pipeline.sh"), "--date", "2026-11-28",
                           "--param", "n_series=80", "--param", "history_days=150",
                           "--param", f"portfolio_file={holdings}"],
                          check=False, capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "runs" / "2026-11-28"
    page = (run / "report.html").read_text()
    assert "data:image/png;base64," in page and "Portfolio (my_cards.csv)" in page
    assert "<script src" not in page
    assert 'href="2026-11-28/report.html"' in (tmp_path / "runs" / "index.html").read_text()
    value = pd.read_csv(run / "portfolio_value.csv")
    assert len(value) > 30 and value["value"].gt(0).all()
    lots = pd.read_csv(run / "portfolio.csv")
    assert len(lots) == 4 and lots["pnl"].notna().all() and lots["signal"].isin(["BUY", "HOLD", "SELL"]).all()
    assert pd.read_csv(run / "portfolio_rejected.csv")["reason"].tolist() == ["unknown_card"]
    assert (run / "plots" / "portfolio_value.png").exists()
    assert json.loads((run / "manifest.json").read_text())["report"]["status"] == "rendered"
    shown = subprocess.run([sys.executable, "-m", "pokewatch", "runs", "show", "latest"],
                           check=False, capture_output=True, text=True, timeout=120, env=env)
    assert shown.returncode == 0 and "Run 2026-11-28: published" in shown.stdout and "Portfolio" in shown.stdout
