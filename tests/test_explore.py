"""Exploring runs: which run, which card, a card's history, comparisons and KPI trends."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest

from pokewatch.analysis import explore
from pokewatch.errors import ParameterError, RunError, UnknownCardError
from tests.analyst_fixtures import demo_history, failed_run, make_run

CARDS = pd.DataFrame([
    # card_id,    variant,            name,           set_name,     market_price
    ("sv3pt5-199", "Holofoil", "Charizard ex", "151", 250.0),
    ("sv3pt5-199", "Reverse Holofoil", "Charizard ex", "151", 300.0),
    ("sv3-125", "Holofoil", "Charizard ex", "Obsidian Flames", 40.0),
    ("base1-58", "Normal", "Pikachu", "Base", 12.0),
    ("sv1-24", "Normal", "Pikachu", "Scarlet & Violet", 0.5),
    ("sv2-65", "Holofoil", "Celebi", "Paldea Evolved", 3.0),
], columns=["card_id", "variant", "name", "set_name", "market_price"]).assign(currency="USD")


@pytest.mark.parametrize(("query", "card_id", "matched_by"), [
    ("sv3pt5-199", "sv3pt5-199", "id"),
    ("SV3-125", "sv3-125", "id"),
    ("charizard ex", "sv3pt5-199", "name"),
    ("chari", "sv3pt5-199", "part of the name"),
    ("Charzard ex", "sv3pt5-199", "similar name or id"),
    ("Celebbi", "sv2-65", "similar name or id"),
])
def test_a_card_is_found_by_id_name_part_of_a_name_or_a_small_typo(query, card_id, matched_by):
    match = explore.find_card(CARDS, query)
    assert match.card_id == card_id and match.matched_by.startswith(matched_by)


def test_a_shared_name_picks_the_most_valuable_card_its_usual_printing_and_lists_the_others():
    match = explore.find_card(CARDS, "Pikachu")
    assert (match.card_id, match.variant) == ("base1-58", "Normal")
    assert match.alternatives == ("Pikachu (sv1-24, Scarlet & Violet)",)
    assert explore.find_card(CARDS, "Charizard ex").variant == "Holofoil"   # preferred over Reverse
    assert explore.find_card(CARDS, "charizard ex", variant="reverse holofoil").variant == "Reverse Holofoil"


def test_an_unknown_card_error_lists_close_matches():
    with pytest.raises(UnknownCardError, match=r"no card matches 'Pichu' in this run .*close matches: Pikachu"):
        explore.find_card(CARDS, "Pichu")
    with pytest.raises(UnknownCardError, match="nothing similar"):
        explore.find_card(CARDS, "qqqqqqqq")


def test_an_unknown_variant_lists_the_cards_printings():
    with pytest.raises(UnknownCardError, match="has no '1st Edition' printing .* it has Holofoil, Reverse Holofoil"):
        explore.find_card(CARDS, "sv3pt5-199", variant="1st Edition")


def test_a_cards_history_ends_with_the_runs_signal_for_it(isolated_dirs):
    make_run(isolated_dirs["runs"])
    run = explore.open_run()
    row = run.today.loc[run.today["market_price"].idxmax()]
    match = explore.find_card(run.today, row["card_id"], row["variant"])
    history = explore.card_history(run.model, match)
    last = history.iloc[-1]
    assert last["date"] == pd.Timestamp(run.run_date)
    assert last["market_price"] == pytest.approx(row["market_price"])
    assert last["fair_value"] == pytest.approx(row["fair_value"]) and last["signal"] == row["signal"]
    assert len(explore.card_history(run.model, match, days=10)) <= 10


def test_latest_prefers_the_published_run_and_falls_back_to_the_interactive_one(isolated_dirs):
    root = isolated_dirs["runs"]
    interactive = root / "interactive" / "2026-11-30"
    shutil.copytree(make_run(root, "2026-11-27", publish=False), interactive)
    assert explore.locate_run("latest") == interactive
    assert explore.open_run().kind == "interactive"
    published = make_run(root, "2026-11-28")
    assert explore.locate_run("latest") == published.resolve()
    assert explore.locate_run("2026-11-30") == interactive


def test_an_unknown_date_names_the_recent_runs_and_why_that_date_failed(isolated_dirs):
    root = isolated_dirs["runs"]
    make_run(root, "2026-11-27")
    failed_run(root, "2026-11-28")
    expected = r"no finished run for 2026-11-28 .*failed at step evaluate.*recent runs: 2026-11-27"
    with pytest.raises(RunError, match=expected):
        explore.locate_run("2026-11-28")
    with pytest.raises(RunError, match="no runs in"):
        explore.locate_run("latest", runs_root=root / "empty")


def test_comparing_two_days_classifies_every_card():
    before = CARDS.iloc[:4].assign(date=pd.Timestamp("2026-11-27"), fair_value=1.0, deviation=0.0,
                                   signal=["HOLD", "BUY", "SELL", "HOLD"])
    after = pd.concat([CARDS.iloc[:3], CARDS.iloc[4:5]]).assign(
        date=pd.Timestamp("2026-11-28"), fair_value=1.0, deviation=0.0, signal=["BUY", "BUY", "HOLD", "HOLD"])
    after.loc[0, "market_price"] = 275.0
    table = explore.compare_signals(before, after).set_index(["card_id", "variant"])
    assert table.loc[("sv3pt5-199", "Holofoil"), "change"] == "HOLD -> BUY"
    assert table.loc[("sv3pt5-199", "Holofoil"), "price_change"] == pytest.approx(0.10)
    assert table.loc[("sv3pt5-199", "Reverse Holofoil"), "change"] == "unchanged"
    assert table.loc[("sv3-125", "Holofoil"), "change"] == "SELL -> HOLD"
    assert table.loc[("base1-58", "Normal"), "change"] == "dropped"
    assert table.loc[("sv1-24", "Normal"), "change"] == "new card"


def test_a_comparison_of_two_runs_and_of_a_first_run(isolated_dirs):
    root = isolated_dirs["runs"]
    make_run(root, "2026-11-27")
    make_run(root, "2026-11-28")
    run = explore.open_run()
    comparison = explore.compare(explore.comparison_run("previous", run), run)
    assert comparison.summary.startswith("2026-11-28 vs 2026-11-27:")
    assert list(comparison.kpis.columns) == ["before", "after", "change"]
    assert len(comparison.biggest_moves(5)) <= 5 and comparison.signal_changes(3) is not None
    first = explore.open_run("2026-11-27")
    assert explore.comparison_run("previous", first) is None
    alone = explore.compare(None, first)
    assert alone.summary.startswith("No earlier run to compare 2026-11-27 with yet:")
    assert "\n" not in alone.summary, "one line says what is not available yet"
    assert alone.signal_changes(5) is None and alone.biggest_moves(5) is None and alone.kpis is None


def test_the_biggest_moves_are_ranked_by_value_at_stake_not_by_percent():
    before = CARDS.assign(date=pd.Timestamp("2026-11-27"), fair_value=1.0, deviation=0.0, signal="HOLD")
    after = before.assign(date=pd.Timestamp("2026-11-28"))
    after.loc[after["card_id"] == "sv1-24", "market_price"] = 1.0          # a 50-cent card doubles: +$0.50
    after.loc[after["variant"] == "Reverse Holofoil", "market_price"] = 315.0   # +5% of $300: +$15
    after.loc[after["card_id"] == "base1-58", "market_price"] = 10.0      # -17% of $12: -$2
    comparison = explore.Comparison("2026-11-27", "2026-11-28", explore.compare_signals(before, after), None)
    moves = comparison.biggest_moves(3)
    assert moves["card_id"].tolist() == ["sv3pt5-199", "base1-58", "sv1-24"]
    assert moves["value_at_stake"].tolist() == pytest.approx([15.0, 2.0, 0.5])


def test_a_cards_history_reaches_back_over_the_stored_prices_with_fair_values_where_the_model_has_them(
        isolated_dirs):
    make_run(isolated_dirs["runs"])
    run = explore.open_run()
    row = run.today.loc[run.today["market_price"].idxmax()]
    match = explore.find_card(run.today, row["card_id"], row["variant"])
    stored = demo_history()
    from_model = explore.card_history(run.model, match)
    full = explore.card_history(run.model, match, prices=stored)
    mine = stored[(stored["card_id"] == match.card_id) & (stored["variant"] == match.variant)
                  & (stored["date"] <= pd.Timestamp(run.run_date))]
    assert len(full) == len(mine) > len(from_model), "every stored day up to the run, not only the model's"
    assert full["date"].is_monotonic_increasing and full["date"].iloc[0] == mine["date"].min()
    assert full["fair_value"].iloc[:len(full) - len(from_model)].isna().all()
    pd.testing.assert_frame_equal(full.tail(len(from_model)).reset_index(drop=True), from_model)


def test_cards_tracked_counts_series_not_card_ids():
    assert explore.cards_tracked(CARDS) == 6 and CARDS["card_id"].nunique() == 5
    assert explore.cards_tracked(pd.concat([CARDS, CARDS.assign(currency="EUR")])) == 12
    assert explore.cards_tracked(CARDS.iloc[:0]) == 0


def test_run_history_and_kpi_trends_cover_every_attempt_one_point_per_date(isolated_dirs):
    root = isolated_dirs["runs"]
    make_run(root, "2026-11-26")
    make_run(root, "2026-11-27")
    make_run(root, "2026-11-27")              # a re-run supersedes the first
    failed_run(root, "2026-11-28")
    history = explore.run_history()
    assert history["state"].tolist() == ["published", "superseded", "published", "failed"]
    assert history.loc[3, "failure"].startswith("evaluate: cell 3") and history.loc[3, "failed_step"] == "evaluate"
    assert history["source"].tolist() == ["demo", "demo", "demo", "unknown"]
    trends = explore.kpi_trends(history)
    assert trends.index.tolist() == ["2026-11-26", "2026-11-27"]
    assert set(explore.TREND_KPIS) <= set(trends.columns) and trends["buy_lift"].notna().all()


def test_kpi_trends_of_one_source_leave_the_other_sources_runs_out(isolated_dirs):
    root = isolated_dirs["runs"]
    make_run(root, "2026-11-26")
    make_run(root, "2026-11-27")
    history = explore.run_history()
    history.loc[0, "source"] = "tcgcsv"
    assert explore.kpi_trends(history, "demo").index.tolist() == ["2026-11-27"]
    assert explore.kpi_trends(history, "tcgcsv").index.tolist() == ["2026-11-26"]
    assert explore.sources(history) == ["demo", "tcgcsv"], "the source run most recently first"


def test_a_malformed_date_is_named_as_the_caller_names_it(isolated_dirs):
    make_run(isolated_dirs["runs"])
    with pytest.raises(ParameterError, match="^--date must be YYYY-MM-DD, latest or today, got 'yesterday'$"):
        explore.locate_run("yesterday", option="--date")
    with pytest.raises(ParameterError, match="^run_date must be"):
        explore.locate_run("2026-02-30")


def test_a_card_without_a_name_is_called_by_its_id_never_na():
    """tcgcsv stores no names for many products; messages and titles must not say <NA>."""
    nameless = pd.DataFrame({"card_id": ["83449", "83500"], "variant": ["Holofoil", "Holofoil"], "currency": "USD",
                             "name": pd.array([pd.NA, pd.NA], dtype="string"),
                             "set_name": pd.array(["Dragon", pd.NA], dtype="string"), "market_price": [395.0, 71.0]})
    match = explore.find_card(nameless, "83449")
    assert str(match) == "TCGplayer product 83449 (83449, Holofoil, Dragon)" and "<NA>" not in match.describe()
    assert explore.find_card(nameless, "83500").set_name == ""
