"""The compacted history stays in step with the daily files, whoever changes them."""
import os

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pokewatch.core.frame import day_numbers
from pokewatch.data import compaction
from pokewatch.data.store import PriceStore
from tests.conftest import prices


@pytest.fixture
def store(tmp_path):
    return PriceStore(tmp_path / "store")


def days(card: str, first: int, last: int, price: float = 1.0, **columns) -> pd.DataFrame:
    """One Normal series of ``card``, one row per day of November 2026 from ``first`` to ``last``."""
    return prices([(card, "Normal", f"2026-11-{d:02d}", price + d) for d in range(first, last + 1)], **columns)


def from_partitions(store: PriceStore, source: str = "demo") -> pd.DataFrame:
    """What the daily files hold, read one by one (the slow way the compacted file replaces)."""
    frames = [pq.read_table(store.day_path(source, day)).to_pandas() for day in store.dates(source)]
    table = pd.concat(frames, ignore_index=True)
    return table.sort_values(["card_id", "variant", "currency", "date"]).reset_index(drop=True)


def loaded(store: PriceStore, source: str = "demo") -> pd.DataFrame:
    return store.load(source).reset_index(drop=True)


def assert_in_step(store: PriceStore) -> None:
    expected, actual = from_partitions(store), loaded(store)
    assert list(actual["market_price"]) == list(expected["market_price"])
    assert list(actual["card_id"]) == list(expected["card_id"])
    assert list(actual["date"]) == list(expected["date"].astype("datetime64[ns]"))


def test_a_load_maps_the_history_named_after_the_fingerprint(store):
    store.write_days("demo", pd.concat([days("a-1", 1, 5), days("b-2", 3, 7)]))
    history, up_to_date = store.compacted("demo")
    assert up_to_date
    assert history.state.name == f"state-{store.fingerprint('demo')}.json"
    assert [part.role for part in history.parts] == ["base"]
    assert_in_step(store)


def test_rewriting_a_day_merges_only_that_day(store):
    store.write_days("demo", days("a-1", 1, 5))
    store.write_days("demo", prices([("a-1", "Normal", "2026-11-03", 99.0), ("c-3", "Holofoil", "2026-11-03", 5.0)]))
    assert_in_step(store)
    frame = store.load_frame("demo")
    assert frame.n_series == 2 and len(frame) == 6


def test_days_changed_behind_the_stores_back_are_picked_up_on_load(store):
    store.write_days("demo", days("a-1", 1, 5))
    os.unlink(store.day_path("demo", "2026-11-02"))
    edited = pd.read_parquet(store.day_path("demo", "2026-11-04"))
    edited["market_price"] = 42.0
    edited.to_parquet(store.day_path("demo", "2026-11-04"), index=False)
    assert loaded(store)["market_price"].tolist() == [2.0, 4.0, 42.0, 6.0]
    assert_in_step(store)


def test_a_deleted_compacted_file_is_rebuilt_from_the_daily_files(store):
    store.write_days("demo", days("a-1", 1, 5, category="grail"))
    compaction.discard(store.root, "demo")
    assert not list((store.root / compaction.FOLDER / "demo").glob("state-*"))
    assert loaded(store)["category"].tolist() == ["grail"] * 5


def test_extra_and_missing_columns_are_kept_with_nulls(store):
    store.write_days("demo", days("a-1", 1, 2))
    store.write_days("demo", days("a-1", 3, 3, low_price=0.5))
    table = loaded(store)
    assert table["low_price"].isna().tolist() == [True, True, False]


def test_a_window_keeps_series_codes_dense(store):
    store.write_days("demo", pd.concat([days("a-1", 1, 2), days("b-2", 5, 6)]))
    frame = store.load_frame("demo", "2026-11-05", "2026-11-06")
    assert frame.n_series == 1 and frame.codes.tolist() == [0, 0]
    assert frame.frame["card_id"].astype(str).tolist() == ["b-2", "b-2"]


def test_string_columns_come_back_as_categoricals_in_the_price_frame(store):
    store.write_days("demo", days("a-1", 1, 3))
    frame = store.load_frame("demo").frame
    assert isinstance(frame["card_id"].dtype, pd.CategoricalDtype)
    assert frame["date"].dtype == np.dtype("datetime64[ns]")


# -- a base plus day segments -------------------------------------------------------------------------
def test_adding_a_day_writes_a_segment_with_just_that_day(store):
    store.write_days("demo", pd.concat([days("a-1", 1, 20), days("b-2", 1, 20)]))
    store.write_days("demo", pd.concat([days("a-1", 21, 21), days("b-2", 21, 21)]))
    history, _ = store.compacted("demo")
    assert [(part.role, part.n) for part in history.parts] == [("base", 40), ("segment", 2)]
    assert_in_step(store)
    frame = store.load_frame("demo")
    assert frame.bounds.tolist() == [0, 21, 42] and frame.days[20] - frame.days[19] == 1


def test_segments_merge_as_they_pile_up(store):
    store.write_days("demo", pd.concat([days(f"c-{i}", 1, 28) for i in range(4)]))
    counts = []
    for day in range(29, 31):
        store.write_days("demo", pd.concat([days(f"c-{i}", day, day) for i in range(4)]))
        counts.append(len(store.compacted("demo")[0].parts))
    assert counts == [2, 2]  # the second day's segment merged with the first's
    for month_day in range(1, 29):  # a month of December days: the base takes them in once they are a quarter
        store.write_days("demo", prices([(f"c-{i}", "Normal", f"2026-12-{month_day:02d}", 2.0) for i in range(4)]))
    history, _ = store.compacted("demo")
    assert len(history.parts) <= 1 + 6
    assert sum(part.n for part in history.parts) == 4 * 58
    assert_in_step(store)


def test_recollecting_an_older_day_goes_into_its_place(store):
    store.write_days("demo", pd.concat([days("a-1", 1, 10), days("b-2", 1, 10)]))
    store.write_days("demo", prices([("a-1", "Normal", "2026-11-03", 99.0), ("a-0", "Normal", "2026-11-03", 7.0)]))
    assert_in_step(store)
    window = store.load("demo", "2026-11-02", "2026-11-04")
    assert window[["card_id", "market_price"]].values.tolist() == [
        ["a-0", 7.0], ["a-1", 3.0], ["a-1", 99.0], ["a-1", 5.0], ["b-2", 3.0], ["b-2", 4.0], ["b-2", 5.0]]


def test_compacting_merges_every_part_into_one_mapped_base(store):
    store.write_days("demo", days("a-1", 1, 10))
    store.write_days("demo", days("a-1", 11, 11, low_price=0.5))
    before = loaded(store)
    store.compact("demo")
    history, _ = store.compacted("demo")
    assert [part.role for part in history.parts] == ["base"]
    pd.testing.assert_frame_equal(loaded(store), before)
    frame = store.load_frame("demo")
    assert isinstance(frame.prices.base, np.memmap)  # no copy: a view of the mapped file


def _store_bytes(store: PriceStore) -> dict[str, bytes]:
    paths = [store.day_path("demo", day) for day in store.dates("demo")]
    return {path.name: path.read_bytes() for path in paths}


def _base_bytes(store: PriceStore) -> dict[str, bytes]:
    store.compact("demo")
    history, _ = store.compacted("demo")
    (base,) = history.parts
    return {path.name: path.read_bytes() for path in sorted(base.path.iterdir())}


def test_the_store_is_the_same_whether_days_arrive_one_by_one_or_as_one_backfill(tmp_path):
    from pokewatch.data.demo_market import demo_prices

    history = demo_prices("2026-01-01", "2026-03-15", n_series=30)
    one_by_one, backfill = PriceStore(tmp_path / "daily"), PriceStore(tmp_path / "backfill")
    for _day, rows in history.groupby("date", sort=True):
        one_by_one.write_days("demo", rows.reset_index(drop=True))
    backfill.write_days("demo", history)
    assert len(one_by_one.compacted("demo")[0].parts) > 1  # the daily store holds segments

    assert _store_bytes(one_by_one) == _store_bytes(backfill)
    pd.testing.assert_frame_equal(one_by_one.load("demo"), backfill.load("demo"))
    daily, bulk = one_by_one.load_frame("demo"), backfill.load_frame("demo")
    for name in ("codes", "days", "prices", "bounds"):
        assert np.array_equal(getattr(daily, name), getattr(bulk, name)), name
    pd.testing.assert_frame_equal(daily.frame, bulk.frame)
    assert _base_bytes(one_by_one) == _base_bytes(backfill)


def test_an_unreadable_part_is_rebuilt_from_the_daily_files(store):
    store.write_days("demo", days("a-1", 1, 5))
    history, _ = store.compacted("demo")
    (history.parts[0].path / "part.json").write_text("{not json")
    compaction._OPEN_PARTS.clear()
    os.utime(store.day_path("demo", "2026-11-03"))  # a change, so the state is looked for again
    assert_in_step(store)


# -- a few rows without the whole table -----------------------------------------------------------------
def _assert_rows_match(frame) -> None:
    """Every way of asking for rows gives the rows of the whole table, whatever order they are asked in."""
    whole = frame.frame
    picks = np.random.default_rng(7).permutation(len(frame))[: max(1, len(frame) // 2)]
    for positions in (picks, np.sort(picks), frame.starts, np.zeros(0, np.int64)):
        fresh = type(frame)(frame.codes, frame.days, frame.prices, frame.bounds, frame._rows_source, rows=frame._rows)
        pd.testing.assert_frame_equal(fresh.rows(positions), whole.iloc[positions])


@pytest.fixture
def mixed_store(store):
    """A base, a day segment with a new column and a new card, and an older day collected again."""
    store.write_days("demo", pd.concat([days("a-1", 1, 28, category="grail"), days("b-2", 1, 28),
                                        days("d-4", 1, 28)]))
    store.write_days("demo", pd.concat([days("a-1", 29, 29, low_price=0.5), days("c-3", 29, 29, low_price=2.0)]))
    store.write_days("demo", prices([("b-2", "Normal", "2026-11-04", 99.0), ("a-0", "Normal", "2026-11-04", 7.0)]))
    assert len(store.compacted("demo")[0].parts) >= 2   # the base, and the segment the two days went to
    return store


def test_rows_read_at_positions_equal_the_whole_tables_rows(mixed_store):
    for start, end in ((None, None), ("2026-11-03", "2026-11-29"), ("2026-11-04", "2026-11-04")):
        frame = mixed_store.load_frame("demo", start, end)
        frame._rows_source = frame._frame
        _assert_rows_match(frame)


def test_reading_rows_at_positions_never_builds_the_whole_table(mixed_store):
    frame = mixed_store.load_frame("demo")
    rows = frame.rows(frame.bounds[1:] - 1)
    assert callable(frame._frame)  # still the builder: the long table was never made
    assert rows["card_id"].astype(str).tolist() == ["a-0", "a-1", "b-2", "c-3", "d-4"]
    assert rows["low_price"].isna().tolist() == [True, False, True, False, True]
    assert frame.rows(frame.starts)["category"].tolist() == [np.nan, "grail", np.nan, np.nan, np.nan]
    assert callable(frame._frame)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_merged_columns_are_the_same_on_any_number_of_threads(mixed_store, monkeypatch, threads):
    monkeypatch.setattr(compaction.columnar, "THREADS", threads)
    compaction._OPEN_PARTS.clear()      # a fresh opening, so no merged column is reused
    frame = mixed_store.load_frame("demo")
    expected = from_partitions(mixed_store)
    assert frame.prices.tolist() == expected["market_price"].tolist()
    assert frame.days.tolist() == day_numbers(expected["date"]).tolist()
