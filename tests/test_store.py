import pandas as pd
import pytest

from pokewatch.errors import ParameterError
from pokewatch.store import PriceStore
from tests.conftest import prices


@pytest.fixture
def store(tmp_path):
    return PriceStore(tmp_path / "store")


def test_rerunning_a_day_replaces_its_rows(store):
    store.write_days("demo", prices([("a-1", "Normal", "2026-11-27", 1.0), ("a-2", "Normal", "2026-11-27", 2.0)]))
    store.write_days("demo", prices([("a-1", "Normal", "2026-11-27", 1.5)]))
    loaded = store.load("demo")
    assert loaded[["card_id", "market_price"]].values.tolist() == [["a-1", 1.5]]


def test_other_days_are_untouched_by_a_rewrite(store):
    store.write_days("demo", prices([("a-1", "Normal", "2026-11-26", 1.0), ("a-1", "Normal", "2026-11-27", 2.0)]))
    store.write_days("demo", prices([("a-1", "Normal", "2026-11-27", 3.0)]))
    assert store.load("demo").sort_values("date")["market_price"].tolist() == [1.0, 3.0]


def test_load_filters_by_date_range_and_source(store):
    store.write_days("demo", prices([("a-1", "Normal", f"2026-11-{d:02d}", float(d)) for d in range(1, 11)]))
    store.write_days("other", prices([("a-1", "Normal", "2026-11-05", 99.0)]))
    window = store.load("demo", "2026-11-03", "2026-11-05")
    assert sorted(window["market_price"]) == [3.0, 4.0, 5.0]
    assert store.load("missing-source").empty


def test_fingerprint_changes_when_a_day_is_rewritten(store):
    store.write_days("demo", prices([("a-1", "Normal", "2026-11-27", 1.0)]))
    before = store.fingerprint("demo")
    assert before == store.fingerprint("demo")
    store.write_days("demo", prices([("a-1", "Normal", "2026-11-27", 2.0), ("a-2", "Normal", "2026-11-27", 2.0)]))
    assert store.fingerprint("demo") != before


def test_duplicates_are_refused_not_stored(store):
    batch = prices([("a-1", "Normal", "2026-11-27", 1.0), ("a-1", "Normal", "2026-11-27", 2.0)])
    with pytest.raises(ParameterError, match="duplicate"):
        store.write_days("demo", batch)
    assert store.load("demo").empty


def test_writes_leave_no_temporary_files(store):
    store.write_days("demo", prices([("a-1", "Normal", "2026-11-27", 1.0)]))
    assert [p.name for p in (store.root / "demo").iterdir()] == ["date=2026-11-27.parquet"]


def test_source_names_cannot_escape_the_store(store):
    with pytest.raises(ParameterError):
        store.load("../etc")


def test_loaded_dates_are_naive_days(store):
    store.write_days("demo", prices([("a-1", "Normal", "2026-11-27", 1.0)]))
    assert store.load("demo")["date"].iloc[0] == pd.Timestamp("2026-11-27")


def test_rewriting_an_identical_day_keeps_the_fingerprint(store):
    day = prices([("a-1", "Normal", "2026-11-27", 1.0)])
    store.write_days("demo", day)
    before = store.fingerprint("demo")
    store.write_days("demo", day)
    assert store.fingerprint("demo") == before
