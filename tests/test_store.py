import time

import numpy as np
import pandas as pd
import pytest

from pokewatch.errors import ParameterError
from pokewatch.core.schema import DESCRIPTIVE_COLUMNS, MAX_EXTRA_COLUMNS, MAX_TEXT_CHARS, REQUIRED_COLUMNS
from pokewatch.data.store import PriceStore
from tests.conftest import prices


@pytest.fixture
def store(tmp_path):
    return PriceStore(tmp_path / "store")


def test_recollecting_a_day_keeps_the_rows_it_did_not_fetch(store):
    store.write_days("demo", prices([("a-1", "Normal", "2026-11-27", 1.0), ("a-2", "Normal", "2026-11-27", 2.0)]))
    report = store.write_days("demo", prices([("a-1", "Normal", "2026-11-27", 1.5)]))
    loaded = store.load("demo")
    assert loaded[["card_id", "market_price"]].values.tolist() == [["a-1", 1.5], ["a-2", 2.0]]
    assert report.stored == {"2026-11-27": 2} and report.rows_removed == 0


def test_replace_day_keeps_only_the_fetched_rows_and_counts_the_removed(store):
    store.write_days("demo", prices([("a-1", "Normal", "2026-11-27", 1.0), ("a-2", "Normal", "2026-11-27", 2.0),
                                     ("a-3", "Normal", "2026-11-27", 3.0), ("a-1", "Normal", "2026-11-26", 9.0)]))
    report = store.write_days("demo", prices([("a-1", "Normal", "2026-11-27", 1.5)]), replace_day=True)
    assert store.load("demo")[["date", "market_price"]].values.tolist() == [
        [pd.Timestamp("2026-11-26"), 9.0], [pd.Timestamp("2026-11-27"), 1.5]]
    assert report.removed == {"2026-11-27": 2} and report.rows_removed == 2


def test_a_new_series_on_a_stored_day_is_added_beside_the_stored_ones(store):
    store.write_days("demo", prices([("a-1", "Normal", "2026-11-27", 1.0)]))
    store.write_days("demo", prices([("a-1", "Holofoil", "2026-11-27", 5.0)], currency="EUR"))
    loaded = store.load("demo")
    assert loaded[["variant", "currency", "market_price"]].values.tolist() == [["Holofoil", "EUR", 5.0],
                                                                              ["Normal", "USD", 1.0]]


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


def test_fingerprints_of_many_ends_are_each_ends_own_fingerprint(store):
    store.write_days("demo", prices([("a-1", "Normal", f"2026-11-{d:02d}", float(d)) for d in (2, 3, 5, 9)]))
    ends = ["2026-11-05", "2026-11-01", "2026-11-03", "2026-11-30", "2026-11-05"]
    assert store.fingerprints("demo", "2026-11-03", ends) == [store.fingerprint("demo", "2026-11-03", e)
                                                              for e in ends]
    assert store.fingerprints("demo", None, ["2026-11-04"]) == [store.fingerprint("demo", None, "2026-11-04")]
    assert store.fingerprints("demo", None, []) == []
    assert store.fingerprints("missing", None, ["2026-11-04"]) == [store.fingerprint("missing", None, "2026-11-04")]


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


def test_recollecting_some_unchanged_rows_leaves_the_file_and_its_mtime_alone(store):
    store.write_days("demo", prices([("a-1", "Normal", "2026-11-27", 1.0), ("a-2", "Normal", "2026-11-27", 2.0)]))
    path = store.day_path("demo", "2026-11-27")
    mtime, fingerprint = path.stat().st_mtime_ns, store.fingerprint("demo")
    report = store.write_days("demo", prices([("a-2", "Normal", "2026-11-27", 2.0)]))
    assert report.unchanged == ["2026-11-27"]
    assert path.stat().st_mtime_ns == mtime and store.fingerprint("demo") == fingerprint


def test_a_day_fetched_again_exactly_as_stored_is_neither_merged_nor_written(store, monkeypatch):
    from pokewatch.data import compaction

    day = prices([("a-1", "Normal", "2026-11-27", 1.0), ("a-2", "Holofoil", "2026-11-27", 2.0),
                  ("a-1", "Normal", "2026-11-28", 1.5)], set_name="Base Set")
    store.write_days("demo", day)
    before = {d: store.day_path("demo", d).read_bytes() for d in ("2026-11-27", "2026-11-28")}
    monkeypatch.setattr(compaction, "upsert_rows", lambda *a: pytest.fail("an unchanged day was merged"))

    report = store.write_days("demo", day)

    assert report.unchanged == ["2026-11-27", "2026-11-28"] and report.stored == {"2026-11-27": 2, "2026-11-28": 1}
    assert {d: store.day_path("demo", d).read_bytes() for d in before} == before


def test_a_day_fetched_again_with_one_changed_price_or_in_another_order_is_merged(store):
    store.write_days("demo", prices([("a-1", "Normal", "2026-11-27", 1.0), ("a-2", "Normal", "2026-11-27", 2.0)]))

    changed = store.write_days("demo", prices([("a-1", "Normal", "2026-11-27", 1.0),
                                               ("a-2", "Normal", "2026-11-27", 2.5)]))
    reordered = store.write_days("demo", prices([("a-2", "Normal", "2026-11-27", 2.5),
                                                 ("a-1", "Normal", "2026-11-27", 1.0)]))

    assert changed.unchanged == [] and store.load("demo")["market_price"].tolist() == [1.0, 2.5]
    assert reordered.stored == {"2026-11-27": 2} and store.load("demo")["market_price"].tolist() == [1.0, 2.5]


# -- the store keeps only the schema's columns ------------------------------------------------------
def test_columns_neither_in_the_schema_nor_declared_are_dropped_with_a_warning(store, caplog):
    day = prices([("a-1", "Normal", "2026-11-27", 1.0)], low_price=0.5, grade="PSA 9", junk="x")
    report = store.write_days("demo", day, declared_columns=["grade"])
    loaded = store.load("demo")
    assert {"low_price", "grade"} <= set(loaded.columns) and "junk" not in loaded.columns
    assert report.dropped_columns == ["junk"] and "not storing 1 column(s)" in caplog.text


def test_declared_columns_are_capped(store):
    extras = {f"extra{i}": "v" for i in range(MAX_EXTRA_COLUMNS + 5)}
    report = store.write_days("demo", prices([("a-1", "Normal", "2026-11-27", 1.0)], **extras),
                              declared_columns=list(extras))
    assert len(report.dropped_columns) == 5
    assert len([c for c in store.load("demo").columns if c.startswith("extra")]) == MAX_EXTRA_COLUMNS


def test_long_text_is_cut_outside_the_key_columns(store):
    report = store.write_days("demo", prices([("a-1", "Normal", "2026-11-27", 1.0)], name="N" * 100_000))
    assert report.truncated == {"name": 1}
    assert store.load("demo")["name"].iloc[0] == "N" * MAX_TEXT_CHARS


def test_a_frame_with_200000_unmapped_columns_is_trimmed_fast_and_adds_only_its_rows(store):
    store.write_days("demo", prices([("a-1", "Normal", "2026-11-26", 1.0)]))
    files_before = sum(p.stat().st_size for p in store.root.rglob("*") if p.is_file())
    n_rows, n_junk = 5, 200_000
    keys = prices([(f"w-{i}", "Normal", "2026-11-27", 1.0 + i) for i in range(n_rows)])
    junk = pd.DataFrame(np.ones((n_rows, n_junk), np.int8), columns=[f"c{i}" for i in range(n_junk)])
    wide = pd.concat([keys, junk], axis=1)

    started = time.perf_counter()
    report = store.write_days("demo", wide)
    seconds = time.perf_counter() - started

    assert seconds < 5, seconds
    assert len(report.dropped_columns) == n_junk
    assert len(store.load("demo")) == 1 + n_rows
    assert set(store.load("demo").columns) <= set(REQUIRED_COLUMNS + DESCRIPTIVE_COLUMNS)
    files_after = sum(p.stat().st_size for p in store.root.rglob("*") if p.is_file())
    assert files_after - files_before < 100_000  # the rows, not the columns


def test_the_listing_price_is_read_on_its_own_without_building_the_long_table(store):
    store.write_days("demo", prices([("a-1", "Normal", "2026-11-26", 2.0), ("a-1", "Normal", "2026-11-27", 3.0),
                                     ("b-2", "Normal", "2026-11-27", 5.0)], low_price=[1.5, 2.5, 4.0]))
    pf = store.load_frame("demo")
    np.testing.assert_array_equal(pf.low, [1.5, 2.5, 4.0])
    assert callable(pf._frame)                         # the table of every column was never built
    np.testing.assert_array_equal(pf.frame["low_price"].to_numpy(float), pf.low)

    store.write_days("plain", prices([("a-1", "Normal", "2026-11-27", 2.0)]))
    assert len(store.load_frame("plain").low) == 0
