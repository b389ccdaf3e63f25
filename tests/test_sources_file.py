"""The file source: an analyst's CSV/Parquet/JSON export through the same validation and store."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sources_server import FIXTURES, isolate_data

from pokewatch.collect import collect
from pokewatch.errors import ParameterError, SchemaError, SourceError
from pokewatch.sources.file import parse_column_mapping
from pokewatch.store import PriceStore

REPO = Path(__file__).resolve().parents[1]
SHARED_TRACKER = REPO.parent / "shared" / "data" / "pokemontcg-daily"


@pytest.fixture
def store(tmp_path, monkeypatch):
    isolate_data(monkeypatch, tmp_path)
    return PriceStore(tmp_path / "store")


def run(store, tmp_path, start="2026-01-05", end="2026-01-05", **options):
    return collect("file", start, end, tmp_path / "run", store=store, options=options)


def test_a_csv_with_its_own_column_names_is_mapped_and_validated(store, tmp_path):
    result = run(store, tmp_path, "2026-01-04", "2026-01-05", input_path=str(FIXTURES / "file" / "collection.csv"),
                 columns="Price (USD):market_price")

    assert result.validation.counts == {"missing_price": 1, "non_positive_price": 1, "unknown_currency": 1,
                                        "duplicate_key": 1}
    valid = result.prices.set_index(["card_id", "variant", "currency", "date"])
    assert valid.loc[("sv3pt5-199", "Holofoil", "USD", pd.Timestamp("2026-01-05")), "market_price"] == 245.10
    assert valid.loc[("sv3pt5-199", "Cardmarket", "EUR", pd.Timestamp("2026-01-05")), "name"] == "Charizard ex"
    assert set(result.prices["source"]) == {"file"}
    note = result.fetch.notes[0]
    assert note["rows_outside_window"] == 1 and note["columns"]["Price (USD)"] == "market_price"
    assert (tmp_path / "run" / "rejected_rows.csv").exists()


def test_wide_tracker_json_with_card_details(store, tmp_path):
    result = run(store, tmp_path, "2026-01-03", "2026-01-05", path=str(FIXTURES / "file" / "tracker.json"),
                 cards_path=str(FIXTURES / "file" / "tracked-cards.json"), variant="Holofoil")

    assert len(result.prices) == 5
    charizard = result.prices[result.prices["card_id"] == "base1-4"].iloc[0]
    assert (charizard["name"], charizard["set_name"], charizard["rarity"], charizard["variant"]) == \
        ("Charizard", "Base", "Rare Holo", "Holofoil")


@pytest.mark.shared
@pytest.mark.skipif(not (SHARED_TRACKER / "price-history.json").is_file(), reason="../shared is absent")
def test_the_real_tracker_export_imports_73_series(store, tmp_path):
    result = run(store, tmp_path, "2026-07-22", "2026-08-22", path=str(SHARED_TRACKER / "price-history.json"),
                 cards_path=str(SHARED_TRACKER / "tracked-cards.json"))

    assert result.prices[["card_id", "variant", "currency"]].drop_duplicates().shape[0] == 73
    assert result.validation.counts == {}
    assert result.prices["name"].notna().all()


def test_parquet_is_read_too(store, tmp_path):
    path = tmp_path / "prices.parquet"
    pd.DataFrame({"card_id": ["a-1"], "variant": ["Normal"], "date": ["2026-01-05"], "market_price": [1.5],
                  "currency": ["EUR"]}).to_parquet(path)

    result = run(store, tmp_path, path=str(path))

    assert result.prices[["card_id", "currency", "market_price"]].values.tolist() == [["a-1", "EUR", 1.5]]


def test_a_file_without_dates_is_a_snapshot_of_the_run_date(store, tmp_path):
    path = tmp_path / "snapshot.csv"
    path.write_text("id,price\nsv3pt5-199,245.1\n")

    result = run(store, tmp_path, path=str(path))

    assert result.prices["date"].tolist() == [pd.Timestamp("2026-01-05")]


def test_a_file_with_no_row_in_the_window_fails_with_its_date_span(store, tmp_path):
    with pytest.raises(SourceError, match="returned 0% of 1 item"):
        run(store, tmp_path, "2027-01-01", "2027-01-02", path=str(FIXTURES / "file" / "tracker.json"))

    failure = json.loads((tmp_path / "run" / "quality.json").read_text())["fetch_failures"][0]
    assert "no row dated 2027-01-01..2027-01-02; the file spans 2026-01-03..2026-01-05" in failure["error"]


def test_unmappable_columns_name_what_is_missing(store, tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text("Card,Cost\nsv3pt5-199,245.1\n")

    with pytest.raises(SchemaError, match=r"no column for \['market_price'\]; its columns are \['card_id', 'Cost'\]"):
        run(store, tmp_path, path=str(path))


def test_a_missing_path_and_a_missing_file_are_clear_errors(store, tmp_path):
    with pytest.raises(ParameterError, match="--param input_path=PATH"):
        run(store, tmp_path)
    with pytest.raises(SourceError, match="does not exist"):
        run(store, tmp_path, path=str(tmp_path / "nope.csv"))


def test_column_mappings_are_checked():
    assert parse_column_mapping("A B:card_id, Price:market_price") == {"A B": "card_id", "Price": "market_price"}
    with pytest.raises(ParameterError, match="unknown column"):
        parse_column_mapping("Price:cost")
    with pytest.raises(ParameterError, match="has no ':'"):
        parse_column_mapping("Price")
