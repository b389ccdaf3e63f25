"""Portfolio valuation: value over time, P&L per lot and in total, signals, and bad rows skipped."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from pokewatch import config
from pokewatch.analysis import portfolio
from pokewatch.data.demo_market import demo_catalogue
from pokewatch.run.folder import RunFolder
from tests.conftest import REPO, series

RUN_DATE = "2026-01-10"
# Two cards over ten days; B has no price on 01-05 and 01-06 (carried forward).
PRICES = pd.concat([
    series("a-1", [10, 10, 10, 10, 12, 12, 12, 12, 11, 11], variant="Holofoil", name="Alpha"),
    series("b-2", [2.0, 2.0, 2.0, 2.0, None, None, 3.0, 3.0, 3.0, 4.0], variant="Normal", name="Beta"),
    series("b-2", [5.0] * 10, variant="Reverse Holofoil", name="Beta"),
], ignore_index=True)
TODAY = (PRICES[PRICES["date"] == RUN_DATE]
         .assign(set_name="Test Set", fair_value=lambda f: f["market_price"], deviation=0.0, signal="HOLD")
         .reset_index(drop=True))
TODAY.loc[TODAY["card_id"] == "a-1", ["fair_value", "deviation", "signal"]] = [12.5, 11 / 12.5 - 1, "BUY"]


def book_of(text: str, run_date: str = RUN_DATE) -> portfolio.PortfolioBook:
    return portfolio.build(portfolio.parse_holdings(text), PRICES, TODAY, run_date, path=REPO / portfolio.OWN)


def test_value_over_time_counts_each_lot_from_its_purchase_date_and_carries_prices_forward():
    book = book_of("card_id,variant,quantity,purchase_price,purchase_date\n"
                   "a-1,Holofoil,2,9.00,2026-01-03\n"
                   "b-2,Normal,1,2.50,2026-01-06\n")
    value = book.value.set_index("date")
    assert value.index.min() == pd.Timestamp("2026-01-03") and value.index.max() == pd.Timestamp(RUN_DATE)
    assert value.loc["2026-01-03", "value"] == 20.0 and value.loc["2026-01-03", "cost"] == 18.0
    # 01-06: A at 12 (x2) plus B bought that day, its 01-04 price of 2.00 carried forward.
    assert value.loc["2026-01-06", "value"] == pytest.approx(26.0)
    assert value.loc["2026-01-06", "cost"] == pytest.approx(20.5)
    assert value.loc[RUN_DATE, "pnl"] == pytest.approx(2 * 11 + 4 - 20.5)


def test_profit_and_loss_per_lot_and_in_total_with_todays_signal_and_change():
    book = book_of("card_id,variant,quantity,purchase_price,purchase_date\n"
                   "a-1,Holofoil,2,9.00,2026-01-03\n"
                   "b-2,Normal,1,2.50,\n")
    lots = book.positions.set_index("card_id")
    assert lots.loc["a-1", "value"] == 22.0 and lots.loc["a-1", "pnl"] == 4.0
    assert lots.loc["a-1", "pnl_pct"] == pytest.approx(4 / 18)
    assert lots.loc["a-1", "signal"] == "BUY" and lots.loc["a-1", "name"] == "Alpha"
    assert lots.loc["b-2", "value_change_1d"] == pytest.approx(1.0)   # 3.00 -> 4.00
    assert lots.loc["a-1", "value_change_7d"] == pytest.approx(2 * (11 - 10))
    total = book.totals.iloc[0]
    assert (total["lots"], total["cards"], total["cost"], total["value"]) == (2, 3, 20.5, 26.0)
    assert "profit and loss +$5.50" in book.summary()


def test_a_card_with_one_printing_needs_no_variant_and_ids_ignore_case():
    book = book_of("card_id,quantity,purchase_price\nA-1,1,10\n")
    assert book.positions["variant"].tolist() == ["Holofoil"] and book.rejected.empty


@pytest.mark.parametrize(("row", "reason"), [
    ("zz-9,Holofoil,1,1,", "unknown_card"),
    ("a-1,Normal,1,1,", "unknown_variant"),
    ("b-2,,1,1,", "ambiguous_variant"),
    ("a-1,Holofoil,0,1,", "bad_quantity"),
    ("a-1,Holofoil,1.5,1,", "bad_quantity"),
    ("a-1,Holofoil,two,1,", "bad_quantity"),
    ("a-1,Holofoil,1,-3,", "bad_purchase_price"),
    ("a-1,Holofoil,1,cheap,", "bad_purchase_price"),
    ("a-1,Holofoil,1,1,2026-02-30", "bad_purchase_date"),
    ("a-1,Holofoil,1,1,2026-02-01", "bought_after_run_date"),
    (",Holofoil,1,1,", "missing_card_id"),
])
def test_a_bad_row_is_reported_with_its_line_and_reason_and_the_rest_is_valued(row, reason):
    text = f'# my cards\ncard_id,variant,quantity,purchase_price,purchase_date\na-1,Holofoil,1,"$1,000.00",\n{row}\n'
    book = book_of(text)
    assert book.rejected[["line", "reason"]].values.tolist() == [[4, reason]]
    assert book.positions["purchase_price"].tolist() == [1000.0]
    assert "line 4: " in book.summary()


def test_a_missing_or_malformed_file_is_a_note_never_an_error(tmp_path):
    missing = portfolio.evaluate(tmp_path / "nope.csv", PRICES, TODAY, RUN_DATE)
    assert missing.empty and "does not exist" in missing.summary()
    headless = tmp_path / "bad.csv"
    headless.write_text("card,qty\nA-1,1\n")
    book = portfolio.evaluate(headless, PRICES, TODAY, RUN_DATE)
    assert book.empty and "has no card_id, quantity, purchase_price column" in book.summary()


def test_no_portfolio_file_writes_nothing(tmp_path):
    book = portfolio.evaluate(None, PRICES, TODAY, RUN_DATE)
    assert book.empty and "No portfolio" in book.summary()
    assert portfolio.write_outputs(book, tmp_path) == []


def test_outputs_go_into_the_run_folder_and_the_manifest(tmp_path):
    RunFolder(tmp_path).manifest.write_text(json.dumps({"run_date": RUN_DATE, "status": "running"}))
    book = book_of("card_id,variant,quantity,purchase_price,purchase_date\na-1,Holofoil,2,9,2026-01-03\n"
                   "zz-9,Holofoil,1,1,\n")
    folder = RunFolder(tmp_path)
    assert set(portfolio.write_outputs(book, tmp_path)) == {
        folder.portfolio, folder.portfolio_value, folder.portfolio_summary, folder.portfolio_rejected,
        folder.plot("portfolio_value")}
    saved = json.loads(RunFolder(tmp_path).portfolio_summary.read_text())
    assert saved["totals"][0]["value"] == 22.0 and saved["rejected"] == 1
    assert json.loads(RunFolder(tmp_path).manifest.read_text())["portfolio"]["lots"] == 1


def test_auto_uses_the_env_then_the_projects_portfolio_then_the_demo_example(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "PROJECT_ROOT", tmp_path)
    monkeypatch.delenv(portfolio.PORTFOLIO_ENV, raising=False)
    assert portfolio.resolve_path("auto", "demo") == tmp_path / "portfolio.example.csv"
    assert portfolio.resolve_path("auto", "tcgcsv") is None
    (tmp_path / portfolio.OWN).write_text("card_id,quantity,purchase_price\n")
    assert portfolio.resolve_path("auto", "tcgcsv") == tmp_path / portfolio.OWN
    monkeypatch.setenv(portfolio.PORTFOLIO_ENV, str(tmp_path / "elsewhere.csv"))
    assert portfolio.resolve_path("auto", "demo") == tmp_path / "elsewhere.csv"
    assert portfolio.resolve_path("none", "demo") is None
    assert portfolio.resolve_path(portfolio.OWN, "demo") == tmp_path / portfolio.OWN


def test_the_example_portfolio_holds_cards_of_the_default_demo_market():
    catalogue = demo_catalogue().assign(market_price=1.0)
    raw = portfolio.parse_holdings((REPO / "portfolio.example.csv").read_text())
    holdings, rejected = portfolio.check_holdings(raw, catalogue, "2026-11-28")
    assert rejected.empty, rejected[["line", "detail"]].to_string()
    assert len(holdings) >= 5
