"""The pipeline's expensive steps, cached on disk and keyed on cheap fingerprints.

Notebooks call these instead of the underlying functions so a re-run on unchanged
data is near-instant. Each ``*_step`` returns a :class:`~pokewatch.caching.CachedResult`
(value, hit, seconds) for the run manifest. The private functions are what
joblib caches: every argument is a string or number (store location, source,
dates, the store's fingerprint, parameters, ``cache_version``), never a DataFrame.

What is cached, and why so little: the history itself already has an on-disk cache
keyed on the same fingerprint, the store's compacted history, which maps in
milliseconds. So joblib keeps only what is computed from it: the fair value and
signal code per row (two arrays, memory-mapped back on a hit), the backtest KPIs,
and the trained model with its candidate table. The long signals table and the
backtest's scored rows are rebuilt from those around the mapped history, which costs
less than reading a pickled copy of them would.

``workers`` and ``engine`` shard the per-series work (:mod:`pokewatch.parallel`).
They are not part of any cache key: the results are the same whatever they are.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pokewatch import backtest as backtesting
from pokewatch import kernels, parallel, params
from pokewatch.backtest import BacktestResult
from pokewatch.caching import CACHE_VERSION, CachedResult, cached_call, memorized
from pokewatch.errors import RunError
from pokewatch.fair_value import PriceFrame
from pokewatch.model import FairValueModel
from pokewatch.signals import signals_frame, thresholds
from pokewatch.store import PriceStore
from pokewatch.training import train

logger = logging.getLogger(__name__)

#: The price frame and signals table of the last key used in this process, so the
#: evaluate notebook's signals and backtest steps share one copy.
_MEMO: dict = {}


@dataclass(frozen=True)
class HistoryKey:
    """Identifies a slice of stored history by content fingerprint, not by its rows."""

    store_root: str
    source: str
    start: str
    end: str
    fingerprint: str

    @classmethod
    def of(cls, source: str, start, end, store: PriceStore | None = None) -> HistoryKey:
        store = store or PriceStore.default()
        start, end = f"{pd.Timestamp(start):%Y-%m-%d}", f"{pd.Timestamp(end):%Y-%m-%d}"
        return cls(str(store.root), source, start, end, store.fingerprint(source, start, end))

    def args(self) -> tuple:
        return (self.store_root, self.source, self.start, self.end, self.fingerprint)


def _no_prices(store_root: str, source: str, start: str, end: str) -> RunError:
    return RunError(f"no {source!r} prices stored between {start} and {end} in {store_root}; "
                    "run the collect notebook (or scripts/run_pipeline.sh) first")


def _load_history(store_root: str, source: str, start: str, end: str, fingerprint: str,
                  cache_version: str) -> pd.DataFrame:
    history = PriceStore(store_root).load(source, start, end)
    if history.empty:
        raise _no_prices(store_root, source, start, end)
    return history


def price_frame(store_root: str, source: str, start: str, end: str, fingerprint: str) -> PriceFrame:
    """The history slice as a :class:`PriceFrame` over the mapped compacted history (memoized)."""
    memo_key = ("frame", store_root, source, start, end, fingerprint)
    pf = _MEMO.get(memo_key)
    if pf is None:
        pf = PriceStore(store_root).load_frame(source, start, end)
        if len(pf) == 0:
            raise _no_prices(store_root, source, start, end)
        _MEMO.clear()
        _MEMO[memo_key] = pf
    return pf


def _signal_arrays(store_root, source, start, end, fingerprint, method, window, buy_threshold, sell_threshold,
                   min_price, cache_version, workers=1, engine="loky") -> tuple[np.ndarray, np.ndarray]:
    pf = price_frame(store_root, source, start, end, fingerprint)
    cuts = thresholds(buy_threshold, sell_threshold, min_price)
    return parallel.signal_arrays(pf, method, window, cuts, workers=workers, engine=engine)


def _train(store_root, source, start, end, fingerprint, run_date, method, window, buy_threshold,
           sell_threshold, min_price, horizon_days, target_return, keep_days,
           cache_version, workers=1, engine="loky") -> tuple[FairValueModel, pd.DataFrame]:
    pf = price_frame(store_root, source, start, end, fingerprint)
    return train(pf, run_date, method=method, window=window, buy_threshold=buy_threshold,
                 sell_threshold=sell_threshold, min_price=min_price, horizon_days=horizon_days,
                 target_return=target_return, keep_days=keep_days, workers=workers, engine=engine)


def _backtest(store_root, source, start, end, fingerprint, method, window, buy_threshold, sell_threshold,
              min_price, horizon_days, target_return, cache_version, workers=1, engine="loky") -> BacktestResult:
    """KPIs and per-signal returns; the scored rows are attached by :func:`backtest_step`."""
    fair, codes = memorized(_signal_arrays)(store_root, source, start, end, fingerprint, method, window,
                                            buy_threshold, sell_threshold, min_price, cache_version,
                                            workers=workers, engine=engine)
    pf = price_frame(store_root, source, start, end, fingerprint)
    start_day, end_day, end_ts = backtesting.scoring_window(pf.days, horizon_days)
    counts, sums, forward_return, flags = parallel.backtest_partials(
        pf, fair, codes, horizon_days, start_day, end_day, min_price, target_return, workers=workers, engine=engine)
    kpis = backtesting.kpis_from_partials(counts, sums, horizon_days, target_return, end_ts)
    scored = (flags & kernels.ROW_SCORED).astype(bool)
    return BacktestResult(kpis, by_signal=backtesting.by_signal_table(codes, forward_return, scored, counts, sums))


def _signals_table(key: HistoryKey, model: FairValueModel, workers: int, engine: str) -> tuple:
    """(signals table, hit, price frame, fair, codes) of ``key`` under ``model``'s rules (memoized)."""
    rules = (model.method, model.window, model.buy_threshold, model.sell_threshold, model.min_price)
    memo_key = ("signals", *key.args(), *rules)
    cached = cached_call(_signal_arrays, *key.args(), model.method, int(model.window), float(model.buy_threshold),
                         float(model.sell_threshold), float(model.min_price), CACHE_VERSION,
                         workers=workers, engine=engine)
    fair, codes = cached.value
    pf = price_frame(*key.args())
    table = _MEMO.get(memo_key)
    if table is None:
        table = signals_frame(pf, fair, codes)
        for old in [k for k in _MEMO if k[0] == "signals"]:
            del _MEMO[old]
        _MEMO[memo_key] = table
    return table, cached.hit, pf, fair, codes


def history_step(key: HistoryKey) -> CachedResult:
    """The stored history of ``key`` as the long table.

    Its disk cache is the store's compacted history: a hit means it was already in
    step with the daily files.
    """
    started = time.perf_counter()
    store = PriceStore(key.store_root)
    _, up_to_date = store.compacted(key.source)
    history = _load_history(*key.args(), CACHE_VERSION)
    seconds = time.perf_counter() - started
    logger.info("history: %s (%.2fs)", "compacted history in step" if up_to_date else "compacted history updated",
                seconds)
    return CachedResult(value=history, hit=up_to_date, seconds=seconds)


def signals_step(key: HistoryKey, model: FairValueModel, *, workers: int = 1, engine: str = "loky") -> CachedResult:
    """Fair value, deviation and signal of every row of ``key`` under ``model``'s rules (cached)."""
    started = time.perf_counter()
    parallel.check(workers, engine)
    table, hit, *_ = _signals_table(key, model, workers, engine)
    return CachedResult(value=table, hit=hit, seconds=time.perf_counter() - started)


def train_step(key: HistoryKey, run_date: str, *, method: str = "auto", window: int = 7,
               buy_threshold: float = 0.10, sell_threshold: float = 0.15, min_price: float = 1.0,
               horizon_days: int = 7, target_return: float = 0.05, keep_days: int = 90,
               workers: int = 1, engine: str = "loky") -> CachedResult:
    """Choose and fit the model on the history slice ``key`` (cached)."""
    params.method("method", method)
    parallel.check(workers, engine)
    return cached_call(_train, *key.args(), run_date, method, int(window), float(buy_threshold),
                       float(sell_threshold), float(min_price), int(horizon_days), float(target_return),
                       int(keep_days), CACHE_VERSION, workers=workers, engine=engine)


def backtest_step(key: HistoryKey, model: FairValueModel, horizon_days: int = 7,
                  target_return: float = 0.05, *, workers: int = 1, engine: str = "loky") -> CachedResult:
    """Walk-forward backtest of ``model``'s rules on ``key`` (KPIs cached; scored rows rebuilt on use)."""
    started = time.perf_counter()
    parallel.check(workers, engine)
    horizon_days = params.positive_int("horizon_days", horizon_days, maximum=365)
    target_return = params.fraction("target_return", target_return)
    cached = cached_call(_backtest, *key.args(), model.method, int(model.window), float(model.buy_threshold),
                         float(model.sell_threshold), float(model.min_price), horizon_days, target_return,
                         CACHE_VERSION, workers=workers, engine=engine)
    result = cached.value

    def detail() -> tuple[pd.DataFrame, pd.DataFrame]:
        table, _, pf, fair, codes = _signals_table(key, model, 1, "loky")
        *_, forward_return, flags, _ = backtesting.score(pf, fair, codes, horizon_days, target_return,
                                                         min_price=model.min_price)
        return backtesting.scored_rows(table, pf.prices, fair, forward_return, flags, target_return)

    result.attach(detail)
    return CachedResult(value=result, hit=cached.hit, seconds=time.perf_counter() - started)
