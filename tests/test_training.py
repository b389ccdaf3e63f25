"""Choosing the rule from outcomes known before the training day."""
import numpy as np
import pandas as pd
import pytest

from pokewatch.core import training
from pokewatch.core.frame import PriceFrame
from pokewatch.core.rules import ACTIVITY_LEVELS, Filters
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


def test_a_selection_comes_back_whole_from_the_disk_cache(pf, tmp_path):
    import joblib

    chosen = training.select(pf, MONDAY)
    chosen.key = "fingerprint"
    joblib.dump(chosen, tmp_path / "entry.pkl")       # the writer and reader of the steps' cache entries
    again = joblib.load(tmp_path / "entry.pkl")
    assert type(again) is training.Selection and again is not chosen
    assert again.summary() == chosen.summary() and again.rule == chosen.rule and again.key == "fingerprint"
    pd.testing.assert_frame_equal(again.table, chosen.table)


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


def spiky_market(n_cards: int = 30, days: int = 60) -> pd.DataFrame:
    """Flat $10 cards, each with a one-day spike to $12 every ten days that is gone the next day."""
    dates = pd.date_range("2026-01-01", periods=days, freq="D")
    frames = []
    for i in range(n_cards):
        price = np.full(days, 10.0)
        price[2 + i % 10::10] = 12.0
        frames.append(pd.DataFrame({"card_id": f"spike-{i:02d}", "variant": "Normal", "date": dates,
                                    "market_price": price, "currency": "USD", "source": "test"}))
    return pd.concat(frames, ignore_index=True)


def test_a_prior_mean_wins_over_the_seed_rule_that_averages_the_spike_into_its_own_fair_value():
    history = spiky_market()
    chosen = training.select(PriceFrame.from_history(history), "2026-03-02",
                             candidates=(("rolling_mean", 3), training.ORIGIN))
    assert chosen.learned and (chosen.rule.method, chosen.rule.window) == ("rolling_mean", 3)
    # A spike is 20% over the prior mean (a SELL) and a week later the price is back at $10:
    # every spike on a flag day with an outcome (the last is 2026-02-22) is a right SELL.
    spikes = int(((history["market_price"] == 12.0) & (history["date"] <= "2026-02-22")).sum())
    assert chosen.rule.sell == Filters()
    assert chosen.in_sample["SELL"]["flags"] == chosen.in_sample["SELL"]["right"] == spikes
    assert chosen.in_sample["SELL"]["lift_low"] > 1
    assert chosen.rule.buy is None                 # the day after a spike is only 6% under a mean holding it
    seed = chosen.table[chosen.table["origin"] & (chosen.table["signal"] == "SELL")].iloc[0]
    assert seed["flags"] == 0                      # (10 + 10 + 12) / 3: the spike is only 12.5% over it


def test_counts_from_the_histograms_match_a_direct_backtest_of_the_chosen_rule(pf):
    chosen = training.select(pf, MONDAY)
    row = chosen.table[(chosen.table["method"] == chosen.rule.method) & (chosen.table["window"] == chosen.rule.window)
                       & (chosen.table["signal"] == "SELL") & ~chosen.table["origin"]].iloc[0]
    assert (row["flags"], row["right"], row["wrong"]) == (chosen.in_sample["SELL"]["flags"],
                                                         chosen.in_sample["SELL"]["right"],
                                                         chosen.in_sample["SELL"]["wrong"])


def test_too_few_flag_days_means_nothing_is_learned_yet(pf):
    chosen = training.select(pf, "2026-01-12")     # flag days 2026-01-02..01-04 only (01-01 has no earlier price)
    assert not chosen.learned and chosen.rule.buy is None and chosen.rule.sell is None
    assert chosen.reason.startswith("not enough to learn from on 2026-01-12: 3 flag day(s)")
    assert f"needs {training.MIN_FLAG_DAYS}" in chosen.reason


def test_a_training_window_before_the_first_price_has_nothing_to_learn_from(pf):
    chosen = training.select(pf, "2026-01-05")     # its last flag day, 2025-12-28, is before the first price
    assert not chosen.learned and chosen.flag_days is None
    assert chosen.reason.startswith("nothing to learn from on 2026-01-05")


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
