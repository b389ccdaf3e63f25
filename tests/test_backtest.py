"""Scoring flags against what prices did next: outcomes, base rates, forecast error, intervals."""
import numpy as np
import pandas as pd
import pytest

from pokewatch.core.backtest import lift_interval, run_backtest
from pokewatch.core.signals import compute_signals
from tests.conftest import series


def signals_of(history, window=3, method="rolling_mean"):
    return compute_signals(history, method, window)


def test_a_flag_is_judged_by_the_price_exactly_h_days_later():
    # dip to 17 on day 4 (BUY); nothing on day 6, so the 2-day outcome is unknown and not scored
    history = series("a-1", [20.0, 20.0, 20.0, 17.0, 18.0, None, 20.0, 20.0])
    kpis = run_backtest(signals_of(history), horizon_days=2).kpis
    assert kpis["buy_flags"] == 0
    kpis = run_backtest(signals_of(history), horizon_days=3).kpis
    assert kpis["buy_flags"] == 1 and kpis["buy_precision"] == 1.0


def test_a_buy_followed_by_a_rise_is_right_and_by_a_fall_is_wrong():
    up = series("a-1", [20.0, 20.0, 20.0, 17.0, 18.0, 20.0, 20.0, 20.0])
    down = series("b-2", [20.0, 20.0, 20.0, 17.0, 16.5, 15.0, 15.0, 15.0])
    kpis = run_backtest(signals_of(pd.concat([up, down])), horizon_days=2, target_return=0.05,
                        start="2026-01-04", end="2026-01-04").kpis   # the day both dipped to 17
    assert kpis["buy_flags"] == 2
    assert kpis["buy_precision"] == 0.5 and kpis["buy_wrong_way_rate"] == 0.5
    assert kpis["mean_forward_return_buy"] == pytest.approx(((20 / 17 - 1) + (15 / 17 - 1)) / 2)


def test_lift_compares_precision_with_the_base_rate_of_the_same_rows():
    history = pd.concat([
        series("a-1", [20.0, 20.0, 20.0, 17.0, 18.0, 20.0, 20.0, 20.0]),
        series("b-2", [5.0, 5.0, 5.0, 5.0, 5.0, 5.5, 5.0, 5.0]),
    ])
    result = run_backtest(signals_of(history), horizon_days=2, target_return=0.05)
    kpis = result.kpis
    assert kpis["buy_lift"] == pytest.approx(kpis["buy_precision"] / kpis["buy_base_rate"])
    assert 0 < kpis["buy_base_rate"] < 1.0
    assert result.direction["BUY"]["flags"] == 1


def test_rows_without_an_outcome_inside_the_data_are_not_scored():
    history = series("a-1", [20.0] * 10)
    kpis = run_backtest(signals_of(history), horizon_days=7).kpis
    assert kpis["rows_scored"] == 2  # days 2 and 3: an earlier price, and a price 7 days later


def test_the_fair_value_forecasts_the_next_price_with_what_was_known_that_day():
    # seed_mean3 includes today's price; it must not be credited with tomorrow's.
    history = series("a-1", [10.0, 20.0, 10.0, 20.0, 10.0, 20.0, 10.0, 20.0])
    seed = run_backtest(signals_of(history, method="seed_mean3", window=3), horizon_days=1, min_price=0).kpis
    prices = np.array([10.0, 20.0] * 4)
    fair = pd.Series(prices).rolling(3, min_periods=1).mean().to_numpy()
    expected = np.mean(np.abs(fair[1:-1] - prices[2:]) / prices[2:])   # rows 1..6 forecast rows 2..7
    assert seed["mape_fair"] == pytest.approx(expected)
    assert seed["mape_naive"] == pytest.approx(np.mean(np.abs(prices[1:-1] - prices[2:]) / prices[2:]))


def test_the_next_price_counts_only_within_the_horizon():
    history = series("a-1", [10.0, 10.0, 10.0, None, None, None, 12.0, 12.0])
    kpis = run_backtest(signals_of(history), horizon_days=2, min_price=0, end="2026-01-08").kpis
    # day 2 forecasts day 3 (error 0); day 3's next price comes 4 days later, beyond the 2-day
    # horizon, so it is not a forecast row; day 7 (fair 10) forecasts day 8 (12)
    assert kpis["mape_fair"] == pytest.approx((0.0 + 2 / 12) / 2)


def test_cheap_cards_are_outside_the_scored_universe():
    history = series("a-1", [0.5, 0.5, 0.5, 0.4, 0.5, 0.5])
    assert run_backtest(signals_of(history), horizon_days=1, min_price=1.0).kpis["rows_eligible"] == 0


def test_signal_stability_counts_flips_between_consecutive_days():
    history = series("a-1", [20.0, 20.0, 20.0, 17.0, 20.0, 20.0, 20.0, 20.0, 20.0])
    kpis = run_backtest(signals_of(history), horizon_days=1).kpis
    assert 0 < kpis["signal_flip_rate"] < 0.5
    assert kpis["share_buy"] + kpis["share_hold"] + kpis["share_sell"] == pytest.approx(1.0)


def test_figures_by_category_come_from_the_per_series_tables():
    history = pd.concat([series("a-1", [20.0, 20.0, 20.0, 17.0, 20.0, 20.0], category="grail"),
                         series("b-2", [20.0] * 6)])
    table = run_backtest(signals_of(history), horizon_days=1).by_category()
    assert set(table["category"]) == {"grail", "uncategorised"}
    grail = table.set_index("category").loc["grail"]
    assert grail["buy_flags"] == 1 and grail["buy_precision"] == 1.0


def test_the_lift_interval_brackets_the_lift_and_narrows_with_more_series():
    rng = np.random.default_rng(1)

    def interval(n):
        scored = np.full(n, 100)
        good = rng.binomial(100, 0.05, n)
        flags = rng.binomial(3, 0.5, n)
        right = rng.binomial(flags, 0.3)
        lift = (right.sum() / flags.sum()) / (good.sum() / scored.sum())
        return lift, lift_interval(flags, right, good, scored)

    lift, (low, high) = interval(400)
    assert low < lift < high
    lift_big, (low_big, high_big) = interval(6400)
    assert high_big - low_big < (high - low) / 2


def test_the_lift_interval_agrees_with_a_plain_series_bootstrap():
    rng = np.random.default_rng(7)
    n = 300
    scored = rng.integers(50, 150, n)
    good = rng.binomial(scored, 0.06)
    flags = np.where(rng.random(n) < 0.3, rng.integers(1, 4, n), 0)
    right = rng.binomial(flags, 0.4)
    low, high = lift_interval(flags, right, good, scored, replicates=4000)
    picks = rng.integers(0, n, (4000, n))                    # the textbook bootstrap, series by series
    lifts = (right[picks].sum(1) / flags[picks].sum(1)) / (good[picks].sum(1) / scored[picks].sum(1))
    plain_low, plain_high = np.percentile(lifts, [2.5, 97.5])
    assert low == pytest.approx(plain_low, rel=0.08) and high == pytest.approx(plain_high, rel=0.08)


def test_without_flags_there_is_no_interval():
    assert lift_interval(np.zeros(5), np.zeros(5), np.ones(5), np.full(5, 10)) is None
