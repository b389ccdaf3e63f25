import joblib
import pandas as pd
import pytest

from pokewatch.errors import ParameterError, UnknownCardError, UnknownDateError
from pokewatch.core.model import FairValueModel
from pokewatch.core.rules import Filters, Rule
from pokewatch.core.signals import compute_signals
from pokewatch.run.folder import RunFolder
from tests.conftest import series


@pytest.fixture
def history():
    return pd.concat([
        series("sv3pt5-199", [100.0, 100.0, 100.0, 85.0], start="2026-11-25", name="Charizard ex"),
        series("sv3pt5-199", [10.0, 10.0, 10.0, 12.0], start="2026-11-25", variant="Reverse Holofoil"),
        series("base1-4", [300.0, None, 360.0, None], start="2026-11-25", variant="Holofoil"),
    ])


@pytest.fixture
def model(history):
    return FairValueModel(Rule("rolling_mean", 3)).fit(history)


def test_predict_returns_the_documented_fields(model):
    result = model.predict("sv3pt5-199", "2026-11-28")
    assert result == {"card_id": "sv3pt5-199", "variant": "Holofoil", "currency": "USD", "date": "2026-11-28",
                      "market_price": 85.0, "fair_value": 100.0, "deviation": pytest.approx(-0.15),
                      "signal": "BUY", "stale": False}


def test_default_date_is_the_latest_day(model):
    assert model.predict("sv3pt5-199")["date"] == "2026-11-28"


def test_a_variant_can_be_asked_for(model):
    result = model.predict("sv3pt5-199", variant="Reverse Holofoil")
    assert result["variant"] == "Reverse Holofoil" and result["signal"] == "SELL"


def test_a_day_without_a_price_answers_with_the_latest_earlier_price(model):
    result = model.predict("base1-4", "2026-11-28")
    assert result["date"] == "2026-11-27" and result["market_price"] == 360.0


def test_unknown_card_error_names_the_card_and_known_ones(model):
    with pytest.raises(UnknownCardError, match="'sv3pt5-999' is not in the model.*base1-4"):
        model.predict("sv3pt5-999")


@pytest.mark.parametrize("date, message", [("2025-01-01", "outside"), ("yesterday", "not a date")])
def test_bad_dates_raise_clear_errors(model, date, message):
    with pytest.raises(UnknownDateError, match=message):
        model.predict("base1-4", date)


def test_predict_all_covers_every_series_on_a_day(model):
    day = model.predict_all("2026-11-28")
    assert len(day) == 3
    assert day.set_index("variant").loc["Reverse Holofoil", "signal"] == "SELL"
    assert set(day.columns) >= {"card_id", "variant", "date", "market_price", "fair_value", "deviation", "signal"}


def test_repeated_predictions_hit_the_in_process_cache(model):
    for _ in range(3):
        model.predict("base1-4")
    assert model.cache_stats()["hits"] == 2 and model.cache_stats()["misses"] == 1


def test_saved_model_predicts_the_same_after_loading(model, tmp_path):
    joblib.dump(model, RunFolder(tmp_path).model)
    loaded = joblib.load(RunFolder(tmp_path).model)
    assert loaded.predict("sv3pt5-199") == model.predict("sv3pt5-199")
    assert loaded.cache_stats()["hits"] == 0


def test_invalid_parameters_are_refused():
    with pytest.raises(ParameterError, match="buy_threshold"):
        FairValueModel(Rule(buy_threshold=1.5))
    with pytest.raises(ParameterError, match="stale_days"):
        FairValueModel(stale_days=-1)


def test_the_model_serves_exactly_the_signals_of_the_rule(history):
    rule = Rule("rolling_mean", 3, buy=None)
    expected = compute_signals(history, rule).groupby(["card_id", "variant"])["signal"].last().astype(str)
    day = FairValueModel(rule).fit(history).predict_all("2026-11-28")
    served = day.set_index(["card_id", "variant"])["signal"].astype(str)
    assert served.sort_index().tolist() == expected.sort_index().tolist()
    assert "BUY" not in served.tolist()


def test_a_card_whose_newest_price_is_stale_is_hold_and_marked(history):
    model = FairValueModel(Rule("rolling_mean", 3), stale_days=2).fit(history, through="2026-12-01")
    day = model.predict_all("2026-12-01").set_index("variant")
    assert day.loc["Holofoil", "days_old"].tolist() == [4, 3]      # base1-4 (11-27), sv3pt5-199 (11-28)
    assert day["stale"].all() and (day["signal"] == "HOLD").all()
    result = model.predict("sv3pt5-199", "2026-12-01")
    assert result["stale"] is True and result["signal"] == "HOLD" and result["date"] == "2026-11-28"
    fresh = model.predict("sv3pt5-199", "2026-11-30")            # two days old: still flagged
    assert fresh["stale"] is False and fresh["signal"] == "BUY"


def test_the_model_keeps_only_days_that_were_observed(history):
    model = FairValueModel(Rule("rolling_mean", 3), keep_days=90).fit(history)
    assert len(model.dates) == 4 and model.market.shape == (3, 4)


def test_a_card_past_a_threshold_but_held_says_why(history):
    rule = Rule("rolling_mean", 3, buy=None, sell=Filters(activity=3))       # BUY off; SELL needs a busy market
    day = FairValueModel(rule).fit(history, through="2026-11-28").predict_all("2026-11-28").set_index("variant")
    assert day.loc["Reverse Holofoil", "note"] == "SELL not confirmed by this week's rule"
    assert day.loc["Holofoil"].set_index("card_id").loc["sv3pt5-199", "note"] == "BUY is off this week"
    stale = FairValueModel(rule, stale_days=0).fit(history, through="2026-11-29").predict_all("2026-11-29")
    assert set(stale["note"]) == {"price too old to flag"}
