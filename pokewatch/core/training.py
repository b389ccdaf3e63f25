"""Choosing the rule on a training window that lies wholly before the days it will flag.

Why this shape. A flag raised on day t is judged by the price H days later, so a
selection made on training day M may only use flags whose outcomes are known before
M: flag days ``[M - train_days, M - 1 - H]``. The rule chosen on M then flags the
days from M until the next training day (Mondays, the pipeline's cadence), and the
walk-forward backtest (:mod:`pokewatch.core.walkforward`) scores exactly those flags.
Nothing a selection sees lies on or after the first day it is used for.

What is chosen: a fair-value method and window (:data:`DEFAULT_CANDIDATES`, the candidate
windows of every method in :mod:`pokewatch.core.methods`, with the seed project's rule
kept as the origin rule to compare with) and, for BUY and SELL separately, the
confirmations a deviation needs (:mod:`pokewatch.core.rules`: an active market,
listings that agree, persistence, no one-off jump, a vol-scaled deviation). One
compiled pass per method counts every combination at once
(:func:`pokewatch.core.kernels.candidate_histogram`), on the same scored rows for every
candidate, so their base rates are equal.

How (documented, so the choice can be checked by hand):

* A kind's candidate qualifies when it raised at least ``min_flags`` scored flags,
  at least as many as the origin rule when the origin rule's flags of that kind were
  right more often than wrong (a rule must not buy precision by flagging less than a
  rule that already helps), its precision is at least
  :data:`EDGE_RATIO` times its wrong-way rate, and its lift is above 1.
* Its score is the net precision, shrunk towards zero for small samples:
  ``(right - wrong) / (flags + SHRINK_FLAGS)``. Precision net of the wrong-way rate
  rewards flags that point the right way, not volatility (a volatile card is
  often "right" and as often wrong).
* A method scores the sum of its best qualifying BUY and SELL scores; the best
  method wins (ties: lower forecast error, then the order of the candidates).
* The winner's kinds then face the edge gate: a 95% bootstrap interval of the lift,
  resampled by series. A kind whose interval contains 1, or that did not qualify, is
  switched off: it raises no flags until a later training day shows an edge, and
  the rule says why in one sentence.

Every figure here is in-sample for the training window; the track record is the
walk-forward backtest's.
"""
from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pokewatch.core import checks, methods, parallel
from pokewatch.core.backtest import direction_figures, scoring_bounds
from pokewatch.errors import ParameterError
from pokewatch.core.frame import PriceFrame, dates_of, day_numbers
from pokewatch.core.fair_value import kernel_arguments, resolved_window
from pokewatch.core.rules import ACTIVITY_LEVELS, N_PATTERNS, Filters, Rule, thresholds

logger = logging.getLogger(__name__)

#: Every (method, window) of the method registry, in its order (the tie-break order).
DEFAULT_CANDIDATES: tuple[tuple[str, int], ...] = methods.CANDIDATES
#: The fair value used while there is nothing to choose from yet (no flags are raised then).
DEFAULT_FAIR_VALUE = methods.DEFAULT
#: The seed project's rule: a 3-observation mean including today, no confirmation.
ORIGIN = methods.ORIGIN
#: Precision must reach this multiple of the wrong-way rate for a kind to be emitted.
EDGE_RATIO = 1.5
#: Flags of shrinkage in the score: a candidate is scored as if this many more flags had been flat.
SHRINK_FLAGS = 20
#: A selection learns only from a training window with at least this many flag days that have outcomes.
MIN_FLAG_DAYS = 7
#: Weekday of the training cadence (0 = Monday), shared with scripts/run_pipeline.sh's weekly training.
TRAINING_WEEKDAY = 0
KINDS = ("BUY", "SELL")

# Every (mask, level) filter combination, and which row patterns satisfy each.
_MASKS, _LEVELS = np.meshgrid(np.arange(16), np.arange(len(ACTIVITY_LEVELS)), indexing="ij")
COMBOS = np.column_stack([_MASKS.ravel(), _LEVELS.ravel()])
_PATTERNS = np.arange(N_PATTERNS)
MATCH = (((_PATTERNS[None, :] & COMBOS[:, :1]) == COMBOS[:, :1])
         & ((_PATTERNS[None, :] >> 4) >= COMBOS[:, 1:2])).astype(np.int64)


def training_date(run_date, weekday: int = TRAINING_WEEKDAY) -> pd.Timestamp:
    """The training day whose selection flags ``run_date``: the latest ``weekday`` on or before it."""
    day = pd.Timestamp(run_date).normalize()
    return day - pd.Timedelta(days=(day.day_of_week - weekday) % 7)


def training_window(as_of, train_days: int, horizon_days: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last flag day a selection made on ``as_of`` may learn from (outcomes before ``as_of``)."""
    as_of = pd.Timestamp(as_of).normalize()
    return as_of - pd.Timedelta(days=int(train_days)), as_of - pd.Timedelta(days=int(horizon_days) + 1)


@dataclass
class Selection:
    """What one training day chose, and the in-sample evidence for it.

    Attributes:
        as_of: the training day (YYYY-MM-DD); the rule flags from this day on.
        trained_through: the last day whose prices the selection saw (``as_of`` - 1).
        flag_days: (first, last) flag day of the training window, or None when empty.
        rule: the chosen rule, or None when there was nothing to learn from yet.
        reason: one paragraph saying what was chosen and why.
        table: per fair value and kind, its best confirmations in training, plus the origin
            rule's row (in-sample; see :func:`candidate_rows`).
        in_sample: per kind, the chosen rule's in-sample direction figures.
        origin: per kind, the origin rule's in-sample direction figures.
    """

    as_of: str
    trained_through: str
    flag_days: tuple[str, str] | None
    rule: Rule | None
    reason: str
    table: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    in_sample: dict = field(default_factory=dict)
    origin: dict = field(default_factory=dict)
    learned: bool = False
    #: Fingerprint of the stored days the selection read (set by :func:`pokewatch.run.steps.selection_step`).
    key: str = ""

    def __reduce__(self):
        # The disk cache pickles with joblib's pure-Python pickler (so that it can pull large
        # arrays out into memory-mappable files): a selection's few hundred small objects
        # took 3.6 ms to write and 1.3 ms to read that way, against 0.2 ms each as one
        # C-pickled blob, and a track record writes fifty-two of them. It holds no array
        # worth mapping.
        return (_selection_from, (pickle.dumps(self.__dict__, protocol=pickle.HIGHEST_PROTOCOL),))

    def summary(self) -> dict:
        """JSON-ready: the rule, the reason and the in-sample figures (labelled in-sample)."""
        return {"as_of": self.as_of, "trained_through": self.trained_through,
                "flag_days": list(self.flag_days) if self.flag_days else None,
                "rule": self.rule.as_dict() if self.rule else None, "reason": self.reason,
                "learned": self.learned, "in_sample": self.in_sample, "origin_in_sample": self.origin}


def _selection_from(state: bytes) -> Selection:
    selection = Selection.__new__(Selection)
    selection.__dict__.update(pickle.loads(state))
    return selection


@dataclass
class Histograms:
    """Per flag day, every candidate's outcome counts by confirmation pattern (one pass per method).

    Computed once over a history and summed over any training window inside it, so a
    year of weekly selections costs one pass per method, not one per week.
    """

    day0: int
    n_days: int
    per_method: dict
    horizon_days: int
    target_return: float

    def window(self, first_day, last_day) -> tuple[int, int]:
        """Row slice [lo, hi) of the per-day arrays for flag days [first_day, last_day]."""
        lo = int(day_numbers(pd.Series([pd.Timestamp(first_day)]))[0]) - self.day0
        hi = int(day_numbers(pd.Series([pd.Timestamp(last_day)]))[0]) - self.day0 + 1
        return max(lo, 0), min(max(hi, 0), self.n_days)


def histograms(pf: PriceFrame, candidates, first_day, last_day, *, buy_threshold: float = 0.10,
               sell_threshold: float = 0.15, min_price: float = 1.0, horizon_days: int = 7,
               target_return: float = 0.05, workers: int = 1, engine: str = "loky") -> Histograms:
    """:class:`Histograms` of ``candidates`` for flag days [first_day, last_day] of ``pf``."""
    cuts = thresholds(buy_threshold, sell_threshold, min_price)
    day0 = int(day_numbers(pd.Series([pd.Timestamp(first_day)]))[0])
    n_days = max(int((pd.Timestamp(last_day) - pd.Timestamp(first_day)).days) + 1, 0)
    per_method = {}
    for method, window in candidates:
        window = resolved_window(method, window)
        per_method[(method, window)] = parallel.candidate_histogram(
            pf, method, window, cuts, horizon_days, target_return, day0, n_days, workers=workers, engine=engine)
    return Histograms(day0, n_days, per_method, horizon_days, target_return)


@dataclass
class Counts:
    """Outcome counts of every candidate on one training window, as arrays indexed (method, kind, combo).

    Kind 0 is BUY and 1 SELL; combos are the rows of :data:`COMBOS` (only the first,
    "no confirmation", for a fixed method). The base rates are shared by every candidate.
    """

    methods: list[tuple[str, int]]
    right: np.ndarray
    wrong: np.ndarray
    flat: np.ndarray
    returns: np.ndarray
    mape: np.ndarray          # (method, 2): fair value, naive
    scored_rows: int
    good: np.ndarray          # (kind,): rows that rose / fell by the target
    flag_days: int

    @property
    def flags(self) -> np.ndarray:
        return self.right + self.wrong + self.flat

    def rates(self) -> dict[str, np.ndarray]:
        """precision, wrong-way rate, base rate, lift, mean return and score, shaped like the counts."""
        flags = self.flags.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(flags > 0, self.right / flags, np.nan)
            wrong_way = np.where(flags > 0, self.wrong / flags, np.nan)
            base = (self.good / self.scored_rows if self.scored_rows else np.full(2, np.nan))[None, :, None]
            return {"precision": precision, "wrong_way_rate": wrong_way,
                    "base_rate": np.broadcast_to(base, flags.shape), "lift": precision / base,
                    "mean_forward_return": np.where(flags > 0, self.returns / flags, np.nan),
                    "score": (self.right - self.wrong) / (flags + SHRINK_FLAGS)}

    def origin(self) -> int | None:
        """Index of the origin rule's method, or None when it is not a candidate."""
        return self.methods.index(ORIGIN) if ORIGIN in self.methods else None


def candidate_counts(hists: Histograms, first_day, last_day, *, filters: bool = True) -> Counts:
    """:class:`Counts` of every candidate in ``hists`` on flag days [first_day, last_day]."""
    lo, hi = hists.window(first_day, last_day)
    n_combos = len(COMBOS) if filters else 1
    match = MATCH[:n_combos]
    methods = list(hists.per_method)
    outcomes = np.zeros((len(methods), 2, n_combos, 3), np.int64)
    returns = np.zeros((len(methods), 2, n_combos))
    mape = np.full((len(methods), 2), np.nan)
    universe, flag_days = np.zeros(3, np.int64), 0
    for m, (hist, ret, per_day, errors) in enumerate(hists.per_method.values()):
        outcomes[m] = np.einsum("cp,kpo->kco", match, hist[lo:hi].sum(axis=0))
        returns[m] = ret[lo:hi].sum(axis=0) @ match.T
        err = errors[lo:hi].sum(axis=0)
        if err[4]:
            mape[m] = err[0] / err[4], err[1] / err[4]
        universe = per_day[lo:hi].sum(axis=0)
        flag_days = int((per_day[lo:hi, 0] > 0).sum())
    return Counts(methods, outcomes[..., 0], outcomes[..., 1], outcomes[..., 2], returns, mape, int(universe[0]),
                  universe[1:3].copy(), flag_days)


def _floors(counts: Counts, min_flags: int) -> np.ndarray:
    """Per kind, the flags a candidate must raise (see the module docstring).

    The origin rule's flag count when its flags of that kind were right more often than
    wrong (a replacement must keep that coverage), else ``min_flags``: where the origin
    rule points the wrong way more often than the right way, fewer flags are an
    improvement in themselves.
    """
    floors = np.full(2, min_flags, np.int64)
    o = counts.origin()
    if o is not None:
        for k in range(2):
            if counts.right[o, k, 0] > counts.wrong[o, k, 0]:
                floors[k] = max(min_flags, int(counts.flags[o, k, 0]))
    return floors


def _qualifies(counts: Counts, min_flags: int) -> np.ndarray:
    rates = counts.rates()
    with np.errstate(invalid="ignore"):
        ok = ((counts.flags >= _floors(counts, min_flags)[None, :, None])
              & (counts.right >= EDGE_RATIO * counts.wrong) & (rates["lift"] > 1))
    ok[:, 0, COMBOS[:ok.shape[2], 1] > 0] = False   # activity confirms SELL only (see pokewatch.core.rules)
    return ok


def _choose(counts: Counts, qualifies: np.ndarray) -> tuple[int, list[int | None]]:
    """Index of the chosen method and, per kind, its best qualifying combo (None when none qualifies)."""
    score = np.where(qualifies, counts.rates()["score"], -np.inf)
    best = score.argmax(axis=2)                                     # (method, kind)
    best_score = np.take_along_axis(score, best[..., None], axis=2)[..., 0]
    total = np.where(np.isfinite(best_score), np.maximum(best_score, 0.0), 0.0).sum(axis=1)
    mape = np.nan_to_num(counts.mape[:, 0], nan=np.inf)
    order = np.arange(len(counts.methods))
    if (total > 0).any():
        m = int(np.lexsort((order, mape, -total))[0])
    else:  # nothing qualified anywhere: the most accurate fair value, no flags
        m = int(np.lexsort((order, mape))[0])
    return m, [int(best[m, k]) if np.isfinite(best_score[m, k]) else None for k in range(2)]


def candidate_rows(counts: Counts, min_flags: int) -> pd.DataFrame:
    """Per fair value and kind its best confirmations (qualifying first), plus the origin rule: in-sample.

    The best qualifying combination where there is one, else the best-scoring one that
    raised flags, so a reader sees how far a kind fell short.
    """
    rates = counts.rates()
    qualifies = _qualifies(counts, min_flags)
    score = rates["score"]
    rows = []
    o = counts.origin()
    for m, (method, window) in enumerate(counts.methods):
        for k, kind in enumerate(KINDS):
            ranked = np.where(qualifies[m, k], score[m, k], -np.inf)
            c = int(ranked.argmax()) if np.isfinite(ranked).any() else \
                int(np.where(counts.flags[m, k] > 0, np.nan_to_num(score[m, k], nan=-np.inf), -np.inf).argmax())
            for combo, origin in [(c, False)] + ([(0, True)] if m == o else []):
                mask, level = (int(v) for v in COMBOS[combo])
                rows.append({"method": method, "window": window, "signal": kind, "origin": origin,
                             "filters": Filters.from_pattern(mask, level).describe(), "mask": mask, "level": level,
                             "qualifies": bool(qualifies[m, k, combo]), "flags": int(counts.flags[m, k, combo]),
                             "right": int(counts.right[m, k, combo]), "wrong": int(counts.wrong[m, k, combo]),
                             **{name: float(rates[name][m, k, combo]) for name in
                                ("precision", "wrong_way_rate", "base_rate", "lift", "mean_forward_return",
                                 "score")},
                             "mape_fair": float(counts.mape[m, 0]), "mape_naive": float(counts.mape[m, 1])})
    return pd.DataFrame(rows)


def _figures(counts: Counts, m: int, k: int, combo: int) -> dict:
    """Direction figures of one candidate from the counts (no interval: no per-series data here)."""
    rates = counts.rates()

    def value(name):
        v = float(rates[name][m, k, combo])
        return None if np.isnan(v) else v

    flags = int(counts.flags[m, k, combo])
    return {"flags": flags, "right": int(counts.right[m, k, combo]), "wrong": int(counts.wrong[m, k, combo]),
            "flat": int(counts.flat[m, k, combo]), "precision": value("precision"),
            "wrong_way_rate": value("wrong_way_rate"), "base_rate": value("base_rate"), "lift": value("lift"),
            "lift_low": None, "lift_high": None, "mean_forward_return": value("mean_forward_return"),
            "median_forward_return": None}


def select(pf: PriceFrame, as_of, *, method: str = "auto", window: int = 0, buy_threshold: float = 0.10,
           sell_threshold: float = 0.15, min_price: float = 1.0, horizon_days: int = 7,
           target_return: float = 0.05, train_days: int = 365, min_flags: int = 50,
           candidates=DEFAULT_CANDIDATES, workers: int = 1, engine: str = "loky",
           hists: Histograms | None = None, rule_passes: dict | None = None) -> Selection:
    """Choose the rule on training day ``as_of`` from ``pf`` (prices before ``as_of`` only are used).

    Args:
        pf: price history from the store's first day; rows on or after ``as_of`` are
            ignored by construction (flag days end H + 1 days before it, so do their
            outcomes). Starting from the first stored day makes a selection the same
            whichever later day it is computed on.
        method, window: ``auto`` chooses among ``candidates``; a fixed method is
            scored alone, without confirmations, and still faces the edge gate.
        hists: precomputed :func:`histograms` covering the training window (see
            :func:`select_many`).
        rule_passes: a dict shared by several selections of the same history: the fair
            values and codes of the last rule a selection scored, reused when the next
            one chose the same rule (consecutive weeks usually do).

    Raises:
        ParameterError: bad method, window, thresholds, horizon or training length.
    """
    horizon_days = checks.horizon_days(horizon_days)
    target_return = checks.fraction("target_return", target_return)
    train_days = checks.positive_int("train_days", train_days, maximum=3650)
    min_flags = checks.positive_int("min_flags", min_flags, maximum=1_000_000)
    checks.method("method", method)
    thresholds(buy_threshold, sell_threshold, min_price)
    as_of = pd.Timestamp(as_of).normalize()
    first, last = training_window(as_of, train_days, horizon_days)
    through = f"{as_of - pd.Timedelta(days=1):%Y-%m-%d}"
    fixed = method != "auto"
    candidates = ((method, resolved_window(method, window)),) if fixed else check_candidates(candidates)
    rule_base = dict(buy_threshold=buy_threshold, sell_threshold=sell_threshold, min_price=min_price)
    idle = Rule(*(candidates[0] if fixed else DEFAULT_FAIR_VALUE), buy=None, sell=None, **rule_base,
                reasons=dict.fromkeys(KINDS, "there was nothing to learn from yet"))
    if len(pf) == 0 or dates_of(np.array([pf.days.min()]))[0] > last:
        return Selection(f"{as_of:%Y-%m-%d}", through, None, idle,
                         f"nothing to learn from on {as_of:%Y-%m-%d}: no prices on flag days "
                         f"{first:%Y-%m-%d}..{last:%Y-%m-%d} with an outcome {horizon_days} days later; "
                         f"fair values use {idle.label} and no flags are raised")
    if hists is None or list(hists.per_method) != list(candidates):
        hists = histograms(pf, candidates, first, last, horizon_days=horizon_days, target_return=target_return,
                           workers=workers, engine=engine, **rule_base)
    counts = candidate_counts(hists, first, last, filters=not fixed)
    flag_days = (f"{first:%Y-%m-%d}", f"{last:%Y-%m-%d}")
    if counts.flag_days < MIN_FLAG_DAYS:
        return Selection(f"{as_of:%Y-%m-%d}", through, flag_days, idle,
                         f"not enough to learn from on {as_of:%Y-%m-%d}: {counts.flag_days} flag day(s) in "
                         f"{first:%Y-%m-%d}..{last:%Y-%m-%d} have a price {horizon_days} days later, and a "
                         f"selection needs {MIN_FLAG_DAYS}; fair values use {idle.label} and no flags are raised")
    qualifies = _qualifies(counts, min_flags)
    m, best = _choose(counts, qualifies)
    chosen_method, chosen_window = counts.methods[m]
    filters = {kind: (Filters.from_pattern(*(int(v) for v in COMBOS[c])) if c is not None else None)
               for kind, c in zip(KINDS, best)}
    rule = Rule(chosen_method, chosen_window, buy=filters["BUY"], sell=filters["SELL"], **rule_base)
    in_sample = _rule_figures(pf, rule, first, last, horizon_days, target_return, workers, engine, rule_passes)
    o = counts.origin()
    origin = {kind: _figures(counts, o, k, 0) for k, kind in enumerate(KINDS)} if o is not None else {}
    floors = _floors(counts, min_flags)
    reasons = {}
    for k, kind in enumerate(KINDS):
        figures = in_sample.get(kind, {})
        if filters[kind] is None:
            reasons[kind] = _off_reason(counts, m, k, int(floors[k]), min_flags)
        elif not (figures.get("lift_low") or 0) > 1:
            reasons[kind] = (f"its lift in training ({_interval(figures)}) was not reliably above 1, so its flags "
                             "were not better than chance")
            filters[kind] = None
        else:
            reasons[kind] = (f"in training, {figures['flags']:,} flags were right {figures['precision']:.0%} and "
                             f"wrong way {figures['wrong_way_rate']:.0%} of the time, lift "
                             f"{figures['lift']:.1f}x ({_interval(figures)})")
    rule = Rule(chosen_method, chosen_window, buy=filters["BUY"], sell=filters["SELL"], reasons=reasons, **rule_base)
    how = "fixed by the run parameters" if fixed else f"chosen out of {len(candidates)} fair values"
    reason = (f"{rule.label} {how} on {as_of:%Y-%m-%d}, from flags of {first:%Y-%m-%d}..{last:%Y-%m-%d} "
              f"(in-sample). {rule.describe()}")
    logger.debug(reason)
    return Selection(f"{as_of:%Y-%m-%d}", through, flag_days, rule, reason, candidate_rows(counts, min_flags),
                     in_sample, origin, learned=True)


def select_many(pf: PriceFrame, as_ofs, *, train_days: int = 365, horizon_days: int = 7,
                candidates=DEFAULT_CANDIDATES, method: str = "auto", window: int = 0, buy_threshold: float = 0.10,
                sell_threshold: float = 0.15, min_price: float = 1.0, target_return: float = 0.05, workers: int = 1,
                engine: str = "loky", **options) -> list[Selection]:
    """:func:`select` for several training days, sharing one histogram pass per method.

    The result is the same as selecting each day on its own: a flag day's counts do
    not depend on which training window they are summed into.
    """
    as_ofs = [pd.Timestamp(d).normalize() for d in as_ofs]
    if not as_ofs:
        return []
    windows = [training_window(d, train_days, horizon_days) for d in as_ofs]
    first, last = min(w[0] for w in windows), max(w[1] for w in windows)
    fixed = method != "auto"
    chosen = ((method, resolved_window(method, window)),) if fixed else check_candidates(candidates)
    rule_base = dict(buy_threshold=buy_threshold, sell_threshold=sell_threshold, min_price=min_price)
    hists = histograms(pf, chosen, first, last, horizon_days=horizon_days, target_return=target_return,
                       workers=workers, engine=engine, **rule_base) if len(pf) and last >= first else None
    rule_passes: dict = {}
    return [select(pf, d, train_days=train_days, horizon_days=horizon_days, candidates=candidates, method=method,
                   window=window, target_return=target_return, workers=workers, engine=engine, hists=hists,
                   rule_passes=rule_passes, **rule_base, **options) for d in as_ofs]


def _interval(figures: dict) -> str:
    low, high = figures.get("lift_low"), figures.get("lift_high")
    if low is None or high is None:
        return "no interval: too few flags"
    return f"95% interval {low:.1f}x to {high:.1f}x"


def _off_reason(counts: Counts, m: int, k: int, floor: int, min_flags: int) -> str:
    kind = KINDS[k]
    flags = counts.flags[m, k]
    if not len(flags) or flags.max() < min_flags:
        return f"no {kind} rule raised the {min_flags} scored flags needed to judge it in training"
    enough = flags >= floor
    if not enough.any():
        return f"no {kind} rule raised at least {floor:,} scored flags (the origin rule's count) in training"
    rates = counts.rates()
    net = np.where(enough, rates["precision"][m, k] - rates["wrong_way_rate"][m, k], -np.inf)
    c = int(np.nan_to_num(net, nan=-np.inf).argmax())
    return (f"its best {kind} rule in training was right {rates['precision'][m, k, c]:.0%} and wrong way "
            f"{rates['wrong_way_rate'][m, k, c]:.0%} of {int(flags[c]):,} flags; an edge needs precision of at "
            f"least {EDGE_RATIO:g}x the wrong-way rate")


def _rule_figures(pf: PriceFrame, rule: Rule, first, last, horizon_days: int, target_return: float, workers: int,
                  engine: str, rule_passes: dict | None = None) -> dict:
    """In-sample direction figures (with bootstrap lift intervals) of ``rule`` on flag days [first, last]."""
    if rule.buy is None and rule.sell is None:
        return {}
    held = rule_passes.get(rule) if rule_passes is not None else None
    if held is None:
        held = parallel.rule_arrays(pf, rule, workers=workers, engine=engine)
        if rule_passes is not None:
            rule_passes.clear()          # one rule's arrays at a time: they are as large as the history
            rule_passes[rule] = held
    fair, codes = held
    start_day, end_day = scoring_bounds(first, last)
    counts, sums, *_ = parallel.backtest_partials(pf, fair, codes, horizon_days, start_day, end_day, rule.min_price,
                                                  target_return, with_rows=False, workers=workers, engine=engine)
    return {kind: direction_figures(counts, sums, kind)
            for kind, filters in (("BUY", rule.buy), ("SELL", rule.sell)) if filters is not None}


def best_candidates(table: pd.DataFrame) -> pd.DataFrame:
    """One row per fair value with its best BUY and SELL confirmations (in-sample), best first.

    Args:
        table: a selection's :func:`candidate_rows`.
    """
    columns = ["method", "window", "score", "mape_fair", "mape_naive"] + [
        f"{kind.lower()}_{name}" for kind in KINDS
        for name in ("filters", "qualifies", "flags", "precision", "wrong_way_rate", "lift")]
    if table.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for (method, window), group in table[~table["origin"]].groupby(["method", "window"], sort=False):
        row = {"method": method, "window": window, "score": 0.0, "mape_fair": group["mape_fair"].iloc[0],
               "mape_naive": group["mape_naive"].iloc[0]}
        for kind in KINDS:
            best = group[group["signal"] == kind].iloc[0]
            if best["qualifies"]:
                row["score"] += max(float(best["score"]), 0.0)
            prefix = kind.lower()
            row.update({f"{prefix}_filters": best["filters"], f"{prefix}_qualifies": bool(best["qualifies"]),
                        f"{prefix}_flags": int(best["flags"]), f"{prefix}_precision": best["precision"],
                        f"{prefix}_wrong_way_rate": best["wrong_way_rate"], f"{prefix}_lift": best["lift"]})
        rows.append(row)
    return pd.DataFrame(rows, columns=columns).sort_values(["score", "mape_fair"], ascending=[False, True],
                                                           ignore_index=True)


def check_candidates(candidates) -> tuple[tuple[str, int], ...]:
    """Candidates as (method, window) with windows resolved.

    Raises:
        ParameterError: an unknown method or bad window.
    """
    out = []
    for item in candidates:
        if len(item) != 2:
            raise ParameterError(f"a candidate is (method, window), got {item!r}")
        method, window = str(item[0]), item[1]
        kernel_arguments(method, window)
        out.append((method, resolved_window(method, window)))
    return tuple(out)
