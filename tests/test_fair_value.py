import numpy as np
import pandas as pd
import pytest

from pokewatch.errors import ParameterError, SchemaError
from pokewatch.core.frame import PriceFrame
from pokewatch.core.fair_value import fair_value
from tests.conftest import series


def fair(history, method, window=2):
    pf = PriceFrame.from_history(history)
    return pf.frame.assign(fair=fair_value(pf, method, window))


def test_rolling_mean_uses_only_prior_observations():
    out = fair(series("a-1", [10.0, 12.0, 14.0, 16.0]), "rolling_mean", window=2)
    assert out["fair"].tolist()[1:] == [10.0, 11.0, 13.0]
    assert np.isnan(out["fair"].iloc[0])


def test_seed_rule_includes_today_in_a_three_day_mean():
    out = fair(series("a-1", [10.0, 12.0, 14.0, 16.0]), "seed_mean3", 0)
    assert out["fair"].tolist() == [10.0, 11.0, 12.0, 14.0]


def test_seed_rule_needs_a_143_percent_drop_to_buy():
    """With today inside a 3-day mean, 10% under fair means 14.3% under the prior two days."""
    prior_mean = 100.0
    # market m is BUY when m <= 0.9 * (200 + m) / 3  <=>  m <= 180 / 2.1
    threshold_price = 0.9 * 2 * prior_mean / (3 - 0.9)
    assert 1 - threshold_price / prior_mean == pytest.approx(0.1429, abs=1e-4)
    at = fair(series("a-1", [100.0, 100.0, threshold_price]), "seed_mean3", 3)
    deviation = at["market_price"].iloc[-1] / at["fair"].iloc[-1] - 1
    assert deviation == pytest.approx(-0.10)


def test_windows_never_cross_from_one_series_into_the_next():
    history = pd.concat([series("a-1", [100.0, 100.0]), series("b-2", [1.0, 3.0])])
    out = fair(history, "rolling_mean", window=5)
    assert np.isnan(out.loc[out["card_id"] == "b-2", "fair"].iloc[0])
    assert out.loc[out["card_id"] == "b-2", "fair"].iloc[1] == 1.0


def test_prior_window_counts_observations_not_calendar_days():
    out = fair(series("a-1", [10.0, None, None, 20.0, 30.0]), "rolling_mean", window=2)
    assert out["fair"].tolist()[1:] == [10.0, 15.0]


def test_ewm_and_median_match_pandas_on_prior_observations():
    values = [10.0, 11.0, 30.0, 12.0, 13.0, 12.5]
    history = series("a-1", values)
    ewm = fair(history, "ewm", window=3)["fair"]
    expected = pd.Series(values).ewm(span=3, adjust=True).mean().shift(1)
    np.testing.assert_allclose(ewm, expected, equal_nan=True)
    median = fair(history, "rolling_median", window=3)["fair"]
    np.testing.assert_allclose(median, pd.Series(values).rolling(3, min_periods=1).median().shift(1),
                               equal_nan=True)


def test_unsorted_input_is_sorted_by_series_and_date():
    history = series("a-1", [1.0, 2.0, 3.0]).iloc[::-1]
    out = fair(history, "rolling_mean", window=1)
    assert out["date"].is_monotonic_increasing
    assert out["fair"].tolist()[1:] == [1.0, 2.0]


def test_fair_value_does_not_look_ahead():
    base = series("a-1", [10.0, 11.0, 12.0, 13.0, 14.0])
    changed = base.copy()
    changed.loc[changed.index[-1], "market_price"] = 1000.0
    for method in ("rolling_mean", "ewm", "rolling_median"):
        a, b = fair(base, method, 3)["fair"], fair(changed, method, 3)["fair"]
        np.testing.assert_allclose(a, b, equal_nan=True)


def test_a_window_of_zero_means_the_methods_default():
    history = series("a-1", [10.0, 12.0, 14.0, 16.0, 18.0, 20.0, 22.0, 24.0, 26.0])
    assert fair(history, "rolling_mean", 0)["fair"].equals(fair(history, "rolling_mean", 7)["fair"])
    assert fair(history, "seed_mean3", 0)["fair"].equals(fair(history, "seed_mean3", 3)["fair"])


def test_seed_mean3_refuses_another_window_instead_of_computing_three():
    with pytest.raises(ParameterError, match="window is fixed at 3"):
        fair(series("a-1", [1.0, 2.0]), "seed_mean3", 7)


@pytest.mark.parametrize("method, window", [("magic", 3), ("rolling_mean", -1), ("ewm", 1.5)])
def test_bad_method_or_window_raise_parameter_errors(method, window):
    with pytest.raises(ParameterError):
        fair(series("a-1", [1.0, 2.0]), method, window)


def test_missing_columns_raise_schema_error():
    with pytest.raises(SchemaError, match="market_price"):
        PriceFrame.from_history(pd.DataFrame({"card_id": ["a"], "variant": ["Normal"], "currency": ["USD"],
                                              "date": [pd.Timestamp("2026-01-01")]}))
