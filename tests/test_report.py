"""Run reports and the index of runs: self-contained, code hidden, every attempt listed, never fatal."""
from __future__ import annotations

import html
import re

import pandas as pd
import pytest

from pokewatch import config
from pokewatch.cli.main import main
from pokewatch.run import runs
from pokewatch.analysis import report
from pokewatch.run.folder import INDEX, LATEST, RunFolder
from tests.analyst_fixtures import CODE_MARKER, LOG_MARKER, NEWS, PANDAS_TABLES, failed_run, make_run, manifest

HOLDINGS = "card_id,variant,quantity,purchase_price,purchase_date\n"


def external_references(page: str) -> list[str]:
    """src/href values that would need the network or another file outside the runs folder."""
    refs = re.findall(r'(?:src|href)="([^"]+)"', page)
    return [r for r in refs if r.startswith(("http:", "https:", "//", "/", "file:"))]


def test_a_report_is_one_self_contained_page_with_the_code_hidden(isolated_dirs):
    run = make_run(isolated_dirs["runs"])
    page = report.render_report(run).read_text()
    assert "data:image/png;base64," in page
    assert external_references(page) == [], "a report must open offline, from a share or an e-mail"
    assert "<script src" not in page
    assert CODE_MARKER not in page and "ctx.write_csv" not in page, "code cells are hidden"
    assert "model rolling_mean(7), trained in this run" in page, "printed results stay"
    assert LOG_MARKER not in page and "PosixPath(" not in page and "&lt;Figure size" not in page
    assert 'href="../index.html"' in page


def test_a_report_leads_with_todays_flags_the_track_record_and_data_quality(isolated_dirs):
    run = make_run(isolated_dirs["runs"])
    today = pd.read_csv(RunFolder(run).signals)
    page = report.render_report(run).read_text()
    headline = page[page.index('class="pw-headline"'):page.index('class="pw-facts"') + 6000]
    assert "PokeWatch · 2026-11-28" in page and "source demo" in headline
    flagged = today[today["signal"] != "HOLD"].sort_values("deviation", key=abs, ascending=False).iloc[0]
    assert f"of {len(today):,} cards tracked" in headline and f"{flagged['name']} (" in headline
    assert " SELL flags from " in headline and "7 days later" in headline and "within" not in headline
    assert "100% of requested items fetched, 0 row(s) rejected by validation" in headline
    chosen = report.render_report(run, track_record="Of 376 SELL flags, 36% were right.").read_text()
    assert "Of 376 SELL flags, 36% were right." in chosen and "In-sample backtest" not in chosen


def test_printed_lines_the_headline_already_says_are_not_rendered_twice(isolated_dirs):
    run = make_run(isolated_dirs["runs"])
    page = report.render_report(run).read_text()
    assert "card(s) are flagged BUY" not in page, "the summary the notebook prints is the headline's"
    assert html.escape(NEWS) in page, "a printed line the headline does not say stays"


def test_pandas_tables_lose_their_index_get_human_headers_and_an_empty_one_is_one_line(isolated_dirs):
    page = report.render_report(make_run(isolated_dirs["runs"])).read_text()
    assert report.page_problems(page) == []
    assert ">market_price<" not in page and ">Market price<" in page
    kpis = report.tidy_table_html(PANDAS_TABLES["kpis"])
    assert re.findall(r"<th[^>]*>([^<]*)</th>", kpis) == ["KPI", "Value"]
    assert "<td>BUY lift</td>" in kpis, "a labelled index is an ordinary first column"
    candidates = report.tidy_table_html(PANDAS_TABLES["candidates"])
    assert ">40<" not in candidates and "row_heading" not in candidates
    assert report.tidy_table_html(PANDAS_TABLES["skipped rows"]) == '<p class="pw-note">None today.</p>'
    assert report.tidy_table_html("<p>not a table</p>") == "<p>not a table</p>"


@pytest.mark.parametrize(("page", "problem"), [
    ("<td>nan</td>", "shows 'nan'"), ("<td>NaN</td>", "shows 'NaN'"), ("<td>&lt;NA&gt;</td>", "shows '<NA>'"),
    ("<td>NaT</td>", "shows 'NaT'"), ('<th class="row_heading level0 row0">40</th>', "pandas index column"),
    ("<tbody><tr><th>12</th><td>x</td></tr></tbody>", "pandas index column"),
])
def test_the_page_check_finds_what_a_reader_must_never_see(page, problem):
    found = report.page_problems(f"<html><body><table>{page}</table></body></html>")
    assert len(found) == 1 and problem in found[0]


def test_the_page_check_ignores_styles_scripts_and_words_that_contain_nan():
    page = "<style>.x{width:nan}</style><script>var x = NaN;</script><p>Nanu, Banana, financial</p>"
    assert report.page_problems(page) == []


def test_the_summary_mentions_the_portfolio_when_the_run_valued_one(isolated_dirs):
    run = make_run(isolated_dirs["runs"], holdings=HOLDINGS + "nope-1,Holofoil,1,1,\n")
    assert "portfolio row(s) were skipped as bad" in report.run_summary(run)
    assert "portfolio row(s) were skipped as bad" in report.render_report(run).read_text()


def test_the_index_groups_runs_by_source_each_with_its_own_trend(isolated_dirs):
    root = isolated_dirs["runs"]
    make_run(root, "2026-11-26")
    first = make_run(root, "2026-11-27")
    report.render_report(first)
    other = make_run(root, "2026-11-28")
    runs.update_manifest(other, parameters={"collect": {"source": "tcgcsv"}})
    page = report.write_index().read_text()
    sections = re.findall(r'<section id="source-([^"]+)">', page)
    assert sections == ["tcgcsv", "demo"], "the source run most recently first"
    assert page.count('<img alt="KPI trends across the') == 2
    demo = page[page.index('id="source-demo"'):]
    assert demo.count('class="state published"') == 2 and "2026-11-28" not in demo
    assert 'href="2026-11-27/report.html"' in page, "published runs link through runs/<date>"
    assert external_references(page) == [] and str(root) not in page
    assert report.page_problems(page) == []


def _trend_image(page: str) -> str:
    return re.search(r'<img alt="KPI trends[^>]*>', page).group(0)


def test_the_index_draws_a_trend_only_when_it_changed(isolated_dirs, monkeypatch):
    from pokewatch.analysis import plots

    root = isolated_dirs["runs"]
    make_run(root, "2026-11-26")
    first = report.write_index().read_text()
    assert '<img alt="KPI trends across the demo' in first
    drawn = []
    kpi_trends = plots.kpi_trends
    monkeypatch.setattr(plots, "kpi_trends", lambda *a, **k: drawn.append(a[1]) or kpi_trends(*a, **k))
    again = report.write_index().read_text()
    assert drawn == [] and _trend_image(again) == _trend_image(first)      # the same runs: the kept PNG
    make_run(root, "2026-11-27")
    assert '<img alt="KPI trends across the demo' in report.write_index().read_text() and drawn == ["demo"]
    assert len(list((config.cache_dir() / "index-trends").glob("demo.*.png"))) == 1


@pytest.mark.parametrize("run_date", ["2026-11-28", "2026-11-27"])  # a new day; a re-run of a published day
def test_the_trend_drawn_before_publishing_is_the_one_the_index_shows_after(isolated_dirs, monkeypatch, run_date):
    from pokewatch.analysis import plots

    root = isolated_dirs["runs"]
    make_run(root, "2026-11-26")
    make_run(root, "2026-11-27")
    report.write_index()
    attempt = make_run(root, run_date, publish=False, n_series=40)
    assert report.predraw_trend_aside(attempt).result(60, False)   # drawn by a forked child, as evaluate does
    drawn = []
    kpi_trends = plots.kpi_trends
    monkeypatch.setattr(plots, "kpi_trends", lambda *a, **k: drawn.append(a[1]) or kpi_trends(*a, **k))

    runs.publish(attempt)
    page = report.write_index().read_text()

    assert drawn == [], "finish found the plot already drawn"
    assert '<img alt="KPI trends across the demo' in page
    assert len(list((config.cache_dir() / "index-trends").glob("demo.*.png"))) == 1


def test_no_trend_is_drawn_ahead_for_an_interactive_run(isolated_dirs):
    folder = isolated_dirs["runs"] / "interactive" / "2026-11-28"
    folder.mkdir(parents=True)

    assert report.predraw_trend(folder) is False
    assert not (config.cache_dir() / "index-trends").exists()


def test_a_failed_attempt_links_its_notebook_rendered_as_html(isolated_dirs):
    root = isolated_dirs["runs"]
    make_run(root, "2026-11-27")
    failed = failed_run(root, "2026-11-28")
    page = report.write_index().read_text()
    assert f'href="attempts/{failed.name}/evaluate.html"' in page and f"{failed.name}/evaluate.ipynb" not in page
    rendered = RunFolder(failed).notebook_page("evaluate").read_text()
    assert "<!DOCTYPE html>" in rendered and "this code must not show in the report" in rendered, "a log shows its code"
    assert "cell 3 (In [2]): ValueError: boom" in page
    before = RunFolder(failed).notebook_page("evaluate").stat().st_mtime_ns
    report.write_index()
    assert RunFolder(failed).notebook_page("evaluate").stat().st_mtime_ns == before, "rendered once, not on every index"


def test_the_index_fits_a_window_its_tables_scroll_on_their_own_and_sort_without_a_library(isolated_dirs):
    make_run(isolated_dirs["runs"], "2026-11-27")
    page = report.write_index().read_text()
    assert '<div class="pw-scroll"><table class="runs">' in page and "max-width: 1280px" in page
    assert "@media (max-width: 700px)" in page, "a phone hides the optional columns"
    assert "<script>" in page and "<script src" not in page


def test_finishing_a_run_renders_its_report_publishes_it_and_refreshes_the_index(isolated_dirs, capsys):
    root = isolated_dirs["runs"]
    attempt = make_run(root, publish=False)
    assert main(["pipeline", "finish", "--attempt", str(attempt)]) == 0
    assert RunFolder(root / "2026-11-28").report.exists() and (root / INDEX).exists()
    assert manifest(attempt)["report"] == {"status": "rendered", "file": RunFolder.report.name}
    assert "report: " in capsys.readouterr().out


def test_a_report_that_cannot_be_rendered_never_holds_back_a_good_run(isolated_dirs):
    attempt = make_run(isolated_dirs["runs"], publish=False, notebook=False)
    assert main(["pipeline", "finish", "--attempt", str(attempt)]) == 0
    recorded = manifest(attempt)
    assert recorded["status"] == "success" and recorded["report"]["status"] == "failed"
    assert RunFolder(attempt).notebook("evaluate").name in recorded["report"]["error"]
    assert (isolated_dirs["runs"] / LATEST).resolve() == attempt.resolve()


def test_a_failed_run_refreshes_the_index_too(isolated_dirs):
    root = isolated_dirs["runs"]
    attempt = make_run(root, publish=False)
    assert main(["pipeline", "fail", "--attempt", str(attempt), "--step", "evaluate", "--message",
                 "exit status 1"]) == 0
    page = (root / INDEX).read_text()
    assert 'class="state failed"' in page and "no runs yet" not in page


def test_pokewatch_report_renders_the_runs_it_is_given_then_the_index(isolated_dirs, capsys):
    root = isolated_dirs["runs"]
    attempt = make_run(root, publish=False)
    assert main(["report", str(attempt)]) == 0
    assert capsys.readouterr().out.splitlines() == [str(attempt / "report.html"), str(root / "index.html")]
    assert main(["report", str(root / "2026-01-01")]) == 2, "a folder that is not a run is one error line"
    assert capsys.readouterr().err.startswith("pokewatch: error: ")
