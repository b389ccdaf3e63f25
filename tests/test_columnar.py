"""The store layout's helpers against the plain definitions, across chunk boundaries."""
from __future__ import annotations

import numpy as np
import pytest

from pokewatch.core import columnar


@pytest.fixture(params=[1 << 20, 3], ids=["one chunk", "3-row chunks"])
def chunk(request, monkeypatch):
    monkeypatch.setattr(columnar, "CHUNK", request.param)


def test_local_codes_renumber_over_the_categories_used_and_keep_nulls(chunk):
    codes = np.array([4, -1, 2, 4, 7, 2, -1, 7], np.int16)
    local, used = columnar.local_codes(codes, 9)
    assert used.tolist() == [2, 4, 7]
    assert local.tolist() == [1, -1, 0, 1, 2, 0, -1, 2] and local.dtype == np.int32
    categories = np.array(list("abcdefghi"))
    assert (categories[used][local[codes >= 0]] == categories[codes[codes >= 0]]).all()


def test_no_codes_use_no_categories(chunk):
    local, used = columnar.local_codes(np.array([], np.int8), 5)
    assert len(local) == 0 and len(used) == 0


def test_day_numbers_floor_like_python_also_before_1970(chunk):
    per_day = 86_400 * 10**9
    ticks = np.array([-1, 0, per_day - 1, per_day, -per_day - 1, 20_000 * per_day + 5], np.int64)
    assert columnar.floor_divide_to_int32(ticks, per_day).tolist() == [int(t) // per_day for t in ticks]
    days = np.array([-3, 0, 20_000], np.int32)
    assert columnar.scale_to_int64(days, per_day).tolist() == [int(d) * per_day for d in days]


@pytest.mark.parametrize("codes, days, expected", [
    ([0, 0, 1, 1, 2], [5, 6, 1, 9, 3], True),
    ([0, 0, 1, 1, 2], [5, 5, 1, 9, 3], False),     # a day twice within a series
    ([0, 1, 1, 0, 2], [5, 6, 7, 8, 9], False),     # a series comes back
    ([0, 0, 0, 0, 0], [1, 2, 3, 4, 3], False),     # the last pair, past a chunk boundary
    ([], [], True),
    ([3], [1], True),
])
def test_the_sort_check_wants_series_then_strictly_increasing_days(chunk, codes, days, expected):
    assert columnar.is_sorted_by_series_and_day(np.array(codes, np.int32), np.array(days, np.int32)) is expected


def test_runs_expand_to_their_heads_values(chunk):
    out = columnar.expand_runs(np.array([3, 1, 2]), np.array([0, 2, 3]), 6, np.int8)
    assert out.tolist() == [3, 3, 1, 2, 2, 2] and out.dtype == np.int8
