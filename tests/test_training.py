"""Choosing the rule from outcomes known before the training day."""
import numpy as np
import pandas as pd
import pytest

from pokewatch.core import training
from pokewatch.core.frame import PriceFrame
from pokewatch.core.rules import ACTIVITY_LEVELS
from tests.market_fixtures import market

MONDAY = "2026-04-27"   # day 116 of the fixture market


@pytest.fixture(scope="module")
def pf():
    return PriceFrame.from_history(market(persist_from=0))


def test_training_picks_the_active_market_confirmation_for_sell(pf):
    chosen = training.select(pf, MONDAY, candidates=training.DEFAULT_CANDIDATES[:4] + (training.ORIGIN,))
    assert chosen.learned and chosen.rule.sell is not None
    assert ACTIVITY_LEVELS[chosen.rule.sell.activity] > 0          # thin markets are left out
    assert chosen.in_sample["SELL"]["precision"] >= 1.5 * chosen.in_sample["SELL"]["wrong_way_rate"]
    assert chosen.in_sample["SELL"]["lift_low"] > 1


def test_a_kind_without_an_edge_is_switched_off_and_says_why(pf):
    chosen = training.select(pf, MONDAY)
    assert chosen.rule.buy is None
    assert "BUY" in chosen.rule.describe() and "off" in chosen.rule.describe()
    assert chosen.rule.reasons["BUY"]


def test_the_origin_rule_is_reported_beside_the_choice(pf):
    chosen = training.select(pf, MONDAY)
    origin = chosen.origin["SELL"]
    assert origin["flags"] > 0 and origin["lift_low"] is None          # in-sample, no interval claimed
    assert chosen.table["origin"].sum() == 2                          # one BUY row, one SELL row


def test_a_selection_sees_nothing_on_or_after_its_training_day(pf):
    history = market(persist_from=0)
    later = pd.Timestamp(MONDAY)
    changed = history.copy()
    changed.loc[changed["date"] >= later, "market_price"] *= 3       # wild prices from the training day on
    a = training.select(pf, MONDAY)
    b = training.select(PriceFrame.from_history(changed), MONDAY)
    assert a.rule == b.rule and a.in_sample == b.in_sample


def test_the_training_window_ends_before_the_outcomes_of_the_training_day():
    first, last = training.training_window("2026-04-27", train_days=30, horizon_days=7)
    assert (first, last) == (pd.Timestamp("2026-03-28"), pd.Timestamp("2026-04-19"))
    assert last + pd.Timedelta(days=7) < pd.Timestamp("2026-04-27")


def test_a_rule_must_flag_at_least_as_often_as_an_origin_rule_that_helps(pf):
    counts = training.candidate_counts(training.histograms(pf, training.DEFAULT_CANDIDATES, "2026-01-01",
                                                           "2026-04-19"), "2026-01-01", "2026-04-19")
    floors = training._floors(counts, min_flags=50)
    o = counts.origin()
    for k in range(2):
        helps = counts.right[o, k, 0] > counts.wrong[o, k, 0]
        assert floors[k] == (max(50, counts.flags[o, k, 0]) if helps else 50)


def test_counts_from_the_histograms_match_a_direct_backtest_of_the_chosen_rule(pf):
    chosen = training.select(pf, MONDAY)
    row = chosen.table[(chosen.table["method"] == chosen.rule.method) & (chosen.table["window"] == chosen.rule.window)
                       & (chosen.table["signal"] == "SELL") & ~chosen.table["origin"]].iloc[0]
    assert (row["flags"], row["right"], row["wrong"]) == (chosen.in_sample["SELL"]["flags"],
                                                         chosen.in_sample["SELL"]["right"],
                                                         chosen.in_sample["SELL"]["wrong"])


def test_too_few_flag_days_means_nothing_is_learned_yet(pf):
    chosen = training.select(pf, "2026-01-12")     # flag days 2026-01-01..01-04 only
    assert not chosen.learned and chosen.rule.buy is None and chosen.rule.sell is None
    assert "not enough to learn from" in chosen.reason or "nothing to learn from" in chosen.reason


def test_a_fixed_method_is_scored_alone_and_still_gated(pf):
    chosen = training.select(pf, MONDAY, method="seed_mean3", window=0)
    assert (chosen.rule.method, chosen.rule.window) == ("seed_mean3", 3)
    assert "fixed by the run parameters" in chosen.reason
    assert set(chosen.table["mask"]) == {0}          # no confirmations searched


def test_select_many_equals_selecting_each_day_alone(pf):
    days = ["2026-03-30", "2026-04-13", MONDAY]
    together = training.select_many(pf, days)
    for day, selection in zip(days, together):
        alone = training.select(pf, day)
        assert selection.rule == alone.rule and selection.in_sample == alone.in_sample


def test_best_candidates_lists_one_row_per_fair_value_best_first(pf):
    table = training.best_candidates(training.select(pf, MONDAY).table)
    assert len(table) == len(training.DEFAULT_CANDIDATES)
    assert table["score"].is_monotonic_decreasing
    assert np.isfinite(table["score"]).all()
