import numpy as np
import pytest

from pokewatch.errors import ParameterError
from pokewatch.signals import classify, compute_signals, deviation
from tests.conftest import series


def labels(codes):
    return [("BUY", "HOLD", "SELL")[c] for c in codes]


def test_thresholds_are_inclusive_and_asymmetric():
    market = np.array([90.0, 90.01, 115.0, 114.99, 100.0])
    dev = deviation(market, np.full(5, 100.0))
    assert labels(classify(dev, market)) == ["BUY", "HOLD", "SELL", "HOLD", "HOLD"]


def test_cards_under_min_price_are_never_flagged():
    market = np.array([0.5, 0.5])
    dev = deviation(market, np.array([1.0, 0.1]))
    assert labels(classify(dev, market, min_price=1.0)) == ["HOLD", "HOLD"]
    assert labels(classify(dev, market, min_price=0.0)) == ["BUY", "SELL"]


def test_no_fair_value_means_hold():
    market = np.array([5.0])
    assert labels(classify(deviation(market, np.array([np.nan])), market)) == ["HOLD"]


@pytest.mark.parametrize("kwargs, name", [({"buy_threshold": -1}, "buy_threshold"),
                                          ({"sell_threshold": 0}, "sell_threshold"),
                                          ({"min_price": -0.5}, "min_price")])
def test_bad_thresholds_name_the_parameter(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        classify(np.array([0.0]), np.array([1.0]), **kwargs)


def test_compute_signals_flags_a_dip_against_prior_prices():
    out = compute_signals(series("a-1", [20.0, 20.0, 20.0, 17.0, 24.0]), "rolling_mean", 3)
    assert out["signal"].astype(str).tolist() == ["HOLD", "HOLD", "HOLD", "BUY", "SELL"]
    assert out["deviation"].iloc[3] == pytest.approx(-0.15)
    assert out["has_fair"].tolist() == [False, True, True, True, True]
