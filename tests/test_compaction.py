"""The compacted history stays in step with the daily files, whoever changes them."""
import os

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pokewatch import compaction
from pokewatch.store import PriceStore
from tests.conftest import prices


@pytest.fixture
def store(tmp_path):
    return PriceStore(tmp_path / "store")


def days(card: str, first: int, last: int, price: float = 1.0, **columns) -> pd.DataFrame:
    return prices([(card, "Normal", f"2026-11-{d:02d}", price + d) for d in range(first, last + 1)], **columns)


def from_partitions(store: PriceStore, source: str = "demo") -> pd.DataFrame:
    """What the daily files hold, read one by one (the slow way the compacted file replaces)."""
    frames = [pq.read_table(path).to_pandas() for path in store.day_files(source)]
    table = pd.concat(frames, ignore_index=True)
    return table.sort_values(["card_id", "variant", "currency", "date"]).reset_index(drop=True)


def loaded(store: PriceStore, source: str = "demo") -> pd.DataFrame:
    return store.load(source).reset_index(drop=True)


def assert_in_step(store: PriceStore) -> None:
    expected, actual = from_partitions(store), loaded(store)
    assert list(actual["market_price"]) == list(expected["market_price"])
    assert list(actual["card_id"]) == list(expected["card_id"])
    assert list(actual["date"]) == list(expected["date"].astype("datetime64[ns]"))


def test_a_load_maps_one_compacted_file_named_after_the_fingerprint(store):
    store.write_days("demo", pd.concat([days("a-1", 1, 5), days("b-2", 3, 7)]))
    compacted, up_to_date = store.compacted("demo")
    assert up_to_date
    assert compacted.path.name == f"history-{store.fingerprint('demo')}.arrow"
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
    assert not list((store.root / compaction.FOLDER / "demo").glob("*.arrow"))
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
