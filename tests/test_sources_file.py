"""The file source: an analyst's CSV/Parquet/JSON export through the same validation and store."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest
from sources_server import FIXTURES, isolate_data

from pokewatch.run.collect import collect
from pokewatch.errors import ParameterError, SchemaError, SourceError
from pokewatch.data.sources.file import parse_column_mapping
from pokewatch.core.schema import MALFORMED
from pokewatch.data.store import PriceStore
from pokewatch.run.folder import RunFolder

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
    assert RunFolder(tmp_path / "run").rejected_rows.exists()


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
    path = tmp_path / "export.parquet"
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

    failure = json.loads(RunFolder(tmp_path / "run").quality.read_text())["fetch_failures"][0]
    assert "no row dated 2027-01-01..2027-01-02; the file spans 2026-01-03..2026-01-05" in failure["error"]


def test_unmappable_columns_name_what_is_missing(store, tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text("Card,Cost\nsv3pt5-199,245.1\n")

    with pytest.raises(SchemaError, match=r"no column for \['market_price'\]; its columns are \['card_id', 'Cost'\]"):
        run(store, tmp_path, path=str(path))


def test_a_missing_path_and_a_missing_file_are_clear_errors(store, tmp_path):
    with pytest.raises(ParameterError, match="--param input_path=PATH"):
        run(store, tmp_path)
    with pytest.raises(ParameterError, match="option input_path: file .*nope.csv does not exist"):
        run(store, tmp_path, path=str(tmp_path / "nope.csv"))


def test_column_mappings_are_checked():
    assert parse_column_mapping("A B:card_id, Price:market_price") == {"A B": "card_id", "Price": "market_price"}
    with pytest.raises(ParameterError, match="unknown column"):
        parse_column_mapping("Price:cost")
    with pytest.raises(ParameterError, match="has no ':'"):
        parse_column_mapping("Price")


# --------------------------------------------------------------------------- only the schema, and bad input refused

def test_unmapped_columns_are_dropped_and_declared_ones_kept(store, tmp_path):
    path = tmp_path / "prices.csv"
    path.write_text("id,price,Grade (PSA),Notes,Shelf\nsv3pt5-199,245.1,10,bought at a fair,B2\n")

    result = run(store, tmp_path, path=str(path), columns="Grade (PSA):keep")

    assert "grade_psa" in result.prices.columns and result.prices["grade_psa"].tolist() == ["10"]
    assert not {"Notes", "Shelf", "notes", "shelf"} & set(result.prices.columns)
    note = result.fetch.notes[0]
    assert note["columns_dropped"] == 2 and note["dropped_examples"] == ["Notes", "Shelf"]


def test_kept_columns_are_capped_in_number_and_size(store, tmp_path):
    path = tmp_path / "prices.csv"
    path.write_text("id,price,Comment\nsv3pt5-199,245.1," + "x" * 5000 + "\n")

    result = run(store, tmp_path, path=str(path), columns="Comment:keep")

    assert result.prices["comment"].str.len().tolist() == [256]
    assert result.fetch.notes[0]["cells_cut"] == 1
    too_many = ",".join(f"C{i}:keep" for i in range(21))
    with pytest.raises(ParameterError, match="keeps 21 extra columns; at most 20"):
        parse_column_mapping(too_many)


def test_a_csv_with_200000_columns_imports_its_schema_columns_in_seconds(store, tmp_path):
    path = tmp_path / "wide.csv"
    extra = 200_000 - 3
    header = "id,price,date," + ",".join(f"c{i}" for i in range(extra))
    rows = [f"card-{n},{n + 1}.5,2026-01-05" + "," * extra for n in range(3)]
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    assert 1_500_000 < path.stat().st_size < 2_500_000

    started = time.perf_counter()
    result = run(store, tmp_path, path=str(path))
    seconds = time.perf_counter() - started

    assert seconds < 5, f"took {seconds:.1f}s"
    assert len(result.prices) == 3 and result.fetch.notes[0]["columns_dropped"] == extra
    stored = store.load("file")
    assert len(stored) == 3 and not any(c.startswith("c1") for c in stored.columns)


def test_a_header_only_csv_fails(store, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("card_id,market_price,date\n")

    with pytest.raises(SourceError, match="has a header but no data rows"):
        run(store, tmp_path, path=str(path))
    assert store.load("file").empty


def test_a_file_whose_rows_are_all_invalid_fails_and_says_why(store, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("id,price\nsv3pt5-199,-1\nsv3pt5-1,1e308\n")

    with pytest.raises(SourceError, match=r"none of its 2 row\(s\) .* is valid .*non_positive_price.*"
                                          r"implausible_price"):
        run(store, tmp_path, path=str(path))
    assert store.load("file").empty


def test_a_trailing_space_in_a_variant_does_not_split_the_series(store, tmp_path):
    path = tmp_path / "spaces.csv"
    path.write_text("id,variant,date,price\nsv3pt5-199,Holofoil ,2026-01-04,240\n sv3pt5-199,Holofoil,2026-01-05,245\n")

    result = run(store, tmp_path, "2026-01-04", "2026-01-05", path=str(path))

    assert result.prices[["card_id", "variant"]].drop_duplicates().values.tolist() == [["sv3pt5-199", "Holofoil"]]


def test_a_date_given_twice_in_wide_json_is_rejected_not_silently_overwritten(store, tmp_path):
    path = tmp_path / "tracker.json"
    path.write_text('{"base1-4": {"2026-01-04": 390.0, "2026-01-05": 398.0, "2026-01-05": 401.2},'
                    ' "sv3pt5-199": {"2026-01-05": 245.1}}')

    result = run(store, tmp_path, "2026-01-04", "2026-01-05", path=str(path))

    assert result.validation.counts == {"malformed_record": 2}
    assert sorted(result.prices["card_id"] + " " + result.prices["date"].dt.strftime("%m-%d")) == \
        ["base1-4 01-04", "sv3pt5-199 01-05"]
    rejected = pd.read_csv(RunFolder(tmp_path / "run").rejected_rows)
    assert rejected["malformed"].str.contains("given 2 times").all()


def test_json_ids_must_be_strings_or_whole_numbers(store, tmp_path):
    path = tmp_path / "records.json"
    path.write_text(json.dumps([{"id": 123, "price": 1.5}, {"id": ["a"], "price": 2.5}, {"id": {"x": 1}, "price": 3},
                                {"id": "sv3pt5-1", "price": 4.5}, "not a record"]))

    result = run(store, tmp_path, path=str(path))

    assert sorted(result.prices["card_id"]) == ["123", "sv3pt5-1"]
    assert result.validation.counts == {"malformed_record": 3}


def test_a_csv_line_with_the_wrong_number_of_fields_is_malformed_and_the_rest_imported(store, tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("id,price\nsv3pt5-1,1.5\nsv3pt5-2,2.5,oops\nsv3pt5-3,3.5\n")

    result = run(store, tmp_path, path=str(path))

    assert result.prices["card_id"].tolist() == ["sv3pt5-1", "sv3pt5-3"]
    assert result.validation.counts == {"malformed_record": 1}
    assert "line 3 has 3 fields, the header has 2" in result.validation.rejected[MALFORMED].iloc[0]
