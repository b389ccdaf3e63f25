import numpy as np
import pandas as pd
import pytest

from pokewatch.errors import ParameterError, SchemaError
from pokewatch.core.schema import MALFORMED, REQUIRED_COLUMNS, validate_observations
from tests.conftest import prices


def test_valid_rows_pass_with_schema_types():
    batch = prices([("sv3pt5-199", "Holofoil", "2026-11-27", 310.5)])
    result = validate_observations(batch)
    assert len(result.valid) == 1 and result.rejected.empty
    assert result.valid["date"].dtype == "datetime64[ns]"
    assert result.valid["market_price"].dtype == np.float64
    assert {"name", "set_name", "rarity", "category"} <= set(result.valid.columns)


@pytest.mark.parametrize("price, reason", [
    (None, "missing_price"), (0.0, "non_positive_price"), (-3.5, "non_positive_price"),
    (float("inf"), "non_finite_price"), ("abc", "non_numeric_price"),
])
def test_bad_prices_are_rejected_with_a_reason(price, reason):
    batch = prices([("a-1", "Normal", "2026-11-27", 1.0), ("a-2", "Normal", "2026-11-27", price)])
    result = validate_observations(batch)
    assert list(result.valid["card_id"]) == ["a-1"]
    assert list(result.rejected["reason"]) == [reason]
    assert result.counts == {reason: 1}


def test_unknown_currency_and_missing_keys_are_rejected():
    batch = prices([("a-1", "Normal", "2026-11-27", 1.0), ("", "Normal", "2026-11-27", 2.0)])
    batch.loc[0, "currency"] = "JPY"
    result = validate_observations(batch)
    assert result.valid.empty
    assert sorted(result.rejected["reason"]) == ["missing_key", "unknown_currency"]


def test_duplicate_keys_keep_the_first_row_and_report_the_rest():
    batch = prices([("a-1", "Normal", "2026-11-27", 1.0), ("a-1", "Normal", "2026-11-27", 9.0),
                    ("a-1", "Normal", "2026-11-27", 8.0)])
    result = validate_observations(batch)
    assert result.valid["market_price"].tolist() == [1.0]
    assert result.counts == {"duplicate_key": 2}


def test_a_rejected_first_row_does_not_make_its_valid_twin_a_duplicate():
    batch = prices([("a-1", "Normal", "2026-11-27", None), ("a-1", "Normal", "2026-11-27", 4.0)])
    result = validate_observations(batch)
    assert result.valid["market_price"].tolist() == [4.0]
    assert result.counts == {"missing_price": 1}


def test_usd_and_eur_prices_of_one_card_are_separate_series():
    batch = pd.concat([prices([("a-1", "Normal", "2026-11-27", 1.0)]),
                       prices([("a-1", "Normal", "2026-11-27", 0.9)], currency="EUR")])
    assert len(validate_observations(batch).valid) == 2


def test_summary_counts_reasons_for_the_quality_report():
    batch = prices([("a-1", "Normal", "2026-11-27", -1.0), ("a-2", "Normal", "not a date", 1.0)])
    summary = validate_observations(batch).summary()
    assert summary["rows_in"] == 2 and summary["rows_rejected"] == 2
    assert summary["rejected_by_reason"]["bad_date"]["count"] == 1
    assert "zero or negative" in summary["rejected_by_reason"]["non_positive_price"]["meaning"]


def test_missing_required_columns_raise_a_schema_error_naming_them():
    with pytest.raises(SchemaError, match="market_price"):
        validate_observations(pd.DataFrame({c: [] for c in REQUIRED_COLUMNS if c != "market_price"}))


def test_spaces_around_keys_are_stripped_so_a_series_is_not_split_in_two():
    batch = prices([("a-1", "Holofoil ", "2026-11-27", 1.0), (" a-1", "Holofoil", "2026-11-28", 2.0)])
    batch["currency"] = [" USD", "USD "]

    result = validate_observations(batch)

    assert result.valid[["card_id", "variant", "currency"]].drop_duplicates().values.tolist() == \
        [["a-1", "Holofoil", "USD"]]


@pytest.mark.parametrize("price", [1e308, 1e-300, 0.001, 1_000_000.01])
def test_prices_outside_the_plausible_range_are_implausible(price):
    batch = prices([("a-1", "Normal", "2026-11-27", price), ("a-2", "Normal", "2026-11-27", 0.01),
                    ("a-3", "Normal", "2026-11-27", 1_000_000.0)])

    result = validate_observations(batch)

    assert result.counts == {"implausible_price": 1}
    assert result.valid["card_id"].tolist() == ["a-2", "a-3"]  # the bounds themselves are plausible


def test_price_bounds_can_be_set_and_are_checked():
    batch = prices([("a-1", "Normal", "2026-11-27", 5.0)])
    assert validate_observations(batch, price_bounds=(10.0, 20.0)).counts == {"implausible_price": 1}
    with pytest.raises(ParameterError, match="price_bounds"):
        validate_observations(batch, price_bounds=(0.0, 1.0))


def test_a_row_a_parser_marked_malformed_is_rejected_first_and_keeps_why():
    batch = prices([("a-1", "Normal", "2026-11-27", 1.0), (None, None, None, None)])
    batch[MALFORMED] = [None, "tcgplayer.prices is a string, not an object"]

    result = validate_observations(batch)

    assert result.counts == {"malformed_record": 1}
    assert result.rejected.loc[0, MALFORMED] == "tcgplayer.prices is a string, not an object"
    assert MALFORMED not in result.valid.columns
    assert "could not be read" in result.summary()["rejected_by_reason"]["malformed_record"]["meaning"]


def test_true_and_false_are_not_prices():
    batch = prices([("a-1", "Normal", "2026-11-27", True), ("a-2", "Normal", "2026-11-27", 2.0)])
    batch["market_price"] = batch["market_price"].astype(object)
    batch.loc[0, "market_price"] = True

    assert validate_observations(batch).counts == {"non_numeric_price": 1}


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "not a date"])
def test_a_date_pandas_cannot_hold_is_rejected_not_raised(day):
    batch = prices([("a-1", "Normal", "2026-11-27", 1.0), ("a-2", "Normal", day, 2.0)])
    result = validate_observations(batch)
    assert list(result.valid["card_id"]) == ["a-1"]
    assert len(result.rejected) == 1 and result.rejected["reason"].iloc[0] != ""
