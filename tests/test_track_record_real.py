"""The 18 real tcgcsv days in ../shared: later days never change earlier days' flags."""
import numpy as np
import pandas as pd
import pytest

from pokewatch.run import collect
from pokewatch.run import steps
from pokewatch.core import walkforward
from pokewatch.data.store import PriceStore
from tests.conftest import SHARED

pytestmark = [pytest.mark.shared, pytest.mark.slow]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    archives = SHARED / "data" / "tcgcsv-archives"
    if not archives.is_dir():
        pytest.skip("../shared/data is not present on this machine")
    root = tmp_path_factory.mktemp("real")
    store = PriceStore(root / "store")
    collect.collect("tcgcsv", "2025-09-21", "2025-10-08", root / "run", store=store,
                    options={"archives": str(archives), "category": 3})
    return store


def walk(store: PriceStore, end: str):
    spec = steps.TrainingSpec()
    key = steps.history_key("tcgcsv", end, store)
    pf = store.load_frame("tcgcsv", "1970-01-01", end)
    last = pd.Timestamp(end) - pd.Timedelta(days=spec.horizon_days)
    selections = [r.value for r in steps.replay_selections(
        "tcgcsv", walkforward.training_dates("2025-09-21", last), spec, pf, store)]
    fair, codes, _ = walkforward.assemble(pf, selections)
    frame = pf.frame
    table = pd.DataFrame({"card_id": frame["card_id"].astype(str), "variant": frame["variant"].astype(str),
                          "date": frame["date"], "fair": fair, "code": codes})
    return table, selections, key


def test_backfills_to_two_end_dates_give_identical_flags_up_to_2025_09_28(store):
    early, early_selections, _ = walk(store, "2025-10-05")
    late, late_selections, _ = walk(store, "2025-10-08")
    cut = pd.Timestamp("2025-09-28")
    a = early[early["date"] <= cut].sort_values(["card_id", "variant", "date"]).reset_index(drop=True)
    b = late[late["date"] <= cut].sort_values(["card_id", "variant", "date"]).reset_index(drop=True)
    assert len(a) > 300_000
    pd.testing.assert_frame_equal(a, b)
    shared = [s.as_of for s in early_selections if pd.Timestamp(s.as_of) <= cut]
    assert [s.rule for s in early_selections if s.as_of in shared] == \
        [s.rule for s in late_selections if s.as_of in shared]
    # with a 7-day horizon the first training day that can learn anything from these days is 2025-10-06
    assert not any(s.learned for s in late_selections if pd.Timestamp(s.as_of) <= cut)
    assert np.isfinite(a["fair"]).mean() > 0.85       # all but each series' first day
