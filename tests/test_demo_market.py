"""Behaviour of the demo market: realistic statistics, determinism, keys, schema, errors.

The statistics test measures the stylized facts the module docstring promises, with
the same definitions used to calibrate it (see :func:`market_facts`), on a market of
1,500 series over 365 days, within loose bounds around the real-data targets.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pokewatch.data.demo_market import (MarketState, demo_catalogue, demo_price_chunks, demo_prices, simulate_blocks,
                                        simulate_prices)
from pokewatch.data.sources.demo import SavedStates
from pokewatch.errors import ParameterError

STRING_COLUMNS = ["card_id", "variant", "currency", "name", "set_id", "set_name", "number",
                  "rarity", "source", "category"]
COLUMNS = ["card_id", "variant", "date", "market_price", "currency", "name", "set_id", "set_name",
           "number", "rarity", "source", "category"]


def market_facts(prices: pd.DataFrame) -> dict:
    """The stylized facts of a long price table, measured as the calibration defines them.

    A daily change is the log-price change of a series from one calendar day to the
    next, counted only when both days are observed. A move is a non-zero change. A
    series' level is its median price; its volatility is the standard deviation of its
    daily changes, summarised per price tier by the median over series. The lag-1
    correlation pairs each move with the series' next move (zero changes and missing
    days skipped).
    """
    panel = prices.pivot(index="date", columns=["card_id", "variant"], values="market_price")
    panel = panel.reindex(pd.date_range(panel.index.min(), panel.index.max(), freq="D"))
    change = np.diff(np.log(panel.to_numpy()), axis=0)
    seen = ~np.isnan(change)
    moved = seen & (change != 0)
    move_size = np.abs(change[moved])
    level = panel.median().to_numpy()
    volatility = np.nanstd(change, axis=0, ddof=1)
    moves_by_series = change.T[moved.T]
    series_of_move = np.nonzero(moved.T)[0]
    same_series = series_of_move[1:] == series_of_move[:-1]
    variants = panel.columns.get_level_values("variant").value_counts(normalize=True)
    return {
        "no_change": 1.0 - moved.sum() / seen.sum(),
        "move_q50": np.quantile(move_size, 0.5),
        "move_q90": np.quantile(move_size, 0.9),
        "move_q99": np.quantile(move_size, 0.99),
        "std_under_1": np.median(volatility[level < 1]),
        "std_1_to_10": np.median(volatility[(level >= 1) & (level < 10)]),
        "std_over_10": np.median(volatility[level >= 10]),
        "missing": float(np.isnan(panel.to_numpy()).mean()),
        "median_price": float(np.median(level)),
        "share_10_plus": float((level >= 10).mean()),
        "share_100_plus": float((level >= 100).mean()),
        "max_price": float(level.max()),
        "lag1_corr": float(np.corrcoef(moves_by_series[:-1][same_series],
                                       moves_by_series[1:][same_series])[0, 1]),
        "share_normal": float(variants.get("Normal", 0.0)),
        "share_reverse_holofoil": float(variants.get("Reverse Holofoil", 0.0)),
        "share_holofoil": float(variants.get("Holofoil", 0.0)),
    }


@pytest.fixture(scope="module")
def year_of_prices() -> pd.DataFrame:
    return demo_prices("2025-01-01", "2025-12-31", n_series=1500)


@pytest.fixture(scope="module")
def facts(year_of_prices: pd.DataFrame) -> dict:
    return market_facts(year_of_prices)


def test_most_days_show_no_price_change(facts):
    assert 0.70 <= facts["no_change"] <= 0.82


def test_moves_are_small_with_a_fat_but_bounded_tail(facts):
    assert 0.02 <= facts["move_q50"] <= 0.045
    assert 0.09 <= facts["move_q90"] <= 0.18
    assert 0.20 <= facts["move_q99"] <= 0.45


def test_cheap_cards_are_more_volatile_than_dear_ones(facts):
    assert facts["std_under_1"] > facts["std_1_to_10"] > facts["std_over_10"]
    assert 0.040 <= facts["std_under_1"] <= 0.070
    assert 0.024 <= facts["std_1_to_10"] <= 0.042
    assert 0.020 <= facts["std_over_10"] <= 0.036


def test_about_two_percent_of_prices_are_missing(facts):
    assert 0.01 <= facts["missing"] <= 0.03


def test_price_levels_match_the_real_market(facts):
    assert 0.6 <= facts["median_price"] <= 1.3
    assert 0.14 <= facts["share_10_plus"] <= 0.25
    assert 0.02 <= facts["share_100_plus"] <= 0.07
    assert 1_000 <= facts["max_price"] <= 50_000


def test_moves_mean_revert_mildly(facts):
    assert -0.2 <= facts["lag1_corr"] <= 0.0


def test_variant_shares_match_the_real_market(facts):
    assert facts["share_normal"] == pytest.approx(0.43, abs=0.05)
    assert facts["share_reverse_holofoil"] == pytest.approx(0.30, abs=0.05)
    assert facts["share_holofoil"] == pytest.approx(0.23, abs=0.05)


def test_prices_are_in_cents_and_at_least_one_cent(year_of_prices):
    cents = year_of_prices["market_price"].to_numpy() * 100
    assert np.allclose(cents, np.round(cents))
    assert year_of_prices["market_price"].min() >= 0.01


def test_a_hype_spike_lifts_a_price_and_then_fades():
    # At $200 an ordinary trade moves a price by at most about +39%, so a one-day jump
    # of +50% or more is a hype spike. Spikes are rare (about one per series in nine
    # years), so 3,000 series over 400 days see a few hundred.
    prices = simulate_prices(3000, 400, seed=7, base_price=np.full(3000, 200.0))
    jump = np.diff(np.log(prices), axis=0)
    day, series = np.nonzero(jump > np.log(1.5))
    followed = day + 36 < len(prices)
    day, series = day[followed], series[followed]
    peak = prices[day + 1, series]
    month_later = np.nanmedian(prices[day[:, None] + np.arange(26, 36), series[:, None]], axis=1)
    assert len(day) >= 50
    assert np.mean(month_later < peak) > 0.9


def test_the_same_seed_gives_the_same_prices():
    first = demo_prices("2025-06-01", "2025-06-20", n_series=50, seed=3)
    again = demo_prices("2025-06-01", "2025-06-20", n_series=50, seed=3)
    pd.testing.assert_frame_equal(first, again)


def test_a_different_seed_gives_a_different_market():
    one = demo_prices("2025-06-01", "2025-06-20", n_series=50, seed=3)
    other = demo_prices("2025-06-01", "2025-06-20", n_series=50, seed=4)
    assert not one.equals(other)
    assert not demo_catalogue(50, seed=3).equals(demo_catalogue(50, seed=4))


def test_a_day_does_not_depend_on_the_requested_window():
    alone = demo_prices("2026-01-05", "2026-01-05", n_series=200)
    in_backfill = demo_prices("2025-01-01", "2026-01-05", n_series=200)
    same_day = in_backfill[in_backfill["date"] == "2026-01-05"].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone, same_day)


def test_a_window_starting_mid_block_matches_the_longer_history():
    # Draws come in 64-day blocks; a window that starts inside one must still line up.
    late = demo_prices("2020-04-10", "2020-08-31", n_series=60)
    early = demo_prices("2020-01-01", "2020-08-31", n_series=60)
    pd.testing.assert_frame_equal(late, early[early["date"] >= "2020-04-10"].reset_index(drop=True))


def test_epoch_at_start_simulates_only_the_window():
    prices = demo_prices("2025-01-01", "2025-03-31", n_series=100, epoch="2025-01-01")
    assert prices["date"].min() == pd.Timestamp("2025-01-01")
    assert prices["date"].max() == pd.Timestamp("2025-03-31")
    again = demo_prices("2025-01-01", "2025-03-31", n_series=100, epoch="2025-01-01")
    pd.testing.assert_frame_equal(prices, again)


@pytest.mark.parametrize("start, end, chunk_days", [("2020-03-10", "2020-07-01", 31), ("2025-06-01", "2025-06-03", 31),
                                                     ("2020-01-01", "2020-02-05", 7)])
def test_chunks_of_a_backfill_are_the_backfill_with_categorical_strings(start, end, chunk_days):
    whole = demo_prices(start, end, n_series=40)
    chunks = list(demo_price_chunks(start, end, n_series=40, chunk_days=chunk_days))

    assert [c["date"].nunique() for c in chunks][:-1] == [chunk_days] * (len(chunks) - 1)
    assert all(isinstance(chunks[0][c].dtype, pd.CategoricalDtype) for c in STRING_COLUMNS)
    joined = pd.concat([c.astype({name: "string" for name in STRING_COLUMNS}) for c in chunks])
    joined = joined.sort_values(["card_id", "variant", "date"], kind="stable", ignore_index=True)
    pd.testing.assert_frame_equal(joined, whole)


def test_a_simulation_resumed_from_a_saved_state_gives_the_same_prices():
    base = demo_catalogue(30, seed=5)["base_price"].to_numpy()
    states = []
    whole = np.concatenate([b for _, b in simulate_blocks(30, 300, 5, base, on_block=states.append)])
    assert [s.day for s in states] == [0, 64, 128, 192, 256]

    saved = MarketState.from_bytes(states[2].to_bytes())          # through the file format
    resumed = np.concatenate([b for _, b in simulate_blocks(30, 300, 5, base, keep_from=150, resume=saved)])
    np.testing.assert_array_equal(resumed, whole[150:])


def test_a_state_after_the_first_kept_day_cannot_be_resumed_from():
    base = demo_catalogue(10, seed=5)["base_price"].to_numpy()
    states = []
    for _ in simulate_blocks(10, 200, 5, base, on_block=states.append):
        pass
    with pytest.raises(ParameterError, match="cannot resume the simulation from a state of day 128"):
        next(simulate_blocks(10, 200, 5, base, keep_from=100, resume=states[2]))


def test_chunks_resume_from_yesterdays_state_and_match_a_fresh_simulation(tmp_path):
    store = SavedStates(tmp_path, 40)
    list(demo_price_chunks("2020-06-01", "2020-06-30", n_series=40, states=store))
    assert [p.name for p in tmp_path.iterdir()] == ["128.npz"]          # the last block start reached

    resumed = pd.concat(demo_price_chunks("2020-07-01", "2020-07-01", n_series=40, states=store))
    fresh = pd.concat(demo_price_chunks("2020-07-01", "2020-07-01", n_series=40))
    pd.testing.assert_frame_equal(resumed, fresh)


def test_an_unreadable_or_foreign_state_is_skipped_with_a_warning(tmp_path, caplog):
    (tmp_path / "128.npz").write_bytes(b"not a state")
    other = SavedStates(tmp_path / "other", 7)
    list(demo_price_chunks("2020-05-20", "2020-05-20", n_series=7, states=other))
    (tmp_path / "other" / "128.npz").rename(tmp_path / "64.npz")        # a 7-series state under a 40-series market
    store = SavedStates(tmp_path, 40)

    assert store.latest(200) is None
    assert "unreadable demo market state" in caplog.text and "it is not of day 64 and 40 series" in caplog.text
    pd.testing.assert_frame_equal(pd.concat(demo_price_chunks("2020-05-20", "2020-05-20", n_series=40, states=store)),
                                  pd.concat(demo_price_chunks("2020-05-20", "2020-05-20", n_series=40)))


def test_only_the_newest_states_are_kept(tmp_path):
    store = SavedStates(tmp_path, 5)
    for end in ("2020-02-01", "2020-04-01", "2020-06-01", "2020-08-01", "2020-10-01"):
        list(demo_price_chunks(end, end, n_series=5, states=store))
    assert sorted(int(p.stem) for p in tmp_path.iterdir()) == [128, 192, 256]
    assert store.latest(200).day == 192 and store.latest(63) is None


def test_a_chunk_size_below_one_is_refused():
    with pytest.raises(ParameterError, match="chunk_days must be a positive integer"):
        next(demo_price_chunks("2025-01-01", "2025-01-02", chunk_days=0))


def test_card_and_variant_identify_a_series():
    catalogue = demo_catalogue(20_000, seed=11)
    assert not catalogue.duplicated(["card_id", "variant"]).any()
    assert catalogue["card_id"].duplicated().any(), "some cards should come in two printings"
    assert catalogue["card_id"].str.fullmatch(r"[a-z0-9]+-\d+").all()


def test_a_day_has_one_row_per_observed_series(year_of_prices):
    assert not year_of_prices.duplicated(["card_id", "variant", "date"]).any()


def test_prices_have_the_schema_columns_dtypes_and_order(year_of_prices):
    assert list(year_of_prices.columns) == COLUMNS
    assert year_of_prices["date"].dtype == "datetime64[ns]"
    assert year_of_prices["market_price"].dtype == "float64"
    for column in STRING_COLUMNS:
        assert year_of_prices[column].dtype == "string", column
    assert (year_of_prices["source"] == "demo").all()
    assert (year_of_prices["currency"] == "USD").all()
    assert year_of_prices["category"].isna().all()
    key = year_of_prices[["card_id", "variant", "date"]]
    assert key.equals(key.sort_values(["card_id", "variant", "date"]))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"start": "2025-01-01", "end": "2025-01-02", "n_series": 0}, "n_series must be a whole number of at least 1"),
    ({"start": "2025-01-01", "end": "2025-01-02", "n_series": 2.5}, "n_series must be a whole number of at least 1"),
    ({"start": "2025-01-01", "end": "2025-01-02", "seed": -1}, "seed must be a whole number of at least 0"),
    ({"start": "2019-12-31", "end": "2020-01-02"}, "starts on 2020-01-01"),
    ({"start": "2025-01-10", "end": "2025-01-01"}, "end 2025-01-01 is before start 2025-01-10"),
    ({"start": "not a date", "end": "2025-01-01"}, "start must be a date"),
    ({"start": "2025-01-01", "end": "2025-01-31", "epoch": "2025-01-02"}, "starts on 2025-01-02"),
])
def test_bad_parameters_raise_a_helpful_parameter_error(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        demo_prices(**kwargs)


def test_simulating_needs_matching_positive_base_prices():
    with pytest.raises(ParameterError, match="base_price must hold 3 positive prices"):
        simulate_prices(3, 10, seed=1, base_price=np.array([1.0, 0.0, 2.0]))
    with pytest.raises(ParameterError, match="n_days must be a positive integer"):
        simulate_prices(3, 0, seed=1, base_price=np.ones(3))


def test_an_empty_catalogue_is_refused():
    with pytest.raises(ParameterError, match="n_series"):
        demo_catalogue(0)

