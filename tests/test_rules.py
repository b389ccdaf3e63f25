"""The signal rule: thresholds, eligibility and the confirmations training can demand."""
import numpy as np
import pandas as pd
import pytest

from pokewatch.errors import ParameterError
from pokewatch.core.rules import ACTIVITY_LEVELS, Filters, Rule
from pokewatch.core.signals import compute_signals
from tests.conftest import series


def flags(history, **rule):
    out = compute_signals(history, Rule(**{"method": "rolling_mean", "window": 3, **rule}))
    return out["signal"].astype(str).tolist()


def test_thresholds_are_inclusive_and_asymmetric():
    # prior mean 100 each time: -10% exactly is BUY, -9.99% is not; +15% exactly is SELL.
    history = pd.concat([series(f"c-{i}", [100.0, 100.0, 100.0, price])
                         for i, price in enumerate([90.0, 90.01, 115.0, 114.99])])
    out = compute_signals(history, Rule("rolling_mean", 3))
    assert out.groupby("card_id")["signal"].last().astype(str).tolist() == ["BUY", "HOLD", "SELL", "HOLD"]


def test_a_card_under_min_price_on_the_day_or_in_its_window_is_never_flagged():
    # 0.50 -> 0.80 -> 2.00: the jump to $2 is judged against sub-$1 prices, so no SELL.
    assert flags(series("a-1", [0.5, 0.5, 0.8, 2.0])) == ["HOLD"] * 4
    # once the whole window is at or above $1, a jump is a SELL
    assert flags(series("a-1", [1.0, 1.0, 1.0, 2.0]))[-1] == "SELL"
    assert flags(series("a-1", [0.5, 0.5, 0.8, 2.0]), min_price=0.0)[-1] == "SELL"


def test_the_first_observation_of_a_series_is_never_flagged():
    assert flags(series("a-1", [50.0]), method="seed_mean3") == ["HOLD"]


def test_a_switched_off_kind_never_flags():
    history = series("a-1", [20.0, 20.0, 20.0, 17.0, 24.0])
    assert flags(history) == ["HOLD", "HOLD", "HOLD", "BUY", "SELL"]
    assert flags(history, buy=None) == ["HOLD", "HOLD", "HOLD", "HOLD", "SELL"]
    assert flags(history, sell=None) == ["HOLD", "HOLD", "HOLD", "BUY", "HOLD"]


def test_the_activity_confirmation_skips_thin_markets():
    thin = series("thin", [10.0] * 8 + [12.0])                       # no change for 8 days, then +20%
    active = series("busy", [10.0, 10.2, 10.0, 10.3, 10.0, 10.2, 10.1, 10.0, 12.0])
    rule = {"sell": Filters(activity=ACTIVITY_LEVELS.index(0.5))}
    assert flags(thin, **rule)[-1] == "HOLD"
    assert flags(active, **rule)[-1] == "SELL"
    assert flags(thin)[-1] == "SELL"


def test_the_listing_confirmation_needs_a_cheaper_listing_to_sell_and_none_to_buy():
    spike = series("a-1", [10.0, 10.0, 10.0, 12.0])
    dip = series("b-2", [10.0, 10.0, 10.0, 8.5])
    listing = {"buy": Filters(listing=True), "sell": Filters(listing=True)}
    assert flags(spike.assign(low_price=[9.0, 9.0, 9.0, 11.0]), **listing)[-1] == "SELL"   # listed below 12
    assert flags(spike.assign(low_price=[9.0, 9.0, 9.0, 12.5]), **listing)[-1] == "HOLD"   # nothing below 12
    assert flags(dip.assign(low_price=[9.0, 9.0, 9.0, 8.5]), **listing)[-1] == "BUY"      # nobody lists lower
    assert flags(dip.assign(low_price=[9.0, 9.0, 9.0, 8.0]), **listing)[-1] == "HOLD"
    assert flags(spike, **listing)[-1] == "HOLD"                                          # no listings known


def test_persistence_needs_two_observations_beyond_the_threshold():
    once = series("a-1", [10.0, 10.0, 10.0, 13.0, 10.0])
    twice = series("a-1", [10.0, 10.0, 10.0, 13.0, 14.0])
    assert flags(once, sell=Filters(persistence=True))[3] == "HOLD"
    assert flags(twice, sell=Filters(persistence=True))[4] == "SELL"


def test_the_jump_guard_skips_moves_far_outside_the_usual():
    calm_then_jump = series("a-1", [10.0, 10.1, 10.0, 10.1, 10.0, 10.1, 10.0, 30.0])
    assert flags(calm_then_jump)[-1] == "SELL"
    assert flags(calm_then_jump, sell=Filters(no_jump=True))[-1] == "HOLD"


def test_the_vol_scaled_confirmation_needs_a_move_of_two_standard_deviations():
    wild = series("a-1", [10.0, 14.0, 8.0, 13.0, 9.0, 14.0, 9.0, 13.0])  # +16% is ordinary here
    assert flags(wild, window=7)[-1] == "SELL"
    assert flags(wild, window=7, sell=Filters(vol_scaled=True))[-1] == "HOLD"


@pytest.mark.parametrize("kwargs, name", [({"buy_threshold": -1}, "buy_threshold"),
                                          ({"sell_threshold": 0}, "sell_threshold"),
                                          ({"min_price": -0.5}, "min_price")])
def test_bad_thresholds_name_the_parameter(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        Rule(**kwargs)


def test_a_rule_survives_a_round_trip_through_json_and_says_what_it_does():
    rule = Rule("ewm", 7, buy=None, sell=Filters(activity=2, listing=True), reasons={"BUY": "no edge"})
    again = Rule.from_dict(rule.as_dict())
    assert again == rule and again.reasons == {"BUY": "no edge"}
    assert rule.describe() == ("BUY is off: no edge; SELL at +15% from ewm(7) fair value with an active market "
                               "(at least 50% of the last 7 prices changed) and listings that agree.")


def test_compute_signals_flags_a_dip_against_prior_prices():
    out = compute_signals(series("a-1", [20.0, 20.0, 20.0, 17.0, 24.0]), "rolling_mean", 3)
    assert out["signal"].astype(str).tolist() == ["HOLD", "HOLD", "HOLD", "BUY", "SELL"]
    assert out["deviation"].iloc[3] == pytest.approx(-0.15)
    assert out["has_fair"].tolist() == [False, True, True, True, True]
    assert np.isnan(out["fair_value"].iloc[0])
