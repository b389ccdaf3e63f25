"""The one ranking of a day's flags, and that every surface lists the same cards in the same order."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from api_fixtures import KEY, make_client, settings

from pokewatch.analysis import alerts, explore, summary
from pokewatch.api.app import create_app
from pokewatch.analysis.candidates import rank_flags, top_candidates
from pokewatch.cli import main as cli
from pokewatch.run.folder import RunFolder
from tests.analyst_fixtures import demo_history, make_run


def day(*rows) -> pd.DataFrame:
    """A day's signals from (card_id, variant, signal, deviation, market_price, stale) tuples."""
    frame = pd.DataFrame(rows, columns=["card_id", "variant", "signal", "deviation", "market_price", "stale"])
    return frame.assign(currency="USD")


def ids(frame: pd.DataFrame) -> list[str]:
    return [f"{c}/{v}" for c, v in zip(frame["card_id"], frame["variant"])]


def test_flags_rank_by_distance_from_fair_value_whatever_their_side():
    today = day(("a", "Holofoil", "BUY", -0.12, 5.0, False), ("b", "Holofoil", "SELL", 0.40, 5.0, False),
                ("c", "Holofoil", "HOLD", 0.05, 5.0, False), ("d", "Holofoil", "BUY", -0.30, 5.0, False))
    assert ids(rank_flags(today)) == ["b/Holofoil", "d/Holofoil", "a/Holofoil"]
    assert ids(rank_flags(today, ["BUY"])) == ["d/Holofoil", "a/Holofoil"], "most underpriced first"
    assert ids(rank_flags(today, limit=1)) == ["b/Holofoil"]


def test_equal_deviations_are_ordered_by_card_then_variant_not_by_row_order():
    today = day(("z", "Normal", "BUY", -0.2, 5.0, False), ("a", "Reverse Holofoil", "BUY", -0.2, 5.0, False),
                ("a", "Holofoil", "BUY", -0.2, 5.0, False))
    expected = ["a/Holofoil", "a/Reverse Holofoil", "z/Normal"]
    assert ids(rank_flags(today)) == expected
    assert ids(rank_flags(today.iloc[::-1])) == expected


def test_topping_up_adds_the_nearest_fresh_cards_and_never_a_stale_or_cheap_one():
    today = day(("flag", "H", "SELL", 0.2, 5.0, False), ("near", "H", "HOLD", -0.09, 5.0, False),
                ("stale", "H", "HOLD", 0.14, 5.0, True), ("cheap", "H", "HOLD", 0.13, 0.5, False),
                ("far", "H", "HOLD", 0.01, 5.0, False), ("unknown", "H", "HOLD", None, 5.0, False))
    assert ids(top_candidates(today, min_price=1.0)) == ["flag/H", "near/H", "far/H"]
    assert ids(top_candidates(today, min_price=1.0, n=2)) == ["flag/H", "near/H"]
    assert ids(rank_flags(today)) == ["flag/H"], "without top_up only the flags"


def test_a_signal_listing_keeps_every_row_of_it_missing_deviations_last():
    today = day(("a", "H", "HOLD", None, 0.2, True), ("b", "H", "HOLD", 0.03, 5.0, False),
                ("c", "H", "HOLD", -0.05, 5.0, False))
    assert ids(rank_flags(today, ["HOLD"])) == ["c/H", "b/H", "a/H"]


def test_the_summary_re_export_is_the_same_function():
    assert summary.top_candidates is top_candidates


def key(row) -> str:
    return f"{row['card_id']}/{row['variant']}/{row['currency']}"


def twinned_history() -> pd.DataFrame:
    """The demo market with every series priced twice, under a second card id: each flag has an exact tie."""
    history = demo_history()
    return pd.concat([history, history.assign(card_id="twin-" + history["card_id"].astype(str))],
                     ignore_index=True)


def test_alert_cli_api_and_evaluate_list_the_same_flags_in_the_same_order(isolated_dirs, capsys):
    run = make_run(isolated_dirs["runs"], history=twinned_history())
    today = explore.read_signals(RunFolder(run).signals)
    assert (today["signal"] == "BUY").sum() >= 4 and (today["signal"] == "SELL").sum() >= 4, "a run with flags"
    assert today["deviation"].duplicated().sum() >= 4, "and ties to break"

    assert cli.main(["signals", "--json", "--limit", "0"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    shown = [key(r) for r in rows]
    auth = {"X-API-Key": KEY}
    app = create_app(settings(isolated_dirs["runs"], rate_limit_per_minute=100_000, rate_limit_burst=10_000))
    with make_client(app) as client:
        served = [key(r) for r in client.get("/signals", params={"page_size": 500}, headers=auth).json()["signals"]]
        served_buys = [key(r) for r in client.get("/signals", params={"signal": "BUY", "page_size": alerts.TOP_N},
                                                  headers=auth).json()["signals"]]
    table = summary.top_candidates(today, 1.0, n=15)
    evaluated = [key(r) for r in table[table["signal"].astype(str) != "HOLD"].to_dict("records")]
    alerted = [line for line in alerts.run_message(run).splitlines() if line.startswith(("BUY  ", "SELL  "))]
    top = {kind: [r for r in rows if r["signal"] == kind][:alerts.TOP_N] for kind in ("BUY", "SELL")}

    assert served == shown, "the API lists what the CLI lists"
    assert len(evaluated) == min(15, len(shown)) and evaluated == shown[:len(evaluated)], "the evaluate table"
    assert served_buys == [key(r) for r in top["BUY"]], "the API's BUY page"
    assert len(alerted) == len(top["BUY"]) + len(top["SELL"])
    for line, row in zip(alerted, top["BUY"] + top["SELL"]):
        assert line.startswith(f"{row['signal']}  ") and f"({row['card_id']}, {row['variant']})" in line, "the alert"
    assert explore.strongest_flag(today) == rows[0]["card_id"], "explore's default card"


@pytest.mark.parametrize("limit", [0, None])
def test_no_limit_means_every_row(limit):
    today = day(*[(f"c{i}", "H", "BUY", -0.1 - i / 100, 5.0, False) for i in range(5)])
    assert len(rank_flags(today, limit=limit)) == 5
