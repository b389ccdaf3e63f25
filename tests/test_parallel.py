"""Sharding by card gives exactly the single-process results, on loky and on a Dask cluster."""
import math

import numpy as np
import pandas as pd
import pytest

from pokewatch.core import parallel
from pokewatch.run import steps
from pokewatch.core.backtest import backtest_arrays
from pokewatch.data.demo_market import demo_prices
from pokewatch.errors import ParameterError
from pokewatch.core.frame import PriceFrame
from pokewatch.core.rules import Filters, Rule
from pokewatch.data.store import PriceStore
from pokewatch.core.training import DEFAULT_CANDIDATES, histograms, training_date

START, END = "2026-07-01", "2026-11-27"


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return demo_prices(START, END, n_series=120, epoch=START)


@pytest.fixture(scope="module")
def pf(history) -> PriceFrame:
    return PriceFrame.from_history(history)


def same(a, b) -> bool:
    """Equal arrays, KPI dicts or tables, NaN equal to NaN."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, pd.DataFrame):
        return a.equals(b)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    return a == b


RULE = Rule("rolling_mean", 7, sell=Filters(activity=1, no_jump=True))


def sharded_results(pf: PriceFrame, workers: int, engine: str) -> dict:
    fair, codes = parallel.rule_arrays(pf, RULE, workers=workers, engine=engine)
    tables = parallel.backtest_partials(pf, fair, codes, 7, -10**6, 10**6, 1.0, 0.05, workers=workers, engine=engine)
    hists = histograms(pf, DEFAULT_CANDIDATES, START, END, workers=workers, engine=engine)
    return {"fair": fair, "codes": codes, "tables": tables, "candidates": hists.per_method}


@pytest.fixture(scope="module")
def single(pf) -> dict:
    return sharded_results(pf, 1, "loky")


def assert_identical(result: dict, single: dict) -> None:
    assert same(result["fair"], single["fair"])
    assert same(result["codes"], single["codes"])
    assert all(same(a, b) for a, b in zip(result["tables"], single["tables"]))
    assert result["candidates"].keys() == single["candidates"].keys()
    for name, arrays in single["candidates"].items():
        counts, returns, universe, errors = result["candidates"][name]
        assert same(counts, arrays[0]) and same(universe, arrays[2])
        np.testing.assert_allclose(returns, arrays[1], rtol=1e-12)   # float sums, in shard order
        np.testing.assert_allclose(errors, arrays[3], rtol=1e-12)


def test_shards_hold_whole_cards_and_cover_every_series(pf):
    shards = parallel.card_shards(pf, 3)
    assert shards[0][0] == 0 and shards[-1][1] == pf.n_series
    assert all(a[1] == b[0] for a, b in zip(shards, shards[1:]))
    card_of_series = pf.frame["card_id"].take(pf.starts).to_numpy()
    for first, _last in shards[1:]:
        assert card_of_series[first] != card_of_series[first - 1]


def test_loky_with_two_workers_matches_the_single_process_path(pf, single):
    assert_identical(sharded_results(pf, 2, "loky"), single)


def test_threads_match_the_single_process_path(pf, single):
    assert_identical(sharded_results(pf, 2, "threading"), single)


def test_a_dask_local_cluster_matches_the_single_process_path(pf, single):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        result = sharded_results(pf, 2, "dask")
    assert_identical(result, single)


def test_sharded_backtest_kpis_equal_the_in_process_ones(pf, single):
    in_process = backtest_arrays(pf, single["fair"], single["codes"]).kpis
    sharded = backtest_arrays(pf, *parallel.rule_arrays(pf, RULE, workers=2,
                                                           engine="threading")).kpis
    assert same(sharded, in_process)


def test_worker_count_is_not_part_of_the_cache_key(history):
    store = PriceStore.default()
    store.write_days("demo", history)
    spec = steps.TrainingSpec(train_days=60)
    first = steps.selection_step("demo", training_date(END), spec, store, workers=1)
    again = steps.selection_step("demo", training_date(END), spec, store, workers=2, engine="threading")
    assert (first.hit, again.hit) == (False, True)
    assert first.value.rule == again.value.rule


@pytest.mark.parametrize("workers, engine, name", [(0, "loky", "workers"), (2, "spark", "engine")])
def test_bad_workers_or_engine_name_the_parameter(pf, workers, engine, name):
    with pytest.raises(ParameterError, match=name):
        parallel.rule_arrays(pf, RULE, workers=workers, engine=engine)
