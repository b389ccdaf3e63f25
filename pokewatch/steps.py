"""The pipeline's expensive steps, cached on disk and keyed on cheap fingerprints.

Notebooks call these instead of the underlying functions so a re-run on unchanged
data is near-instant. Each ``*_step`` returns a :class:`~pokewatch.caching.CachedResult`
(value, hit, seconds) for the run manifest. The private functions are what
joblib caches: every argument is a string or number (store location, source,
dates, the store's fingerprint, parameters, ``cache_version``), never a DataFrame.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from pokewatch import params
from pokewatch.backtest import BacktestResult, run_backtest
from pokewatch.caching import CACHE_VERSION, CachedResult, cached_call, memory
from pokewatch.errors import RunError
from pokewatch.model import FairValueModel
from pokewatch.signals import compute_signals
from pokewatch.store import PriceStore
from pokewatch.training import train

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HistoryKey:
    """Identifies a slice of stored history by content fingerprint, not by its rows."""

    store_root: str
    source: str
    start: str
    end: str
    fingerprint: str

    @classmethod
    def of(cls, source: str, start, end, store: PriceStore | None = None) -> "HistoryKey":
        store = store or PriceStore.default()
        start, end = f"{pd.Timestamp(start):%Y-%m-%d}", f"{pd.Timestamp(end):%Y-%m-%d}"
        return cls(str(store.root), source, start, end, store.fingerprint(source, start, end))

    def args(self) -> tuple:
        return (self.store_root, self.source, self.start, self.end, self.fingerprint)


def _load_history(store_root: str, source: str, start: str, end: str, fingerprint: str,
                  cache_version: str) -> pd.DataFrame:
    history = PriceStore(store_root).load(source, start, end)
    if history.empty:
        raise RunError(f"no {source!r} prices stored between {start} and {end} in {store_root}; "
                       "run the collect notebook (or scripts/run_pipeline.sh) first")
    return history


def _signals(store_root, source, start, end, fingerprint, method, window, buy_threshold, sell_threshold,
             min_price, cache_version) -> pd.DataFrame:
    history = memory().cache(_load_history)(store_root, source, start, end, fingerprint, cache_version)
    return compute_signals(history, method, window, buy_threshold, sell_threshold, min_price)


def _train(store_root, source, start, end, fingerprint, run_date, method, window, buy_threshold,
           sell_threshold, min_price, horizon_days, target_return, keep_days,
           cache_version) -> tuple[FairValueModel, pd.DataFrame]:
    history = memory().cache(_load_history)(store_root, source, start, end, fingerprint, cache_version)
    return train(history, run_date, method=method, window=window, buy_threshold=buy_threshold,
                 sell_threshold=sell_threshold, min_price=min_price, horizon_days=horizon_days,
                 target_return=target_return, keep_days=keep_days)


def _backtest(store_root, source, start, end, fingerprint, method, window, buy_threshold, sell_threshold,
              min_price, horizon_days, target_return, cache_version) -> BacktestResult:
    signals = memory().cache(_signals)(store_root, source, start, end, fingerprint, method, window,
                                       buy_threshold, sell_threshold, min_price, cache_version)
    return run_backtest(signals, horizon_days, target_return, min_price=min_price)


def history_step(key: HistoryKey) -> CachedResult:
    return cached_call(_load_history, *key.args(), CACHE_VERSION)


def signals_step(key: HistoryKey, model: FairValueModel, *, workers: int = 1, engine: str = "loky") -> CachedResult:
    return cached_call(_signals, *key.args(), model.method, model.window, model.buy_threshold,
                       model.sell_threshold, model.min_price, CACHE_VERSION)


def train_step(key: HistoryKey, run_date: str, *, method: str = "auto", window: int = 7,
               buy_threshold: float = 0.10, sell_threshold: float = 0.15, min_price: float = 1.0,
               horizon_days: int = 7, target_return: float = 0.05, keep_days: int = 90,
               workers: int = 1, engine: str = "loky") -> CachedResult:
    """Choose and fit the model on the history slice ``key`` (cached)."""
    params.method("method", method)
    return cached_call(_train, *key.args(), run_date, method, int(window), float(buy_threshold),
                       float(sell_threshold), float(min_price), int(horizon_days), float(target_return),
                       int(keep_days), CACHE_VERSION)


def backtest_step(key: HistoryKey, model: FairValueModel, horizon_days: int = 7,
                  target_return: float = 0.05, *, workers: int = 1, engine: str = "loky") -> CachedResult:
    return cached_call(_backtest, *key.args(), model.method, model.window, model.buy_threshold,
                       model.sell_threshold, model.min_price, int(horizon_days), float(target_return),
                       CACHE_VERSION)
