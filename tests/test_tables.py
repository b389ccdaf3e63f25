"""Tables for people: money, signed percentages, human headers, no index, nothing shown as nan or <NA>."""
from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from pokewatch.analysis import tables

DAY = pd.DataFrame({
    "name": ["Charizard ex", pd.NA], "card_id": ["sv3pt5-199", "89333"], "variant": ["Holofoil", "Normal"],
    "currency": ["USD", "EUR"], "market_price": [1234.5, np.nan], "fair_value": [1100.0, 2.0],
    "deviation": [0.1223, -0.00004], "signal": pd.Categorical(["SELL", "HOLD"]), "pnl": [-3.2, 4.0],
}, index=[40, 89]).astype({"name": "string"})


@pytest.mark.parametrize(("value", "expected"), [
    ((1234.5, "USD"), "$1,234.50"), ((-3.2, "EUR"), "-€3.20"), ((12, "USD", True), "+$12.00"),
    ((0.0, "USD", True), "$0.00"), ((5, "GBP"), "GBP 5.00"), ((np.nan, "USD"), tables.MISSING),
    ((None, "USD"), tables.MISSING), ((pd.NA, "USD"), tables.MISSING),
])
def test_money_has_a_symbol_thousands_and_cents(value, expected):
    assert tables.money(*value) == expected


@pytest.mark.parametrize(("share", "signed", "expected"), [
    (0.1234, True, "+12.3%"), (-0.05, True, "-5.0%"), (-0.00004, True, "+0.0%"), (0.2, False, "20.0%"),
    (np.nan, True, tables.MISSING), (pd.NaT, False, tables.MISSING),
])
def test_percentages_are_signed_where_asked_and_never_minus_zero(share, signed, expected):
    assert tables.pct(share, signed=signed) == expected


def test_a_formatted_frame_has_human_headers_no_index_and_no_nan():
    text = tables.format_frame(DAY)
    assert list(text.columns) == ["Card", "Card id", "Printing", "Currency", "Market price", "Fair value",
                                  "vs fair value", "Signal", "Profit/loss"]
    assert text.index.tolist() == [0, 1]
    assert text.iloc[0].tolist() == ["Charizard ex", "sv3pt5-199", "Holofoil", "USD", "$1,234.50", "$1,100.00",
                                     "+12.2%", "SELL", "-$3.20"]
    assert text.iloc[1].tolist()[:5] == ["TCGplayer product 89333", "89333", "Normal", "EUR", tables.MISSING]
    assert text.loc[1, "Fair value"] == "€2.00" and text.loc[1, "Profit/loss"] == "+€4.00"


def test_an_unknown_column_gets_a_readable_header_and_a_format_from_its_dtype():
    text = tables.format_frame(pd.DataFrame({"days_stale": pd.array([3, None], dtype="Int64"),
                                             "mean_price": [1.5, np.nan]}))
    assert list(text.columns) == ["Days stale", "Mean price"]
    assert text.values.tolist() == [["3", "1.50"], [tables.MISSING, tables.MISSING]]


def test_asking_for_a_column_the_table_lacks_names_the_columns_it_has():
    with pytest.raises(KeyError, match=r"\['nope'\] are not in the table; it has \['name'"):
        tables.format_frame(DAY, ["name", "nope"])


def test_html_tables_scroll_on_their_own_align_numbers_and_show_no_index():
    page = tables.to_html(DAY, ["name", "market_price", "deviation", "signal"])
    assert page.startswith('<div class="pw-scroll" style="overflow-x:auto')
    assert re.findall(r"<th[^>]*>([^<]*)</th>", page) == ["Card", "Market price", "vs fair value", "Signal"]
    assert ">40<" not in page and ">89<" not in page, "no pandas index"
    assert "nan" not in page.lower().replace("pw-", "") and "&lt;NA&gt;" not in page
    assert 'style="text-align:right;white-space:nowrap">$1,234.50</td>' in page
    assert 'class="pw-signal pw-sell"' in page


def test_card_names_link_to_their_page_where_a_link_is_known(monkeypatch):
    monkeypatch.setattr(tables, "card_links", lambda frame: pd.Series(
        ["https://www.tcgplayer.com/product/1", pd.NA], index=frame.index, dtype="string"))
    page = tables.to_html(DAY, ["name", "market_price"])
    assert '<a href="https://www.tcgplayer.com/product/1">Charizard ex</a>' in page
    assert ">TCGplayer product 89333<" in page, "no link, plain name"


def test_an_empty_table_is_one_line_of_text():
    assert tables.to_html(DAY.iloc[:0], empty="No portfolio rows were skipped.") == \
        '<p class="pw-note">No portfolio rows were skipped.</p>'
    assert repr(tables.show(DAY.iloc[:0])) == tables.NONE_TODAY
    assert tables.show(DAY.iloc[:0], empty=None) is None and tables.show(None) is None
    assert isinstance(tables.show(DAY), tables.Table)


def test_kpi_tables_lose_their_index_header_row():
    kpis = pd.DataFrame({"KPI": ["BUY lift"], "value": ["1.25x"]}).set_index("KPI")
    page = tables.kpis(kpis)._repr_html_()
    assert re.findall(r"<th[^>]*>([^<]*)</th>", page) == ["KPI", "Value"]
    assert page.count("<tr>") == 2, "one header row and one data row"


def test_terminal_tables_are_aligned_and_leave_out_optional_columns_when_narrow():
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(tables.to_rich(DAY, ["name", "market_price", "deviation"]))
    text = console.export_text()
    lines = text.splitlines()
    assert lines[0].split() == ["Card", "Market", "price", "vs", "fair", "value"]
    assert lines[2].rstrip().endswith("$1,234.50          +12.2%"), "numbers right-aligned"
    narrow = tables.to_rich(DAY, ["name", "card_id", "market_price", "deviation"], width=30,
                            optional=["card_id", "deviation"])
    assert [c.header for c in narrow.columns] == ["Card", "Market price"]


def test_terminal_tables_take_plain_records_without_pandas():
    rows = [{"run_date": "2026-11-28", "buy_precision": 0.25, "cards": 500, "buy_lift": None}]
    kinds, text = tables.format_records(rows, ["run_date", "buy_precision", "cards", "buy_lift"])
    assert kinds == ["text", "pct", "count", "lift"]
    assert text == [["2026-11-28", "25.0%", "500", tables.MISSING]]


def test_the_text_of_a_rejected_row_in_a_count_or_number_column_is_shown_not_raised():
    # portfolio_rejected rows keep what the file said: a quantity of "x" used to crash evaluate's table
    rejected = pd.DataFrame({"card_id": ["sv3pt5-1", "sv3pt5-2", "sv3pt5-3"], "quantity": ["x", "1.5", 2],
                             "reason": ["bad_quantity", "bad_quantity", "unknown_card"]})
    text = tables.format_frame(rejected)
    assert text["Qty"].tolist() == ["x", "1.5", "2"]
    assert tables.count(1234) == "1,234" and tables.count("lots") == "lots"
