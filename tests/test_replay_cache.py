"""The replayed selections: a daily run reads one cache entry, a changed old day recomputes only what it touched."""
import pandas as pd
import pytest

from pokewatch.run import steps
from pokewatch.core import training, walkforward
from pokewatch.data.store import PriceStore
from tests.market_fixtures import market

SPEC = steps.TrainingSpec(train_days=60)
MONDAYS = walkforward.training_dates("2026-02-02", "2026-04-20")


@pytest.fixture
def store():
    store = PriceStore.default()
    store.write_days("demo", market(days=120))
    return store


@pytest.fixture
def counted(monkeypatch):
    """Counts of store fingerprints read and of selections computed."""
    seen = {"fingerprints": 0, "computed": []}
    fingerprint, select_many = PriceStore.fingerprint, training.select_many

    def count_fingerprint(self, *args, **kwargs):
        seen["fingerprints"] += 1
        return fingerprint(self, *args, **kwargs)

    def count_select_many(pf, as_ofs, **kwargs):
        seen["computed"] += [f"{pd.Timestamp(d):%Y-%m-%d}" for d in as_ofs]
        return select_many(pf, as_ofs, **kwargs)

    monkeypatch.setattr(PriceStore, "fingerprint", count_fingerprint)
    monkeypatch.setattr(steps, "select_many", count_select_many)
    return seen


def replay(store):
    pf = store.load_frame("demo")
    return steps.replay_selections("demo", MONDAYS, SPEC, pf, store)


def test_a_rerun_reads_one_fingerprint_and_one_entry(store, counted):
    first = replay(store)
    assert not any(r.hit for r in first) and len(counted["computed"]) == len(MONDAYS)
    counted["fingerprints"], counted["computed"] = 0, []
    again = replay(store)
    assert all(r.hit for r in again) and counted["computed"] == []
    assert counted["fingerprints"] == 1
    assert [r.value.rule for r in again] == [r.value.rule for r in first]
    assert [r.value.key for r in again] == [r.value.key for r in first]


def test_a_day_stored_again_recomputes_only_the_selections_that_read_it(store, counted):
    replay(store)
    counted["computed"] = []
    changed = market(days=120)
    changed = changed[changed["date"] == "2026-04-10"].assign(market_price=lambda f: f["market_price"] * 1.5)
    store.write_days("demo", changed)                 # a Friday before the last two Mondays
    results = replay(store)
    assert counted["computed"] == ["2026-04-13", "2026-04-20"]
    assert [r.hit for r in results] == [d < pd.Timestamp("2026-04-13") for d in MONDAYS]


def test_an_unreadable_entry_falls_back_to_the_selections_own_entries(store, counted, isolated_dirs):
    first = replay(store)
    broken = [path for path in isolated_dirs["cache"].rglob("output.pkl") if "_replayed" in str(path)]
    for path in broken:
        path.write_bytes(b"not a pickle")
    assert broken
    counted["computed"] = []
    again = replay(store)
    assert counted["computed"] == [] and [r.value.rule for r in again] == [r.value.rule for r in first]
