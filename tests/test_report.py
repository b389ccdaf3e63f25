"""Run reports and the index of runs: self-contained, code hidden, every attempt listed, never fatal."""
from __future__ import annotations

import re

from pokewatch import pipeline, report
from tests.analyst_fixtures import CODE_MARKER, LOG_MARKER, failed_run, make_run, manifest

HOLDINGS = "card_id,variant,quantity,purchase_price,purchase_date\n"


def external_references(page: str) -> list[str]:
    """src/href values that would need the network or another file outside the runs folder."""
    refs = re.findall(r'(?:src|href)="([^"]+)"', page)
    return [r for r in refs if r.startswith(("http:", "https:", "//", "/", "file:"))]


def test_a_report_is_one_self_contained_page_with_the_code_hidden_and_a_summary(isolated_dirs):
    run = make_run(isolated_dirs["runs"])
    page = report.render_report(run).read_text()
    assert "data:image/png;base64," in page and 'alt="Plots: plot"' in page
    assert external_references(page) == [], "a report must open offline, from a share or an e-mail"
    assert "<script src" not in page
    assert CODE_MARKER not in page and "ctx.write_csv" not in page, "code cells are hidden"
    assert "model rolling_mean(7), trained in this run" in page, "printed results stay"
    assert LOG_MARKER not in page and "PosixPath(" not in page and "&lt;Figure size" not in page
    assert "PokeWatch run 2026-11-28" in page and "card(s) are flagged BUY" in page
    assert "Data quality: 100% of requested items fetched" in page
    assert 'href="../index.html"' in page


def test_the_summary_mentions_the_portfolio_when_the_run_valued_one(isolated_dirs):
    run = make_run(isolated_dirs["runs"], holdings=HOLDINGS + "nope-1,Holofoil,1,1,\n")
    assert "portfolio row(s) were skipped as bad" in report.run_summary(run)


def test_the_index_lists_every_attempt_with_status_kpis_and_relative_links(isolated_dirs):
    root = isolated_dirs["runs"]
    make_run(root, "2026-11-26")
    first = make_run(root, "2026-11-27")
    report.render_report(first)
    failed = failed_run(root, "2026-11-28")
    page = report.write_index().read_text()
    assert page.count("<tr><td>") == 3
    assert 'href="2026-11-27/report.html"' in page, "published runs link through runs/<date>"
    assert f'href="attempts/{failed.name}/evaluate.ipynb"' in page, "a failed run links its notebook"
    assert "cell 3 (In [2]): ValueError: boom" in page
    assert page.count('class="state published"') == 2 and page.count('class="state failed"') == 1
    assert "data:image/png;base64," in page and external_references(page) == []
    assert "Latest good run" in page and str(root) not in page


def test_finishing_a_run_renders_its_report_publishes_it_and_refreshes_the_index(isolated_dirs, capsys):
    root = isolated_dirs["runs"]
    attempt = make_run(root, publish=False)
    assert pipeline.main(["finish", "--attempt", str(attempt)]) == 0
    assert (root / "2026-11-28" / "report.html").exists() and (root / "index.html").exists()
    assert manifest(attempt)["report"] == {"status": "rendered", "file": "report.html"}
    assert "report: " in capsys.readouterr().out


def test_a_report_that_cannot_be_rendered_never_holds_back_a_good_run(isolated_dirs):
    attempt = make_run(isolated_dirs["runs"], publish=False, notebook=False)
    assert pipeline.main(["finish", "--attempt", str(attempt)]) == 0
    recorded = manifest(attempt)
    assert recorded["status"] == "success" and recorded["report"]["status"] == "failed"
    assert "evaluate.ipynb" in recorded["report"]["error"]
    assert (isolated_dirs["runs"] / "latest").resolve() == attempt.resolve()


def test_a_failed_run_refreshes_the_index_too(isolated_dirs):
    root = isolated_dirs["runs"]
    attempt = make_run(root, publish=False)
    assert pipeline.main(["fail", "--attempt", str(attempt), "--step", "evaluate", "--message", "exit status 1"]) == 0
    page = (root / "index.html").read_text()
    assert 'class="state failed"' in page and "no runs yet" not in page
