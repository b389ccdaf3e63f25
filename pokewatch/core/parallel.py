"""Per-series work in shards of cards, run through joblib: in-process, loky, threads or Dask.

Why shards of cards: every fair value, signal and backtest outcome depends on one
series' own history only, so the history splits cleanly into shards of whole cards
(all printings and currencies of a card stay together), each shard is processed
independently, and the pieces are put back together in card order. The results are
identical to the single-process path, bit for bit: per-row outputs are concatenated,
and KPIs are summed from per-series tables in series order whatever the sharding
(:func:`pokewatch.core.backtest.kpis_from_partials`).

Engines (``engine``, with ``workers`` processes or threads):

* ``loky``      joblib's default process pool on this machine (the default);
* ``threading`` threads in this process: the compiled kernels release the GIL, so
  on one machine this avoids copying shards between processes;
* ``dask``      joblib's Dask backend on a ``dask.distributed`` cluster: the client
  already active in this process, else the scheduler at ``$DASK_SCHEDULER_ADDRESS``
  (e.g. ``tcp://scheduler:8786``), else a temporary local cluster of ``workers``
  processes (handy to try it out; slow to start).

``workers=1`` runs in-process with no joblib at all. On this 2-core machine the
single pass over 14 million rows takes a fraction of a second, so more workers pay
off only when the history outgrows one machine; see docs/performance.md.
"""
from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from collections.abc import Callable, Iterator

import joblib
import numpy as np
import pandas as pd

from pokewatch.core import checks, kernels
from pokewatch.errors import ParameterError
from pokewatch.core.frame import PriceFrame
from pokewatch.core.fair_value import kernel_arguments
from pokewatch.core.rules import Rule

logger = logging.getLogger(__name__)

ENGINES = ("loky", "threading", "dask")
#: Environment variable naming the Dask scheduler for ``engine="dask"``.
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"


def check(workers: int, engine: str) -> tuple[int, str]:
    """Validated (workers, engine).

    Raises:
        ParameterError: workers below 1 or an unknown engine.
    """
    workers = checks.positive_int("workers", workers)
    if engine not in ENGINES:
        raise ParameterError(f"parameter engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    return workers, engine


@dataclass(frozen=True)
class Shard:
    """The arrays of a run of whole series, as sent to a worker."""

    prices: np.ndarray
    days: np.ndarray
    bounds: np.ndarray
    low: np.ndarray


def card_shards(pf: PriceFrame, n_shards: int) -> list[tuple[int, int]]:
    """Series ranges ``(first, last)`` of about equal row counts that never split a card."""
    n_series = pf.n_series
    if n_shards <= 1 or n_series <= 1:
        return [(0, n_series)]
    cards = pf.frame["card_id"]
    card_of_series = pd.factorize(cards.take(pf.starts))[0] if len(pf) else np.zeros(0, np.int64)
    # Series where a new card starts: the only places a shard may begin.
    cut_points = np.flatnonzero(np.r_[True, card_of_series[1:] != card_of_series[:-1]])
    targets = np.arange(1, n_shards) * (len(pf) / n_shards)
    chosen = np.unique(cut_points[np.clip(np.searchsorted(pf.bounds[cut_points], targets), 0,
                                          len(cut_points) - 1)])
    edges = [0, *[int(c) for c in chosen if 0 < c < n_series], n_series]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


@contextlib.contextmanager
def _backend(engine: str, workers: int) -> Iterator[None]:
    if engine != "dask":
        with joblib.parallel_config(backend=engine, n_jobs=workers):
            yield
        return
    try:
        from distributed import Client, LocalCluster, get_client
    except ImportError:
        raise ParameterError("engine=dask needs dask.distributed: pip install 'dask[distributed]'") from None
    try:
        client, owned = get_client(), None
    except ValueError:
        address = os.environ.get(SCHEDULER_ENV)
        if address:
            client, owned = Client(address), None
            logger.info("using the Dask scheduler at %s", address)
        else:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
            client, owned = Client(cluster), cluster
            logger.info("no Dask scheduler given (%s); started a local cluster of %d workers", SCHEDULER_ENV, workers)
    try:
        with joblib.parallel_config(backend="dask", n_jobs=workers):
            yield
    finally:
        if owned is not None:
            client.close()
            owned.close()


def map_shards(task: Callable, pf: PriceFrame, per_shard: Callable[[int, int], tuple] | None = None,
               args: tuple = (), *, workers: int = 1, engine: str = "loky") -> list:
    """``task(shard, *per_shard(lo_row, hi_row), *args)`` for each shard of cards, in card order.

    Args:
        task: a module-level function (it is pickled to the workers).
        per_shard: extra arguments sliced to a shard's rows (for example fair values).
        args: arguments shared by every shard.
    """
    workers, engine = check(workers, engine)
    ranges = card_shards(pf, workers) if workers > 1 else [(0, pf.n_series)]
    calls = []
    for first, last in ranges:
        lo, hi = int(pf.bounds[first]), int(pf.bounds[last])
        low = pf.low[lo:hi] if len(pf.low) else pf.low
        shard = Shard(pf.prices[lo:hi], pf.days[lo:hi], pf.bounds[first:last + 1] - lo, low)
        calls.append((shard, *(per_shard(lo, hi) if per_shard else ()), *args))
    if len(calls) == 1:
        return [task(*calls[0])]
    with _backend(engine, workers):
        return joblib.Parallel()(joblib.delayed(task)(*call) for call in calls)


# -- the per-series tasks -----------------------------------------------------------------
def _rule_pass(prices: np.ndarray, low: np.ndarray, bounds: np.ndarray, rule: Rule, *, threads: int | None = None,
               with_dev: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`pokewatch.core.kernels.rule_rows` under ``rule``: (fair, deviation or empty, codes)."""
    code, window, com = kernel_arguments(rule.method, rule.window)
    return kernels.rule_rows(prices, low, bounds, code, window, com, *rule.cuts, *rule.kernel_filters(),
                             threads=threads, with_dev=with_dev)


def _rule_task(shard: Shard, rule: Rule) -> tuple[np.ndarray, np.ndarray]:
    fair, _dev, codes = _rule_pass(shard.prices, shard.low, shard.bounds, rule, threads=1)
    return fair, codes


def _histogram_task(shard: Shard, method: str, window: int, cuts: tuple, horizon: int, target_return: float,
                    day0: int, n_days: int) -> tuple:
    code, window, com = kernel_arguments(method, window)
    return kernels.candidate_histogram(shard.prices, shard.low, shard.days, shard.bounds, code, window, com, *cuts,
                                       horizon, target_return, day0, n_days, threads=1)


def _backtest_task(shard: Shard, fair: np.ndarray, codes: np.ndarray, horizon: int, start_day: int, end_day: int,
                   min_price: float, target_return: float, with_rows: bool) -> tuple:
    return kernels.backtest_partials(shard.prices, shard.days, fair, codes, shard.bounds, horizon, start_day,
                                     end_day, min_price, target_return, with_rows, threads=1)


def _walk_task(shard: Shard, method: str, window: int, cuts: tuple, day0: int, table: np.ndarray) -> tuple:
    code, window, com = kernel_arguments(method, window)
    fair, codes = np.full(len(shard.prices), np.nan), np.full(len(shard.prices), 1, np.int8)
    kernels.walk_rows(shard.prices, shard.low, shard.days, shard.bounds, code, window, com, *cuts, day0, table, fair,
                      codes, threads=1)
    return fair, codes


def walk_arrays(pf: PriceFrame, method: str, window: int, cuts: tuple, day0: int, table: np.ndarray,
                fair: np.ndarray, codes: np.ndarray, *, workers: int = 1, engine: str = "loky") -> None:
    """Fill ``fair``/``codes`` for the days whose rule uses ``method`` (see ``kernels.walk_rows``)."""
    workers, engine = check(workers, engine)
    table = np.ascontiguousarray(table, np.int64)
    if workers == 1:
        code, window, com = kernel_arguments(method, window)
        kernels.walk_rows(pf.prices, pf.low, pf.days, pf.bounds, code, window, com, *cuts, day0, table, fair, codes)
        return
    parts = map_shards(_walk_task, pf, args=(method, window, cuts, day0, table), workers=workers, engine=engine)
    part_fair, part_codes = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    written = ~np.isnan(part_fair)
    fair[written], codes[written] = part_fair[written], part_codes[written]


def rule_arrays(pf: PriceFrame, rule: Rule, *, workers: int = 1, engine: str = "loky", with_dev: bool = False
                ) -> tuple[np.ndarray, ...]:
    """Fair value and signal code of every row under ``rule`` (see :func:`pokewatch.core.kernels.rule_rows`).

    With ``with_dev``: (fair, deviation, codes), the deviation from the same pass.
    """
    workers, engine = check(workers, engine)
    if workers == 1:
        fair, dev, codes = _rule_pass(pf.prices, pf.low, pf.bounds, rule, with_dev=with_dev)
        return (fair, dev, codes) if with_dev else (fair, codes)
    parts = map_shards(_rule_task, pf, args=(rule,), workers=workers, engine=engine)
    fair, codes = parts[0] if len(parts) == 1 else (np.concatenate([p[0] for p in parts]),
                                                    np.concatenate([p[1] for p in parts]))
    return (fair, kernels.deviations(pf.prices, fair), codes) if with_dev else (fair, codes)


def candidate_histogram(pf: PriceFrame, method: str, window: int, cuts: tuple, horizon: int, target_return: float,
                        day0: int, n_days: int, *, workers: int = 1, engine: str = "loky") -> tuple:
    """Per-day outcome counts of every confirmation pattern of one method (see the kernel)."""
    workers, engine = check(workers, engine)
    if workers == 1:
        code, window, com = kernel_arguments(method, window)
        return kernels.candidate_histogram(pf.prices, pf.low, pf.days, pf.bounds, code, window, com, *cuts, horizon,
                                           target_return, day0, n_days)
    parts = map_shards(_histogram_task, pf, args=(method, window, cuts, horizon, target_return, day0, n_days),
                       workers=workers, engine=engine)
    return tuple(sum(p[i] for p in parts) for i in range(4))


def backtest_partials(pf: PriceFrame, fair: np.ndarray, codes: np.ndarray, horizon: int, start_day: int,
                      end_day: int, min_price: float, target_return: float, *, with_rows: bool = True,
                      workers: int = 1, engine: str = "loky") -> tuple:
    """Per-series backtest tables and per-row outputs (see :func:`pokewatch.core.kernels.backtest_partials`)."""
    workers, engine = check(workers, engine)
    fair = np.ascontiguousarray(fair, np.float64)
    codes = np.ascontiguousarray(codes, np.int8)
    if workers == 1:
        return kernels.backtest_partials(pf.prices, pf.days, fair, codes, pf.bounds, horizon, start_day, end_day,
                                         min_price, target_return, with_rows)
    parts = map_shards(_backtest_task, pf, lambda lo, hi: (fair[lo:hi], codes[lo:hi]),
                       (horizon, start_day, end_day, min_price, target_return, with_rows), workers=workers,
                       engine=engine)
    if len(parts) == 1:
        return parts[0]
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(4))
