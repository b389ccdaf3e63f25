import pickle

import pytest

from pokewatch import caching, steps
from pokewatch.store import PriceStore
from tests.conftest import series

CALLS = []


def slow_square(x: int, cache_version: str) -> int:
    CALLS.append(x)
    return x * x


@pytest.fixture(autouse=True)
def reset_calls():
    CALLS.clear()


def test_second_call_with_the_same_key_is_a_hit():
    first = caching.cached_call(slow_square, 3, "v1")
    second = caching.cached_call(slow_square, 3, "v1")
    assert (first.value, first.hit) == (9, False)
    assert (second.value, second.hit) == (9, True)
    assert CALLS == [3]


def test_bumping_cache_version_recomputes():
    caching.cached_call(slow_square, 3, "v1")
    assert caching.cached_call(slow_square, 3, "v2").hit is False
    assert CALLS == [3, 3]


def test_a_corrupted_entry_is_recomputed_not_fatal(isolated_dirs):
    caching.cached_call(slow_square, 4, "v1")
    outputs = list(isolated_dirs["cache"].rglob("output.pkl"))
    assert outputs
    for path in outputs:
        path.write_bytes(b"not a pickle")
    again = caching.cached_call(slow_square, 4, "v1")
    assert again.value == 16
    assert CALLS == [4, 4]
    assert caching.cached_call(slow_square, 4, "v1").hit is True


def test_steps_are_keyed_on_the_store_fingerprint_not_the_rows():
    store = PriceStore.default()
    store.write_days("demo", series("a-1", [10.0, 11.0, 12.0, 13.0]))
    spec = steps.TrainingSpec(train_days=30, horizon_days=1)
    monday = "2026-01-05"
    assert steps.selection_step("demo", monday, spec, store).hit is False
    assert steps.selection_step("demo", monday, spec, store).hit is True
    store.write_days("demo", series("a-1", [10.0], start="2026-01-04"))   # a day before that Monday changed
    assert steps.selection_step("demo", monday, spec, store).hit is False
    store.write_days("demo", series("a-1", [10.0], start="2026-01-05"))   # the Monday itself: not read
    assert steps.selection_step("demo", monday, spec, store).hit is True
    key = steps.history_key("demo", "2026-01-04", store)
    assert len(pickle.dumps(key.args())) < 500
