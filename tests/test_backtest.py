import numpy as np
import pandas as pd
import pytest

from pokewatch.backtest import forward_price, run_backtest
from pokewatch.signals import compute_signals
from tests.conftest import series


def signals_of(history, window=3):
    return compute_signals(history, "rolling_mean", window)


def test_forward_price_is_the_price_exactly_h_days_later():
    out = signals_of(series("a-1", [10.0, 11.0, None, 13.0]))
    np.testing.assert_array_equal(forward_price(out, 2), [np.nan, 13.0, np.nan])


def test_a_buy_followed_by_a_rise_is_a_hit():
    # Flat at 20, a dip to 17 (BUY), recovery to 20 two days later (+17.6%).
    history = series("a-1", [20.0, 20.0, 20.0, 17.0, 18.0, 20.0, 20.0, 20.0])
    kpis = run_backtest(signals_of(history), horizon_days=2, target_return=0.05).kpis
    assert kpis["buy_flags"] == 1
    assert kpis["buy_precision"] == 1.0
    assert kpis["mean_forward_return_buy"] == pytest.approx(20 / 17 - 1)


def test_lift_compares_precision_with_the_base_rate():
    history = pd.concat([
        series("a-1", [20.0, 20.0, 20.0, 17.0, 18.0, 20.0, 20.0, 20.0]),
        series("b-2", [5.0, 5.0, 5.0, 5.0, 5.0, 5.5, 5.0, 5.0]),
    ])
    kpis = run_backtest(signals_of(history), horizon_days=2, target_return=0.05).kpis
    assert kpis["buy_lift"] == pytest.approx(kpis["buy_precision"] / kpis["buy_base_rate"])
    assert kpis["buy_base_rate"] < 1.0


def test_rows_without_an_outcome_inside_the_data_are_not_scored():
    history = series("a-1", [20.0] * 10)
    kpis = run_backtest(signals_of(history), horizon_days=7).kpis
    assert kpis["scored_to"] == "2026-01-03"
    assert kpis["rows_scored"] == 2  # days 2 and 3 have a fair value and a price 7 days later


def test_fair_value_is_compared_with_the_naive_last_price():
    history = series("a-1", [10.0, 20.0, 10.0, 20.0, 10.0, 20.0, 10.0, 20.0])
    kpis = run_backtest(signals_of(history, window=2), horizon_days=1, min_price=0).kpis
    assert kpis["mape_fair"] < kpis["mape_naive"]


def test_cheap_cards_are_outside_the_scored_universe():
    history = series("a-1", [0.5, 0.5, 0.5, 0.4, 0.5, 0.5])
    assert run_backtest(signals_of(history), horizon_days=1, min_price=1.0).kpis["rows_eligible"] == 0


def test_signal_stability_counts_flips_between_consecutive_days():
    history = series("a-1", [20.0, 20.0, 20.0, 17.0, 20.0, 20.0, 20.0, 20.0, 20.0])
    kpis = run_backtest(signals_of(history), horizon_days=1).kpis
    assert 0 < kpis["signal_flip_rate"] < 0.5
    assert kpis["share_buy"] + kpis["share_hold"] + kpis["share_sell"] == pytest.approx(1.0)


def test_kpis_by_category():
    history = pd.concat([series("a-1", [20.0, 20.0, 20.0, 17.0, 20.0, 20.0], category="grail"),
                         series("b-2", [20.0] * 6)])
    table = run_backtest(signals_of(history), horizon_days=1).by_category()
    assert set(table["category"]) == {"grail", "uncategorised"}
