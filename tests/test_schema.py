import numpy as np
import pandas as pd
import pytest

from pokewatch.errors import SchemaError
from pokewatch.schema import REQUIRED_COLUMNS, validate_observations
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
