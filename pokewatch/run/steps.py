"""The pipeline's expensive steps, cached on disk and keyed on cheap fingerprints.

Notebooks call these instead of the underlying functions so a re-run on unchanged
data is near-instant. Each ``*_step`` returns a :class:`~pokewatch.run.caching.CachedResult`
(value, hit, seconds) for the run manifest. The private functions are what joblib
caches: every argument in the key is a string or number (store location, source,
dates, the store's fingerprint of exactly the days the step reads, parameters,
``cache_version``), never a DataFrame.

What is cached, and why:

* each training day's selection (:func:`selection_step`), keyed on the fingerprint
  of the days it reads (all before that training day). Past training days' keys never
  change once their days are stored;
* the list of every training day's selection the track record replays
  (:func:`replay_selections`), keyed on the days before the last of them: a daily run
  reads one fingerprint and one entry instead of one per week, and only a new week
  (or a re-stored old day) looks the selections up one by one;
* the track record (:func:`track_record_step`): small (figures, KPIs, one row per
  scored flag, plot statistics), keyed on the evaluated days and the selections.

Not cached on disk, because recomputing is cheaper than writing and reading the
result: today's fair value, deviation and signal code of every row (one compiled
pass) and the fitted model (that pass plus a few array writes). They are memoized in
the process, so the evaluate notebook's steps share one pass. The history itself has
its own on-disk cache keyed on the same fingerprint: the store's compacted history,
which maps in milliseconds.

``workers`` and ``engine`` shard the per-series work (:mod:`pokewatch.core.parallel`).
They are not part of any cache key: the results are the same whatever they are.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import asdict, dataclass

import pandas as pd

from pokewatch import config
from pokewatch.core import parallel, checks
from pokewatch.run.caching import CACHE_VERSION, CachedResult, bound_cache, cached_call, memorized, memory
from pokewatch.errors import RunError
from pokewatch.core.frame import PriceFrame
from pokewatch.core.model import FairValueModel
from pokewatch.core.rules import Rule
from pokewatch.core.signals import SignalHistory
from pokewatch.data.store import PriceStore
from pokewatch.core.training import Selection, select, select_many, training_date
from pokewatch.core.walkforward import TrackRecord, track_record, training_dates

logger = logging.getLogger(__name__)

#: The price frame and signals table of the last key used in this process, so the
#: evaluate notebook's steps share one copy.
_MEMO: dict = {}
#: Appended to :data:`~pokewatch.run.caching.CACHE_VERSION` in the track record's key: bumped when
#: only what the track record holds changed (2: the forecast-error histogram's MAPE is the KPIs';
#: 3: the lift interval's Poisson counts are drawn by inversion, so its bounds moved within their noise).
TRACK_RECORD_VERSION = "3"


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

    @classmethod
    def each(cls, source: str, start, ends, store: PriceStore | None = None) -> list[HistoryKey]:
        """:meth:`of` for each of ``ends``, listing the store once."""
        store = store or PriceStore.default()
        start = f"{pd.Timestamp(start):%Y-%m-%d}"
        ends = [f"{pd.Timestamp(end):%Y-%m-%d}" for end in ends]
        return [cls(str(store.root), source, start, end, fingerprint)
                for end, fingerprint in zip(ends, store.fingerprints(source, start, ends))]

    def args(self) -> tuple:
        return (self.store_root, self.source, self.start, self.end, self.fingerprint)


@dataclass(frozen=True)
class TrainingSpec:
    """Everything a selection depends on besides the prices: the train notebook's rule parameters."""

    method: str = "auto"
    window: int = 0
    buy_threshold: float = 0.10
    sell_threshold: float = 0.15
    min_price: float = 1.0
    horizon_days: int = 7
    target_return: float = 0.05
    train_days: int = 365
    min_flags: int = 50

    def __post_init__(self) -> None:
        checks.method("method", self.method)
        for name, maximum in (("horizon_days", 365), ("train_days", 3650), ("min_flags", 1_000_000)):
            object.__setattr__(self, name, checks.positive_int(name, getattr(self, name), maximum=maximum))
        object.__setattr__(self, "window", checks.non_negative_int("window", self.window, maximum=365))
        object.__setattr__(self, "target_return", checks.fraction("target_return", self.target_return))
        Rule(buy_threshold=self.buy_threshold, sell_threshold=self.sell_threshold, min_price=self.min_price)

    def args(self) -> tuple:
        return (self.method, int(self.window), float(self.buy_threshold), float(self.sell_threshold),
                float(self.min_price), int(self.horizon_days), float(self.target_return), int(self.train_days),
                int(self.min_flags))

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_parameters(cls, values) -> TrainingSpec:
        """The spec of the train notebook's (validated) parameters."""
        values = values.model_dump() if hasattr(values, "model_dump") else dict(values)
        return cls(**{name: values[name] for name in cls.__dataclass_fields__ if name in values})

    @classmethod
    def of(cls, model: FairValueModel) -> TrainingSpec:
        """The spec a model was trained with (recorded in its selection)."""
        spec = (model.selection or {}).get("spec")
        if not spec:
            raise RunError("this model records no training parameters (it predates the walk-forward track "
                           "record); train it again with the train notebook or scripts/run_pipeline.sh --force-train")
        return cls(**spec)


def _no_prices(store_root: str, source: str, start: str, end: str) -> RunError:
    return RunError(f"no {source!r} prices stored between {start} and {end} in {store_root}; "
                    "run the collect notebook (or scripts/run_pipeline.sh) first")


def price_frame(store_root: str, source: str, start: str, end: str, fingerprint: str, *,
                allow_empty: bool = False) -> PriceFrame:
    """The history slice as a :class:`PriceFrame` over the mapped compacted history (memoized).

    Raises:
        RunError: no prices in the slice (unless ``allow_empty``).
    """
    memo_key = ("frame", store_root, source, start, end, fingerprint)
    pf = _MEMO.get(memo_key)
    if pf is None:
        pf = PriceStore(store_root).load_frame(source, start, end)
        if len(pf) == 0 and not allow_empty:
            raise _no_prices(store_root, source, start, end)
        for old in [k for k in _MEMO if k[0] == "frame"]:
            del _MEMO[old]
        _MEMO[memo_key] = pf
    return pf


# -- selections ------------------------------------------------------------------------------
#: Every step reads the stored history from its first day: a day's fair values and flags then
#: do not depend on which later day computed them.
HISTORY_START = "1970-01-01"


def history_key(source: str, end, store: PriceStore | None = None) -> HistoryKey:
    """The stored history of ``source`` from its first day to ``end``."""
    return HistoryKey.of(source, HISTORY_START, end, store)


def _select(store_root, source, start, end, fingerprint, as_of, method, window, buy_threshold, sell_threshold,
            min_price, horizon_days, target_return, train_days, min_flags, cache_version, history=None,
            precomputed=None, workers=1, engine="loky") -> Selection:
    """One training day's selection; ``precomputed`` lets a batch (:func:`training.select_many`) fill the cache."""
    if precomputed is not None:
        return precomputed
    pf = history if history is not None else PriceStore(store_root).load_frame(source, start, end)
    return select(pf, as_of, method=method, window=window, buy_threshold=buy_threshold,
                  sell_threshold=sell_threshold, min_price=min_price, horizon_days=horizon_days,
                  target_return=target_return, train_days=train_days, min_flags=min_flags, workers=workers,
                  engine=engine)


def _selection_key(source: str, as_of: pd.Timestamp, store: PriceStore | None) -> HistoryKey:
    """The stored days a training day's selection reads: every day before it."""
    return history_key(source, as_of - pd.Timedelta(days=1), store)


def _selection_keys(source: str, as_ofs: list[pd.Timestamp], store: PriceStore | None) -> list[HistoryKey]:
    """:func:`_selection_key` of each training day, listing the store once."""
    return HistoryKey.each(source, HISTORY_START, [d - pd.Timedelta(days=1) for d in as_ofs], store)


def selection_step(source: str, as_of, spec: TrainingSpec, store: PriceStore | None = None, *,
                   history: PriceFrame | None = None, workers: int = 1, engine: str = "loky") -> CachedResult:
    """The rule chosen on training day ``as_of`` (cached on the stored days before it).

    Args:
        history: the stored history from its first day, reaching at least to ``as_of`` - 1
            (read from the store when not given).
    """
    parallel.check(workers, engine)
    as_of = pd.Timestamp(as_of).normalize()
    key = _selection_key(source, as_of, store)
    result = cached_call(_select, *key.args(), f"{as_of:%Y-%m-%d}", *spec.args(), CACHE_VERSION, history=history,
                         workers=workers, engine=engine)
    result.value.key = key.fingerprint
    return result


def _replayed(store_root, source, start, end, fingerprint, as_ofs, method, window, buy_threshold, sell_threshold,
              min_price, horizon_days, target_return, train_days, min_flags, cache_version, history=None,
              precomputed=None, workers=1, engine="loky") -> list[Selection]:
    """Every selection of ``as_ofs``, keyed on the stored days before the last one (:func:`replay_selections`)."""
    if precomputed is not None:
        return precomputed
    spec = TrainingSpec(method, window, buy_threshold, sell_threshold, min_price, horizon_days, target_return,
                        train_days, min_flags)
    pf = history if history is not None else PriceStore(store_root).load_frame(source, start, end)
    return [r.value for r in _replay_each(source, [pd.Timestamp(d) for d in as_ofs], spec, pf,
                                          PriceStore(store_root), workers=workers, engine=engine)]


def replay_selections(source: str, as_ofs, spec: TrainingSpec, history: PriceFrame, store: PriceStore | None = None,
                      *, workers: int = 1, engine: str = "loky") -> list[CachedResult]:
    """Every training day's selection, from the cache where it is there and in one batch where not.

    The selections come without their candidate tables (``Selection.table`` is empty):
    the track record shows each week's rule and reason, and the table of a training day
    is in its own entry (:func:`selection_step`).

    Two levels: the whole list is one cache entry keyed on the stored days before the
    last training day (every selection reads only days before its own training day, so
    all of them are valid while those days are unchanged). A daily run therefore reads
    one fingerprint and one entry; only when a new training day joins the list, or an
    earlier day was re-stored, is each selection looked up on its own key, and the
    missing ones computed in one batch (:func:`pokewatch.core.training.select_many`).
    """
    as_ofs = sorted(pd.Timestamp(d).normalize() for d in as_ofs)
    if not as_ofs:
        return []
    started = time.perf_counter()
    last = _selection_key(source, as_ofs[-1], store)
    args = (*last.args(), tuple(f"{d:%Y-%m-%d}" for d in as_ofs), *spec.args(), CACHE_VERSION)
    cached = memorized(_replayed)
    if _in_cache(cached, *args):
        try:
            selections = cached(*args, history=history, workers=workers, engine=engine)
            seconds = (time.perf_counter() - started) / len(selections)
            return [CachedResult(value=s, hit=True, seconds=seconds) for s in selections]
        except Exception as exc:  # an unreadable entry: look each selection up on its own
            logger.warning("the replayed selections' cache entry was unreadable (%s); reading them one by one", exc)
    results = _replay_each(source, as_ofs, spec, history, store, workers=workers, engine=engine)
    for result in results:
        result.value = _without_table(result.value)
    try:
        cached.call(*args, precomputed=[r.value for r in results])
        memory().reduce_size(bytes_limit=config.CACHE_BYTES_LIMIT)
    except Exception as exc:  # caching must never fail a run
        logger.warning("could not cache the replayed selections: %s", exc)
    return results


def _without_table(selection: Selection) -> Selection:
    return dataclasses.replace(selection, table=pd.DataFrame())


def _replay_each(source: str, as_ofs: list[pd.Timestamp], spec: TrainingSpec, history: PriceFrame,
                 store: PriceStore | None, *, workers: int = 1, engine: str = "loky") -> list[CachedResult]:
    """Each selection from its own cache entry, the missing ones computed in one batch."""
    keys = _selection_keys(source, as_ofs, store)
    cached = memorized(_select)
    missing = [i for i, (d, key) in enumerate(zip(as_ofs, keys))
               if not _in_cache(cached, *key.args(), f"{d:%Y-%m-%d}", *spec.args(), CACHE_VERSION)]
    batch = dict(zip(missing, select_many(
        history, [as_ofs[i] for i in missing], method=spec.method, window=spec.window,
        buy_threshold=spec.buy_threshold, sell_threshold=spec.sell_threshold, min_price=spec.min_price,
        horizon_days=spec.horizon_days, target_return=spec.target_return, train_days=spec.train_days,
        min_flags=spec.min_flags, workers=workers, engine=engine))) if missing else {}
    results = []
    for i, (d, key) in enumerate(zip(as_ofs, keys)):
        result = cached_call(_select, *key.args(), f"{d:%Y-%m-%d}", *spec.args(), CACHE_VERSION,
                             precomputed=batch.get(i), workers=workers, engine=engine, bound=False)
        result.hit = i not in batch
        result.value.key = key.fingerprint
        results.append(result)
    bound_cache()
    return results


def _in_cache(cached, *args) -> bool:
    try:
        return bool(cached.check_call_in_cache(*args))
    except Exception:  # an unreadable entry is a miss
        return False


def train_step(key: HistoryKey, run_date, spec: TrainingSpec, *, keep_days: int = 90, stale_days: int = 2,
               workers: int = 1, engine: str = "loky") -> CachedResult:
    """The model for ``run_date``: its training day's selection, fitted on ``key``'s history.

    The training day is the latest Monday on or before ``run_date``
    (:func:`pokewatch.core.training.training_date`), so the rule is the one the
    walk-forward track record replays for this week, whenever training ran.

    Returns:
        CachedResult of (model, selection); ``hit`` says whether the selection came from the cache.
    """
    started = time.perf_counter()
    as_of = training_date(run_date)
    pf = price_frame(*key.args())
    chosen = selection_step(key.source, as_of, spec, PriceStore(key.store_root), history=pf, workers=workers,
                            engine=engine)
    model = cached_call(_fitted_model, *key.args(), f"{as_of:%Y-%m-%d}", f"{pd.Timestamp(run_date):%Y-%m-%d}",
                        *spec.args(), int(keep_days), int(stale_days), CACHE_VERSION, selection=chosen.value,
                        workers=workers, engine=engine).value
    return CachedResult(value=(model, chosen.value), hit=chosen.hit, seconds=time.perf_counter() - started)


def _fitted_model(store_root, source, start, end, fingerprint, as_of, run_date, method, window, buy_threshold,
                  sell_threshold, min_price, horizon_days, target_return, train_days, min_flags, keep_days,
                  stale_days, cache_version, selection=None, workers=1, engine="loky") -> FairValueModel:
    """The train step's model, cached on the history, training day and parameters that fix its selection.

    Why cached, when :func:`_rule_arrays` is not: refitting costs one compiled pass,
    and in a process that has computed nothing else it also costs importing the
    kernels (about 0.9 s, numba included); the model itself is small (its last
    ``keep_days`` of fair values). A re-run's train kernel then imports no kernel at all.
    """
    spec = TrainingSpec(method, window, buy_threshold, sell_threshold, min_price, horizon_days, target_return,
                        train_days, min_flags)
    key = HistoryKey(store_root, source, start, end, fingerprint)
    return fitted_model(selection, key, run_date, spec, keep_days=keep_days, stale_days=stale_days,
                        workers=workers, engine=engine)


def fitted_model(selection: Selection, key: HistoryKey, run_date, spec: TrainingSpec, *, keep_days: int = 90,
                 stale_days: int = 2, workers: int = 1, engine: str = "loky") -> FairValueModel:
    """A model with ``selection``'s rule, fitted on ``key``'s history through ``run_date``."""
    pf, fair, codes = _rule_arrays(key, selection.rule, workers, engine)
    model = FairValueModel(selection.rule, keep_days=keep_days, stale_days=stale_days, trained_on=selection.as_of,
                           selection={**selection.summary(), "spec": spec.as_dict()})
    return model.fit(pf, fair, codes, through=run_date)


# -- today's signals -------------------------------------------------------------------------
def _memo(kind: str, memo_key: tuple, build):
    """``build()`` memoized under ``memo_key``, keeping one entry of each ``kind``."""
    held = _MEMO.get((kind, *memo_key))
    if held is None:
        held = build()
        for old in [k for k in _MEMO if k[0] == kind]:
            del _MEMO[old]
        _MEMO[(kind, *memo_key)] = held
    return held


def _rule_arrays(key: HistoryKey, rule: Rule, workers: int, engine: str) -> tuple:
    """(price frame, fair, codes) of ``key`` under ``rule`` (memoized in this process).

    Not cached on disk: one compiled pass costs less than writing and reading its arrays
    (about 0.1 s against 0.7 s at 20,000 series x 730 days). No deviation array: the
    model does not need one, and the signals work theirs out for the rows they show.
    """
    def build():
        pf = price_frame(*key.args())
        return (pf, *parallel.rule_arrays(pf, rule, workers=workers, engine=engine))

    return _memo("rule", (*key.args(), rule), build)


def signals_step(key: HistoryKey, rule: Rule, *, workers: int = 1, engine: str = "loky") -> CachedResult:
    """Fair value, deviation and signal of every row of ``key`` under ``rule`` (never from the disk cache).

    Returns:
        CachedResult of :class:`~pokewatch.core.signals.SignalHistory`: the arrays, with the
        table built for the cards asked for (``of_cards``) or whole (``table()``).
    """
    started = time.perf_counter()
    parallel.check(workers, engine)
    pf, fair, codes = _rule_arrays(key, rule, workers, engine)
    history = _memo("signals", (*key.args(), rule), lambda: SignalHistory(pf, fair, codes))
    return CachedResult(value=history, hit=False, seconds=time.perf_counter() - started)


# -- the track record ------------------------------------------------------------------------
def evaluation_key(source: str, run_date, store: PriceStore | None = None) -> HistoryKey:
    """The history the evaluate notebook reads: every stored day up to the run date."""
    return history_key(source, pd.Timestamp(run_date).normalize(), store)


def _track_record(store_root, source, start, end, fingerprint, run_date, eval_days, selection_keys, horizon_days,
                  target_return, min_price, cache_version, selections=None, workers=1,
                  engine="loky") -> TrackRecord:
    pf = price_frame(store_root, source, start, end, fingerprint, allow_empty=True)
    run_date = pd.Timestamp(run_date)
    return track_record(pf, selections, first_day=run_date - pd.Timedelta(days=int(eval_days)),
                        last_day=run_date - pd.Timedelta(days=int(horizon_days)), horizon_days=horizon_days,
                        target_return=target_return, min_price=min_price, workers=workers, engine=engine)


def track_record_step(key: HistoryKey, run_date, eval_days: int, spec: TrainingSpec, *, workers: int = 1,
                      engine: str = "loky") -> CachedResult:
    """The walk-forward track record of the ``eval_days`` before ``run_date`` (see :mod:`pokewatch.core.walkforward`).

    Every training day in the window is replayed (each one cached on its own, the
    missing ones computed in one batch), and the record itself is cached on the
    evaluated days and the selections' keys.

    Returns:
        CachedResult of :class:`~pokewatch.core.walkforward.TrackRecord`; ``hit`` is True only
        when the record and every selection came from the cache.
    """
    started = time.perf_counter()
    parallel.check(workers, engine)
    eval_days = checks.positive_int("eval_days", eval_days, maximum=3650)
    run_date = pd.Timestamp(run_date).normalize()
    first = run_date - pd.Timedelta(days=eval_days)
    last = run_date - pd.Timedelta(days=spec.horizon_days)
    store = PriceStore(key.store_root)
    pf = price_frame(*key.args(), allow_empty=True)
    results = replay_selections(key.source, training_dates(first, max(first, last)), spec, pf, store,
                                workers=workers, engine=engine)
    selections = [r.value for r in results]
    keys = tuple(f"{s.as_of}:{s.key}" for s in selections)
    record = cached_call(_track_record, *key.args(), f"{run_date:%Y-%m-%d}", eval_days, keys, spec.horizon_days,
                         spec.target_return, spec.min_price, f"{CACHE_VERSION}+{TRACK_RECORD_VERSION}",
                         selections=selections, workers=workers, engine=engine)
    hit = record.hit and all(r.hit for r in results)
    learned = sum(r.value.learned for r in results)
    logger.info("track record: %d training day(s) replayed (%d from the cache), %d with something to learn from",
                len(results), sum(r.hit for r in results), learned)
    return CachedResult(value=record.value, hit=hit, seconds=time.perf_counter() - started)
