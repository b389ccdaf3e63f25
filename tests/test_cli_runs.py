"""``pokewatch runs``, ``runs show``, ``signals`` and ``card`` on demo runs, including their errors.

All but the last test use small run folders built in Python; the last runs the real
pipeline once and checks what an analyst gets from it: report, index, portfolio, CLI.
"""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import pokewatch
from pokewatch.cli import terminal
from pokewatch.analysis import report
from pokewatch.data.demo_market import demo_catalogue
from pokewatch.cli import main as cli
from pokewatch.run.folder import INDEX, RunFolder
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
    head = next(i for i, line in enumerate(lines) if line.startswith("Date"))
    assert lines[head].split()[:3] == ["Date", "Status", "Source"] and "precision" in "".join(lines[:head])
    rows = [line for line in lines[head + 2:head + 5]]
    assert [r.split()[:3] for r in rows] == [["2026-11-28", "failed", "unknown"], ["2026-11-27", "published", "demo"],
                                             ["2026-11-26", "published", "demo"]]
    assert "x)" in rows[1] and "%" in rows[1] and "nan" not in out.lower()
    assert "2026-11-28 failed at evaluate: cell 3" in out
    assert "3 attempt(s)" in out
    status, out, _ = run_cli(capsys, "runs", "--published")
    assert "failed" not in out and out.count("published") == 2


def test_runs_fit_an_80_column_terminal_by_leaving_out_optional_columns(history, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    terminal._width.cache_clear()
    try:
        status, out, _ = run_cli(capsys, "runs")
    finally:
        terminal._width.cache_clear()
    assert status == 0 and max(len(line.rstrip()) for line in out.splitlines()) <= 80
    assert "BUY precision" in out and "2026-11-27" in out


def test_runs_json_gives_every_attempt_with_source_and_null_for_missing_figures(history, capsys):
    status, out, _ = run_cli(capsys, "runs", "--json")
    attempts = json.loads(out)["attempts"]
    assert status == 0 and [a["run_date"] for a in attempts] == ["2026-11-28", "2026-11-27", "2026-11-26"]
    good, failed = attempts[1], attempts[0]
    assert good["source"] == "demo" and good["cards"] == len(pd.read_csv(RunFolder(history / "2026-11-27").signals))
    assert isinstance(good["buy_lift"], float) and failed["buy_lift"] is None and failed["failed_step"] == "evaluate"
    assert "NaN" not in out


def test_runs_show_gives_the_details_of_a_good_and_of_a_failed_run(history, capsys):
    status, out, _ = run_cli(capsys, "runs", "show", "latest")
    assert status == 0 and out.startswith("Run 2026-11-27: published (demo")
    assert "signals    BUY" in out and "cards tracked" in out and "card(s) are flagged BUY" in out
    kpi_header = next(line for line in out.splitlines() if line.startswith("KPI"))
    assert kpi_header.split() == ["KPI", "Value"], "one header row, not a stray KPI/value pair"
    assert "BUY precision" in out
    status, out, _ = run_cli(capsys, "runs", "show", "2026-11-28")
    assert status == 0 and "FAILED at  step evaluate: cell 3 (In [2]): ValueError: boom" in out
    folder = next(line.split(None, 1)[1] for line in out.splitlines() if line.strip().startswith("folder"))
    assert f"notebook   {RunFolder(folder).notebook('evaluate')}" in out
    status, out, _ = run_cli(capsys, "runs", "show", "latest", "--json")
    shown = json.loads(out)
    assert shown["attempt"]["run_date"] == "2026-11-27" and shown["kpis"]["buy_lift"] > 0 and shown["summary"]


@pytest.mark.parametrize("argv", [("runs", "show", "2026-12-01"), ("signals", "--date", "2026-12-01"),
                                  ("card", "Pikachu", "--date", "2026-12-01")])
def test_an_unknown_date_is_one_clear_line_and_exit_status_2(history, capsys, argv):
    status, out, err = run_cli(capsys, *argv)
    assert status == 2 and out == ""
    assert err.startswith("pokewatch: error: no ") and "2026-12-01" in err and "2026-11-27" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("argv", "named"), [(("signals", "--date", "yesterday"), "--date"),
                                             (("card", "x", "--date", "2026-13-45"), "--date"),
                                             (("runs", "show", "yesterday"), "DATE")])
def test_a_malformed_date_names_the_option_the_user_typed(history, capsys, argv, named):
    status, _, err = run_cli(capsys, *argv)
    assert status == 2 and "YYYY-MM-DD" in err and f"{named} must be" in err
    assert "run_date" not in err and "parameter" not in err


def test_signals_lists_flags_strongest_first_with_money_and_percentages(history, capsys):
    today = pd.read_csv(RunFolder(history / "2026-11-27").signals)
    status, out, _ = run_cli(capsys, "signals", "--signal", "HOLD", "--limit", "3")
    assert status == 0 and out.startswith("published demo run of 2026-11-27")
    assert f"{len(today):,} cards tracked" in out
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("Signal"))
    assert lines[head].split()[:2] == ["Signal", "Card"] and "Market price" in lines[head]
    rows = [line for line in lines[head + 2:] if line.startswith("HOLD")]
    assert len(rows) == 3 and all("$" in r and "%" in r for r in rows)
    status, out, _ = run_cli(capsys, "signals", "--signal", "hold", "--csv", "--limit", "3")
    frame = pd.read_csv(io.StringIO(out))
    assert len(frame) == 3 and set(frame["signal"]) == {"HOLD"}
    strength = frame["deviation"].abs().fillna(-1).tolist()
    assert strength == sorted(strength, reverse=True)


def test_signals_csv_keeps_a_name_with_a_carriage_return_in_its_row_and_runs_no_formula(history, capsys):
    from pokewatch import atomic

    path = RunFolder(history / "2026-11-27").signals
    today = pd.read_csv(path)
    today["name"] = "\r=1+1"  # written as '\r=1+1 by the run; a bare CR on stdout would start a row "=1+1"
    atomic.write_csv(path, today)

    status, out, _ = run_cli(capsys, "signals", "--signal", "HOLD", "--csv", "--limit", "0")

    rows = list(csv.reader(io.StringIO(out, newline="")))
    assert status == 0 and len(rows) == 1 + (today["signal"] == "HOLD").sum()
    assert all(len(row) == len(rows[0]) for row in rows)
    assert not [cell for row in rows for cell in row if cell[:1] in atomic.FORMULA_PREFIXES and not
                cell.lstrip("-").replace(".", "", 1).replace("e-", "", 1).isdigit()]


def test_signals_json_has_every_column_of_each_row_and_the_counts(history, capsys):
    today = pd.read_csv(RunFolder(history / "2026-11-27").signals)
    status, out, _ = run_cli(capsys, "signals", "--json", "--limit", "0", "--signal", "HOLD", "--signal", "BUY")
    shown = json.loads(out)
    assert status == 0 and shown["cards_tracked"] == len(today) and shown["source"] == "demo"
    assert shown["counts"]["HOLD"] == int((today["signal"] == "HOLD").sum())
    assert len(shown["rows"]) == int(today["signal"].isin(["HOLD", "BUY"]).sum())
    assert set(today.columns) <= set(shown["rows"][0]) and shown["rows"][0]["date"] == "2026-11-27"
    assert "NaN" not in out


def test_card_prints_a_history_table_and_writes_a_png(history, capsys, tmp_path):
    today = pd.read_csv(RunFolder(history / "2026-11-27").signals)
    name = today.loc[today["market_price"].idxmax(), "name"]
    status, out, _ = run_cli(capsys, "card", *name.lower().split(), "--days", "5", "--date", "2026-11-27")
    assert status == 0 and f"{name} (" in out and "matched by name" in out
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("Date"))
    assert lines[head].split() == ["Date", "Market", "price", "Fair", "value", "vs", "fair", "value", "Signal"]
    rows = lines[head + 2:-1]
    assert 1 <= len(rows) <= 5 and rows[-1].startswith("2026-11-27") and "$" in rows[-1]
    png = lines[-1].removeprefix("plot: ")
    assert png.endswith(".png") and Path(png).read_bytes()[:4] == b"\x89PNG"
    status, out, _ = run_cli(capsys, "card", name, "--out", str(tmp_path / "c.png"))
    assert status == 0 and (tmp_path / "c.png").exists()


def test_card_json_gives_the_match_and_its_history_and_writes_no_plot_unless_asked(history, capsys, tmp_path):
    today = pd.read_csv(RunFolder(history / "2026-11-27").signals)
    row = today.loc[today["market_price"].idxmax()]
    status, out, _ = run_cli(capsys, "card", row["card_id"], "--variant", row["variant"], "--json", "--days", "3")
    shown = json.loads(out)
    assert status == 0 and shown["card"]["card_id"] == row["card_id"] and shown["plot"] is None
    assert len(shown["history"]) == 3 and shown["history"][-1]["market_price"] == pytest.approx(row["market_price"])
    assert not (history / "explore").exists()
    status, out, _ = run_cli(capsys, "card", row["card_id"], "--json", "--out", str(tmp_path / "c.png"))
    assert json.loads(out)["plot"] == str((tmp_path / "c.png").resolve())


def test_every_command_counts_cards_tracked_as_series(history, capsys):
    """One definition: a card in one printing and one currency, as many as signals.csv has rows."""
    today = pd.read_csv(RunFolder(history / "2026-11-27").signals)
    series = len(today.drop_duplicates(["card_id", "variant", "currency"]))
    assert series == len(today) and series > today["card_id"].nunique(), "the fixture must tell the two apart"
    _, out, _ = run_cli(capsys, "runs", "--json")
    assert json.loads(out)["attempts"][1]["cards"] == series
    _, out, _ = run_cli(capsys, "signals", "--json")
    assert json.loads(out)["cards_tracked"] == series
    _, _, err = run_cli(capsys, "card", "zzzzzzzz")
    assert f"({series:,} cards tracked)" in err


def test_an_unknown_card_lists_close_matches(history, capsys):
    today = pd.read_csv(RunFolder(history / "2026-11-27").signals)
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


def test_the_top_level_help_lists_every_command_with_a_summary(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0
    for name in cli.command_names():
        line = next(line for line in out.splitlines() if line.strip().startswith(name + " "))
        assert len(line.split()) > 2, f"{name} has no summary"


def test_version_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"pokewatch {pokewatch.__version__}"


def _fresh(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("argv", [["--help"], ["runs"], ["runs", "--json"]])
def test_help_and_runs_import_neither_pandas_nor_numba_nor_matplotlib(history, argv):
    """What keeps start-up under a second (benchmarks/cli_startup.py measures the time itself)."""
    code = ("import sys\nfrom pokewatch.cli import main as cli\n"
            f"try:\n    cli.main({argv!r})\nexcept SystemExit:\n    pass\n"
            "heavy = sorted(m for m in ('pandas', 'numba', 'matplotlib', 'numpy') if m in sys.modules)\n"
            "print('HEAVY', heavy, file=sys.stderr)")
    done = _fresh(code, {"POKEWATCH_RUNS_DIR": str(history)})
    assert "HEAVY []" in done.stderr, done.stderr[-2000:]


def test_a_reader_that_stops_early_ends_the_command_quietly(history):
    """``pokewatch runs show DATE | head``: the pipe closes before we write; no BrokenPipeError."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-m", "pokewatch", "runs", "show", "2026-11-27"], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120, cwd=REPO,
                              env={**os.environ, "POKEWATCH_RUNS_DIR": str(history)})
    finally:
        os.close(write_end)
    assert done.returncode == 0 and "BrokenPipeError" not in done.stderr and "Traceback" not in done.stderr


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
    page = RunFolder(run).report.read_text()
    assert "data:image/png;base64," in page and "Portfolio (my_cards.csv)" in page
    assert "<script src" not in page
    index = (tmp_path / "runs" / INDEX).read_text()
    assert 'href="2026-11-28/report.html"' in index
    assert report.page_problems(page) == [] and report.page_problems(index) == [], "no <NA>, nan or index column"
    value = pd.read_csv(RunFolder(run).portfolio_value)
    assert len(value) > 30 and value["value"].gt(0).all()
    lots = pd.read_csv(RunFolder(run).portfolio)
    assert len(lots) == 4 and lots["pnl"].notna().all() and lots["signal"].isin(["BUY", "HOLD", "SELL"]).all()
    assert pd.read_csv(RunFolder(run).portfolio_rejected)["reason"].tolist() == ["unknown_card"]
    assert RunFolder(run).plot("portfolio_value").exists()
    assert json.loads(RunFolder(run).manifest.read_text())["report"]["status"] == "rendered"
    shown = subprocess.run([sys.executable, "-m", "pokewatch", "runs", "show", "latest"],
                           check=False, capture_output=True, text=True, timeout=120, env=env)
    assert shown.returncode == 0 and "Run 2026-11-28: published" in shown.stdout and "Portfolio" in shown.stdout
