"""The track record: the flags PokeWatch would have raised each day, knowing only that day's past.

Why this module exists: a backtest of today's model over last month's days scores
flags that were chosen knowing how last month ended (in-sample). The track record
instead replays the pipeline as it runs: on every training day M (Mondays) a rule is
selected from flags whose outcomes lie before M (:func:`pokewatch.core.training.select`),
and that rule alone flags the days from M until the next training day. Each day's
signals use only prices up to that day. So a day's flags do not change when later
days arrive, and the figures are out of sample.

The scored window runs from the first training day that had something to learn
from (or the start of ``eval_days``, whichever is later) to the last day whose
outcome, H days on, is known. :class:`TrackRecord` carries the flat KPIs, the
direction figures per kind with bootstrap lift intervals, and one row per scored
BUY or SELL flag (``track_record.csv``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pokewatch.core import backtest as backtesting
from pokewatch.core import kernels, parallel, checks
from pokewatch.core.backtest import BacktestResult
from pokewatch.core.frame import PriceFrame, dates_of, day_numbers
from pokewatch.core.fair_value import kernel_arguments
from pokewatch.core.rules import BUY, HOLD, SELL, SIGNALS, thresholds
from pokewatch.core.signals import deviation
from pokewatch.core.training import TRAINING_WEEKDAY, Selection, training_date

logger = logging.getLogger(__name__)

#: Columns of ``track_record.csv``, in order.
TRACK_COLUMNS = ["date", "card_id", "variant", "signal", "market_price", "fair_value", "deviation",
                 "forward_price", "forward_return", "outcome", "model_trained_through"]


def training_dates(first_day, last_day, weekday: int = TRAINING_WEEKDAY) -> list[pd.Timestamp]:
    """Every training day whose selection flags some day in [first_day, last_day], oldest first."""
    start, end = training_date(first_day, weekday), training_date(last_day, weekday)
    return list(pd.date_range(start, end, freq="7D"))


def _week_tables(pf: PriceFrame, selections: list[Selection]) -> tuple[int, dict, np.ndarray]:
    """Per fair-value method in use, the ``kernels.WALK_COLUMNS`` table of the days its weeks' rules flag.

    Returns:
        (day0, {(method, window): (table, cuts)}, week): ``day0`` is the first
        training day's day number, ``week[d]`` the selection that flags day ``day0 + d``.
    """
    starts = day_numbers(pd.Series([pd.Timestamp(s.as_of) for s in selections]))
    day0 = int(starts[0])
    n_days = max(int(pf.days.max()) - day0 + 1, 0)
    week = np.searchsorted(starts, np.arange(day0, day0 + n_days), side="right") - 1
    rules = [s.rule for s in selections]
    tables = {}
    for method, window in dict.fromkeys((r.method, r.window) for r in rules if r is not None):
        table = np.zeros((n_days, len(kernels.WALK_COLUMNS)), np.int64)
        cuts = None
        for k, rule in enumerate(rules):
            if rule is None or (rule.method, rule.window) != (method, window):
                continue
            cuts = rule.cuts
            table[week == k] = (1, *rule.kernel_filters())
        tables[(method, window)] = (table, cuts)
    return day0, tables, starts


def assemble(pf: PriceFrame, selections: list[Selection], *, workers: int = 1, engine: str = "loky"
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fair value, signal code and selection index of every row, each day under its own week's rule.

    Rows before the first selection, or of a week whose selection has no rule, get no
    fair value (NaN) and HOLD; their selection index is -1. One compiled pass per
    fair-value method in use serves every week that uses it. (The track record itself
    scores the same flags without these per-row arrays: :func:`track_record`.)
    """
    n = len(pf)
    fair = np.full(n, np.nan)
    codes = np.full(n, HOLD, np.int8)
    which = np.full(n, -1, np.int64)
    if not selections or n == 0:
        return fair, codes, which
    day0, tables, starts = _week_tables(pf, selections)
    which = np.searchsorted(starts, pf.days, side="right") - 1
    for (method, window), (table, cuts) in tables.items():
        parallel.walk_arrays(pf, method, window, cuts, day0, table, fair, codes, workers=workers, engine=engine)
    return fair, codes, which


@dataclass
class TrackRecord:
    """The out-of-sample record of the flags, as figures, KPIs and rows.

    Attributes:
        figures: ``metrics.json``'s ``track_record``: the window, horizon and target,
            per kind (BUY, SELL) flags, precision, wrong-way rate, base rate, lift with
            its 95% interval, mean and median forward return, and HOLD's returns.
        backtest: the flat KPIs (``kpis``), per-signal returns and per-category figures.
        rows: one row per scored BUY or SELL flag (:data:`TRACK_COLUMNS`).
        selections: per training day, the rule and reason (in-sample figures labelled so).
    """

    figures: dict
    backtest: BacktestResult
    rows: pd.DataFrame = field(repr=False)
    selections: list[dict] = field(default_factory=list, repr=False)

    @property
    def kpis(self) -> dict:
        return self.backtest.kpis

    @property
    def scored(self) -> bool:
        """True when at least one flag (BUY or SELL) could be scored."""
        return bool(self.figures.get("BUY", {}).get("flags") or self.figures.get("SELL", {}).get("flags"))


def _empty_figures(horizon_days: int, target_return: float, why: str) -> dict:
    nothing = backtesting.direction_figures(np.zeros((0, len(kernels.COUNT_COLUMNS)), np.int64),
                                            np.zeros((0, len(kernels.SUM_COLUMNS))), "BUY")
    return {"scored_from": None, "scored_to": None, "first_flag_date": None, "last_flag_date": None,
            "horizon_days": horizon_days, "target_return": target_return, "rows_scored": 0,
            "BUY": dict(nothing), "SELL": dict(nothing),
            "HOLD": {"flags": 0, "mean_forward_return": None, "median_forward_return": None}, "note": why}


def track_record(pf: PriceFrame, selections: list[Selection], *, first_day, last_day, horizon_days: int = 7,
                 target_return: float = 0.05, min_price: float = 1.0, workers: int = 1,
                 engine: str = "loky") -> TrackRecord:
    """Score each day's walk-forward flags on flag days [first_day, last_day].

    Args:
        pf: the history, reaching back before ``first_day`` far enough for the rules'
            windows, and forward to the run date.
        selections: every training day's selection that flags a day in the window,
            oldest first (see :func:`training_dates`).
        first_day, last_day: flag days to score; ``last_day`` is normally the run date
            minus the horizon (later flags have no outcome yet).
    """
    learned = [s for s in selections if s.learned]
    start = pd.Timestamp(first_day)
    if learned:
        start = max(start, pd.Timestamp(learned[0].as_of))
    if not learned or start > pd.Timestamp(last_day) or len(pf) == 0:
        why = ("no training day in the window had flags with known outcomes to learn from yet" if not learned
               else f"no flag day from {start:%Y-%m-%d} has an outcome {horizon_days} days later yet")
        empty = BacktestResult({"rows_scored": 0, "horizon_days": horizon_days, "target_return": target_return},
                               detail=lambda: (pd.DataFrame(), pd.DataFrame()))
        return TrackRecord(_empty_figures(horizon_days, target_return, why), empty,
                           pd.DataFrame(columns=TRACK_COLUMNS), [s.summary() for s in selections])
    all_cuts = {s.rule.cuts for s in selections if s.rule is not None}
    # The compiled pass gates flags and the scored rows with one min_price; a record
    # scored on a different universe than the rules flagged takes the per-row path.
    one_universe = all(cut[2] == min_price for cut in all_cuts)
    if workers == 1 and len(all_cuts) <= 1 and one_universe:
        result, rows = _scored_in_one_pass(pf, selections, start, last_day, horizon_days, target_return, min_price)
    else:  # shards: per-row arrays, put back together (the same figures)
        fair, codes, which = assemble(pf, selections, workers=workers, engine=engine)
        result = backtesting.backtest_arrays(pf, fair, codes, horizon_days, target_return, start, last_day,
                                             min_price, workers=workers, engine=engine)
        rows = _flag_rows(pf, fair, codes, which, selections, *result.arrays, target_return)
    figures = {"scored_from": result.kpis.get("scored_from"), "scored_to": result.kpis.get("scored_to"),
               "first_flag_date": f"{rows['date'].min():%Y-%m-%d}" if len(rows) else None,
               "last_flag_date": f"{rows['date'].max():%Y-%m-%d}" if len(rows) else None,
               "horizon_days": horizon_days, "target_return": target_return,
               "rows_scored": result.kpis.get("rows_scored", 0), **result.direction}
    if not (figures["BUY"]["flags"] or figures["SELL"]["flags"]):
        figures["note"] = "no BUY or SELL flag was raised on the scored days"
    return TrackRecord(figures, result, rows, [s.summary() for s in selections])


def _scored_in_one_pass(pf: PriceFrame, selections: list[Selection], start, last_day, horizon_days: int,
                        target_return: float, min_price: float) -> tuple[BacktestResult, pd.DataFrame]:
    """The backtest of the walk-forward flags and ``track_record.csv`` in one compiled pass.

    See :func:`pokewatch.core.kernels.track_record_pass`.

    The same figures as :func:`assemble` followed by
    :func:`pokewatch.core.backtest.backtest_arrays`, without an array of every row: memory
    grows with the scored rows' forward returns (9 bytes each) and the flags.
    """
    horizon_days = checks.horizon_days(horizon_days)
    target_return = checks.fraction("target_return", target_return)
    min_price = checks.non_negative("min_price", min_price)
    day0, tables, _starts = _week_tables(pf, selections)
    keys = list(tables)
    cuts = next(iter(tables.values()))[1] if tables else thresholds()
    methods = np.array([kernel_arguments(m, w)[0] for m, w in keys], np.int64)
    windows = np.array([kernel_arguments(m, w)[1] for m, w in keys], np.int64)
    coms = np.array([kernel_arguments(m, w)[2] for m, w in keys], np.float64)
    stacked = (np.stack([tables[k][0] for k in keys]) if keys
               else np.zeros((0, 0, len(kernels.WALK_COLUMNS)), np.int64))
    start_day, end_day, end_ts = backtesting.scoring_window(pf.days, horizon_days, start, last_day)
    counts, sums, scored_return, scored_code, flagged, bins = kernels.track_record_pass(
        pf.prices, pf.low, pf.days, pf.bounds, methods, windows, coms, stacked, day0, cuts[0], cuts[1], min_price,
        horizon_days, start_day, end_day, target_return, backtesting.ERROR_BINS)
    kpis = backtesting.kpis_from_partials(counts, sums, horizon_days, target_return, end_ts)
    values = list(kernels.returns_by_code(scored_return, scored_code))
    del scored_return, scored_code
    direction, by_signal, boxes = backtesting.signal_summaries(counts, sums, kpis, values)
    del values
    category = backtesting.by_category(counts, *backtesting.series_categories(pf.rows(pf.starts)))
    result = BacktestResult(kpis, by_signal, direction, category)
    result.return_boxes, result.error_histogram = boxes, backtesting.error_figures(bins, kpis)
    rows = flagged[:, 0].astype(np.int64)
    return result, _rows_table(pf, selections, rows, flagged[:, 1], flagged[:, 2], flagged[:, 3].astype(np.int8),
                               target_return)


def _flag_rows(pf: PriceFrame, fair: np.ndarray, codes: np.ndarray, which: np.ndarray, selections: list[Selection],
               forward_return: np.ndarray, flags: np.ndarray, target_return: float) -> pd.DataFrame:
    """``track_record.csv`` from per-row arrays (the sharded path)."""
    picked = np.flatnonzero((flags & kernels.ROW_SCORED).astype(bool) & (codes != HOLD))
    return _rows_table(pf, selections, picked, fair[picked], forward_return[picked], codes[picked], target_return)


def _rows_table(pf: PriceFrame, selections: list[Selection], picked: np.ndarray, fair: np.ndarray, fwd: np.ndarray,
                code: np.ndarray, target_return: float) -> pd.DataFrame:
    """``track_record.csv``: one row per scored BUY or SELL flag (rows ``picked`` of ``pf``), oldest first."""
    if not len(picked):
        return pd.DataFrame(columns=TRACK_COLUMNS)
    frame = pf.rows(picked)
    price = pf.prices[picked]
    day = pf.days[picked]
    starts = day_numbers(pd.Series([pd.Timestamp(s.as_of) for s in selections]))
    which = np.searchsorted(starts, day, side="right") - 1
    right = np.where(code == BUY, fwd >= target_return, fwd <= -target_return)
    wrong = np.where(code == BUY, fwd <= -target_return, fwd >= target_return)
    through = np.array([s.trained_through for s in selections], dtype=object)
    rows = pd.DataFrame({
        "date": dates_of(day),
        "card_id": frame["card_id"].astype("string").to_numpy(),
        "variant": frame["variant"].astype("string").to_numpy(),
        "signal": np.array(SIGNALS, dtype=object)[code],
        "market_price": price, "fair_value": fair, "deviation": deviation(price, fair),
        "forward_price": price * (1 + fwd), "forward_return": fwd,
        "outcome": np.select([right, wrong], ["right", "wrong"], "flat"),
        "model_trained_through": through[which],
    })
    return rows.sort_values(["date", "signal", "card_id", "variant"], ignore_index=True)


def run_metrics(run_date: str, model, origin: str, record: TrackRecord) -> dict:
    """``metrics.json``: the rule, its in-sample selection, and the out-of-sample track record.

    ``selection`` holds the figures of the training window the rule was chosen on and is
    labelled in-sample; ``track_record`` and ``kpis`` are the walk-forward figures and
    are the only ones to present as a track record.
    """
    return {
        "run_date": run_date, "model": model.params, "rule": model.rule.describe(), "origin": origin,
        "selection": {"label": "in-sample: the training window the rule was chosen on", **model.selection},
        "track_record": {"label": "out-of-sample: each day's flags under the rule chosen before that day",
                         **record.figures},
        "kpis": record.kpis,
        "by_category": record.backtest.by_category().to_dict(orient="records"),
        "selections": record.selections,
    }


__all__ = ["TRACK_COLUMNS", "TrackRecord", "assemble", "track_record", "training_dates", "SELL"]
