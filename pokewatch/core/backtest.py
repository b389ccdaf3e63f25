"""Scoring flags against what prices did next: precision, wrong-way rate, lift and their intervals.

What is scored. A flag raised on day t is judged by the price of the same series
exactly H calendar days later (``horizon_days``): a BUY is right when that price is
at least X higher (``target_return``), wrong when it is at least X lower, and flat
otherwise; a SELL the other way round. Rows without a price exactly H days later
are not scored. The scored universe is every row with an earlier observation, a
price of at least ``min_price`` and a fair value: the same rows for every rule, so
base rates (the share of all scored rows that rose, or fell, by X) are comparable.

Figures per kind (:func:`direction_figures`): flags, precision, wrong-way rate, base
rate, lift = precision / base rate (1.0 = no better than flagging at random) with a
95% bootstrap interval resampled by series (a card's days are not independent, so
whole series are resampled), and mean and median forward returns. The flat KPIs
(:func:`kpis_from_partials`) add recall, HOLD returns, the fair value's forecast
error (MAPE and RMSE of the value published on day t against the series' next
observed price, beside the naive "next price = today's price"), coverage, signal
rate and stability. (The next observation counts only when it comes within H days,
so nothing past a flag's horizon is ever looked at.)

This module only scores the fair values and codes it is given. Whether they are
honest, that is whether each day's flags used only what was known that day, is the
job of :mod:`pokewatch.core.walkforward`; an in-sample backtest is labelled as such by
whoever calls this.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd

from pokewatch.core import kernels, parallel, checks
from pokewatch.errors import RunError
from pokewatch.core.frame import PriceFrame, dates_of, day_numbers, series_bounds
from pokewatch.core.signals import SIGNAL_DTYPE, SIGNALS

logger = logging.getLogger(__name__)

#: Bootstrap replicates of the lift interval, and the seed that makes it repeatable.
BOOTSTRAP_REPLICATES = 1000
BOOTSTRAP_SEED = 20261201
def _kind_columns(kind: str) -> tuple[int, int, int, int, int]:
    """(flags, right, wrong, good rows, return sum) columns of ``kind`` in the kernels' tables."""
    if kind == "BUY":
        return (kernels.C_SCORED_SIG + 0, kernels.C_RIGHT_BUY, kernels.C_WRONG_BUY, kernels.C_GOOD_BUY,
                kernels.S_RETURN + 0)
    return (kernels.C_SCORED_SIG + 2, kernels.C_RIGHT_SELL, kernels.C_WRONG_SELL, kernels.C_GOOD_SELL,
            kernels.S_RETURN + 2)


def scoring_bounds(first, last) -> tuple[int, int]:
    """Day numbers of the first and last flag day to score (inclusive); None means unbounded."""
    start = int(day_numbers(pd.Series([pd.Timestamp(first)]))[0]) if first is not None else np.iinfo(np.int32).min
    end = int(day_numbers(pd.Series([pd.Timestamp(last)]))[0]) if last is not None else np.iinfo(np.int32).max
    return start, end


def scoring_window(days: np.ndarray, horizon_days: int, start=None, end=None) -> tuple[int, int, pd.Timestamp]:
    """First and last day number of flags to score, and the end as a timestamp.

    ``end`` defaults to the last day minus the horizon: later flags have no outcome yet.
    """
    last_date = pd.Timestamp(dates_of(np.array([days.max()]))[0])
    end_ts = pd.Timestamp(end) if end is not None else last_date - pd.Timedelta(days=horizon_days)
    start_day, end_day = scoring_bounds(start, end_ts)
    return start_day, end_day, end_ts


def lift_interval(flags: np.ndarray, right: np.ndarray, good: np.ndarray, scored: np.ndarray,
                  replicates: int = BOOTSTRAP_REPLICATES, seed: int = BOOTSTRAP_SEED) -> tuple[float, float] | None:
    """95% bootstrap interval of lift = (right / flags) / (good / scored), resampling series.

    Args:
        flags, right, good, scored: per-series counts (flags raised, flags that were
            right, rows with the kind's good outcome, scored rows).

    Returns:
        (low, high), the 2.5th and 97.5th percentiles of the replicates, or None when
        there are no flags or no good outcomes to resample.

    A Poisson bootstrap: in each replicate every series is drawn a Poisson(1) number of
    times. Series that raised flags are resampled exactly, pooled by identical counts
    (k such series together are drawn Poisson(k) times, the same distribution). The
    series without flags only move the base rate; their resampled sums of good and
    scored rows are drawn from the normal law with the Poisson bootstrap's exact mean
    and covariance, which over thousands of series is indistinguishable from drawing
    them one by one and keeps the cost independent of the catalogue's size. The
    pooled counts are drawn by inverting uniforms in one compiled pass
    (:func:`pokewatch.core.kernels.poisson_weighted_sums`: 0.24 s down to 0.10 s for the
    5,040 tuples of a 45,000-series year). A fixed seed makes the interval repeatable.
    """
    keep = np.asarray(scored) > 0
    counts = np.column_stack([np.asarray(a, np.int64)[keep] for a in (flags, right, good, scored)])
    if not len(counts) or counts[:, 0].sum() == 0 or counts[:, 2].sum() == 0:
        return None
    flagged = counts[:, 0] > 0
    tuples, multiplicity = np.unique(counts[flagged], axis=0, return_counts=True)
    tuples = tuples.astype(np.float64)
    quiet = counts[~flagged][:, 2:].astype(np.float64)            # (good, scored) of series without flags
    mean, cov = quiet.sum(axis=0), quiet.T @ quiet                # Poisson(1) weights: E = sum, Cov = sum x x'
    rng = np.random.default_rng(seed)
    rates = multiplicity.astype(np.float64)
    small = rates <= kernels.POISSON_TABLE_MAX
    draws = kernels.poisson_weighted_sums(rng.random((int(small.sum()), replicates)), rates[small],
                                          np.ascontiguousarray(tuples[small]))
    if not small.all():
        draws += rng.poisson(rates[~small], size=(replicates, int((~small).sum()))).astype(np.float64) @ tuples[~small]
    if len(quiet):
        draws[:, 2:] += rng.multivariate_normal(mean, cov, size=replicates, method="cholesky" if np.linalg.det(cov)
                                                > 0 else "svd")
    f, r, g, n = draws.T
    with np.errstate(invalid="ignore", divide="ignore"):
        values = (r / f) / (g / n)
    values = values[np.isfinite(values)]
    if not len(values):
        return None
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def direction_figures(counts: np.ndarray, sums: np.ndarray, kind: str, returns: np.ndarray | None = None,
                      interval: bool = True, median: float | None = None) -> dict:
    """Flags, precision, wrong-way rate, base rate, lift (with its interval) and returns of one kind.

    Args:
        counts, sums: per-series tables of :func:`pokewatch.core.kernels.backtest_partials`.
        kind: ``BUY`` or ``SELL``.
        returns: the forward returns of this kind's scored flags, for the median.
        median: that median, when the caller already has it (``returns`` is then not read).

    Returns:
        A JSON-ready dict; rates are None (never NaN) when they cannot be computed.
    """
    c_flags, c_right, c_wrong, c_good, s_return = _kind_columns(kind)
    total = counts.sum(axis=0) if len(counts) else np.zeros(len(kernels.COUNT_COLUMNS), np.int64)
    flags, right, wrong = int(total[c_flags]), int(total[c_right]), int(total[c_wrong])
    good, scored = int(total[c_good]), int(total[kernels.C_SCORED])
    base = good / scored if scored else None
    precision = right / flags if flags else None
    out = {"flags": flags, "right": right, "wrong": wrong, "flat": flags - right - wrong,
           "precision": precision, "wrong_way_rate": wrong / flags if flags else None,
           "base_rate": base, "lift": precision / base if precision is not None and base else None,
           "lift_low": None, "lift_high": None,
           "mean_forward_return": float(sums.sum(axis=0)[s_return] / flags) if flags else None,
           "median_forward_return": median if median is not None else
           float(np.median(returns)) if returns is not None and len(returns) else None}
    if interval and flags:
        bounds = lift_interval(counts[:, c_flags], counts[:, c_right], counts[:, c_good], counts[:, kernels.C_SCORED])
        if bounds is not None:
            out["lift_low"], out["lift_high"] = bounds
    return out


def _nan_to_none(value):
    return None if isinstance(value, float) and np.isnan(value) else value


def kpis_from_partials(counts: np.ndarray, sums: np.ndarray, horizon_days: int, target_return: float,
                       end_ts: pd.Timestamp | None = None) -> dict:
    """The flat KPI dict from per-series counts and sums (:func:`pokewatch.core.kernels.backtest_partials`).

    The tables are summed over series in series order, so any sharding of the series
    that keeps their order gives exactly the same KPIs. Values that cannot be
    computed are NaN here (JSON writers turn them into null).
    """
    nan = float("nan")
    first_day = int(counts[:, kernels.C_FIRST_DAY].min()) if len(counts) else kernels.NO_DAY
    last_day = int(counts[:, kernels.C_LAST_DAY].max()) if len(counts) else kernels.NO_LAST_DAY
    total = counts.sum(axis=0) if len(counts) else np.zeros(len(kernels.COUNT_COLUMNS), np.int64)
    sums_total = sums.sum(axis=0) if len(sums) else np.zeros(len(kernels.SUM_COLUMNS))
    c = dict(zip(kernels.COUNT_COLUMNS, (int(v) for v in total)))
    scored, covered, eligible, forecast = c["scored"], c["covered"], c["eligible"], c["forecast"]
    out = {"horizon_days": horizon_days, "target_return": target_return,
           "scored_from": f"{pd.Timestamp(dates_of(np.array([first_day]))[0]):%Y-%m-%d}"
           if first_day != kernels.NO_DAY else None,
           "scored_to": f"{pd.Timestamp(dates_of(np.array([last_day]))[0]):%Y-%m-%d}"
           if last_day != kernels.NO_LAST_DAY else (f"{end_ts:%Y-%m-%d}" if end_ts is not None else None),
           "rows_eligible": eligible, "rows_scored": scored, "series_scored": c["series_scored"]}
    for kind in ("BUY", "SELL"):
        figures = direction_figures(counts, sums, kind, interval=False)
        good = c[f"good_{kind.lower()}"]
        prefix = kind.lower()
        out.update({f"{prefix}_flags": figures["flags"],
                    f"{prefix}_precision": _none_to_nan(figures["precision"]),
                    f"{prefix}_wrong_way_rate": _none_to_nan(figures["wrong_way_rate"]),
                    f"{prefix}_recall": figures["right"] / good if good else nan,
                    f"{prefix}_base_rate": _none_to_nan(figures["base_rate"]),
                    f"{prefix}_lift": _none_to_nan(figures["lift"])})
    for i, name in enumerate(SIGNALS):
        n = c[f"scored_{name.lower()}"]
        out[f"mean_forward_return_{name.lower()}"] = float(sums_total[kernels.S_RETURN + i] / n) if n else nan
    shares = {name: c[f"covered_{name.lower()}"] / covered if covered else 0.0 for name in SIGNALS}
    out.update({
        "mape_fair": float(sums_total[kernels.S_APE_FAIR] / forecast) if forecast else nan,
        "mape_naive": float(sums_total[kernels.S_APE_NAIVE] / forecast) if forecast else nan,
        "rmse_fair": float(np.sqrt(sums_total[kernels.S_SQ_FAIR] / forecast)) if forecast else nan,
        "rmse_naive": float(np.sqrt(sums_total[kernels.S_SQ_NAIVE] / forecast)) if forecast else nan,
        "coverage": float(covered / eligible) if eligible else nan,
        "signal_rate": float((c["covered_buy"] + c["covered_sell"]) / covered) if covered else nan,
        "signal_flip_rate": float(c["flips"] / c["flip_pairs"]) if c["flip_pairs"] else nan,
        "share_buy": float(shares["BUY"]), "share_hold": float(shares["HOLD"]), "share_sell": float(shares["SELL"]),
    })
    return out


def _none_to_nan(value):
    return float("nan") if value is None else value


def by_signal_table(counts: np.ndarray, sums: np.ndarray, medians: list[float]) -> pd.DataFrame:
    """count, mean and median forward return per signal over the scored rows.

    Args:
        counts, sums: the per-series tables.
        medians: per signal (BUY, HOLD, SELL), the median forward return of its scored rows (NaN when none).
    """
    total = counts.sum(axis=0) if len(counts) else np.zeros(len(kernels.COUNT_COLUMNS), np.int64)
    sums = sums.sum(axis=0) if len(sums) else np.zeros(len(kernels.SUM_COLUMNS))
    rows = []
    for i in range(len(SIGNALS)):
        n = int(total[kernels.C_SCORED_SIG + i])
        rows.append({"count": n, "mean": sums[kernels.S_RETURN + i] / n if n else np.nan,
                     "median": float(medians[i]) if n else np.nan})
    return pd.DataFrame(rows, index=pd.CategoricalIndex(SIGNALS, dtype=SIGNAL_DTYPE, name="signal"))


def by_category(counts: np.ndarray, categories: np.ndarray, labels: list[str]) -> pd.DataFrame:
    """BUY/SELL figures per watchlist category from the per-series tables (no per-row table needed).

    Args:
        categories: per series, the index of its category in ``labels`` (-1 = none).
    """
    names = [*labels, "uncategorised"]
    index = np.where(categories < 0, len(labels), categories)
    per = np.zeros((len(names), counts.shape[1]), np.int64)
    np.add.at(per, index, counts)
    rows = []
    for i in np.flatnonzero(per[:, kernels.C_SCORED]):
        row = {"category": names[i], "rows": int(per[i, kernels.C_SCORED])}
        for kind in ("BUY", "SELL"):
            figures = direction_figures(per[i:i + 1], np.zeros((1, len(kernels.SUM_COLUMNS))), kind, interval=False)
            for key in ("flags", "precision", "wrong_way_rate", "base_rate", "lift"):
                row[f"{kind.lower()}_{key}"] = _none_to_nan(figures[key])
        rows.append(row)
    return pd.DataFrame(rows)


def series_categories(first_rows: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Per series, the code of its watchlist category and the category labels.

    ``first_rows`` holds one row per series, in series order (e.g. ``pf.rows(pf.starts)``).
    """
    if "category" not in first_rows.columns or not len(first_rows):
        return np.full(len(first_rows), -1, np.int64), []
    column = first_rows["category"]
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes, labels = column.cat.codes.to_numpy(), [str(c) for c in column.cat.categories]
    else:
        codes, uniques = pd.factorize(column)
        labels = [str(u) for u in uniques]
    return np.asarray(codes, np.int64), labels


class BacktestResult:
    """Scored KPIs, per-kind direction figures, and the per-row detail (built on first use).

    Attributes:
        kpis: the flat KPI dict (see :func:`kpis_from_partials`).
        direction: per kind (and HOLD returns), :func:`direction_figures`.
        by_signal: count, mean and median forward return per signal.
        scored: the scored rows of the signals table, with ``forward_return``,
            ``good_buy`` and ``good_sell``.
        errors: per forecast row, the absolute % error of fair value and of the naive forecast.
    """

    def __init__(self, kpis: dict, by_signal: pd.DataFrame | None = None, direction: dict | None = None,
                 category: pd.DataFrame | None = None, *, detail: Callable[[], tuple] | None = None) -> None:
        self.kpis = kpis
        self.direction = direction or {}
        self.by_signal = by_signal if by_signal is not None else pd.DataFrame()
        self.category = category if category is not None else pd.DataFrame()
        self._detail = detail
        self._scored = self._errors = None
        #: (forward_return, flags) per row, when this result was just computed (never cached).
        self.arrays: tuple[np.ndarray, np.ndarray] | None = None
        #: Per signal, box-plot statistics of the forward returns (matplotlib ``bxp`` form).
        self.return_boxes: dict = {}
        #: Histogram of the absolute forecast errors of fair value and of the naive last price.
        self.error_histogram: dict = {}

    def __repr__(self) -> str:
        return f"BacktestResult(kpis={self.kpis!r})"

    def __getstate__(self) -> dict:
        # The row-level detail is rebuilt from the signals, never cached on disk.
        return {"kpis": self.kpis, "by_signal": self.by_signal, "direction": self.direction,
                "category": self.category, "return_boxes": self.return_boxes,
                "error_histogram": self.error_histogram}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["kpis"], state["by_signal"], state.get("direction"), state.get("category"))
        self.return_boxes = state.get("return_boxes") or {}
        self.error_histogram = state.get("error_histogram") or {}

    def _materialize(self) -> None:
        if self._detail is None:
            raise RunError("this backtest result has no scored rows attached; recompute it with run_backtest")
        self._scored, self._errors = self._detail()
        self._detail = None

    @property
    def scored(self) -> pd.DataFrame:
        if self._scored is None:
            self._materialize()
        return self._scored

    @property
    def errors(self) -> pd.DataFrame:
        if self._errors is None:
            self._materialize()
        return self._errors

    def by_category(self) -> pd.DataFrame:
        """BUY/SELL precision, wrong-way rate and lift per watchlist category."""
        return self.category


#: Bin edges of :func:`error_histogram` (absolute error as a share of the next price; the last bin is open).
ERROR_BINS = np.linspace(0.0, 0.5, 51)


def return_box(values: np.ndarray, overwrite: bool = False) -> dict:
    """Box-plot statistics (5/25/50/75/95th percentiles, mean, n) of forward returns, for matplotlib's ``bxp``.

    ``overwrite=True`` lets the percentiles reorder ``values`` in place instead of copying them
    (the mean is taken first, in the given order).
    """
    if not len(values):
        return {"n": 0}
    mean = float(np.mean(values))
    q05, q25, q50, q75, q95 = np.percentile(values, [5, 25, 50, 75, 95], overwrite_input=overwrite)
    return {"n": int(len(values)), "whislo": float(q05), "q1": float(q25), "med": float(q50), "q3": float(q75),
            "whishi": float(q95), "mean": mean, "fliers": []}


def error_figures(bins: np.ndarray | None, kpis: dict) -> dict:
    """The forecast-error histogram of :func:`pokewatch.analysis.plots.error_distribution` from its bin counts.

    Args:
        bins: int (2, len(ERROR_BINS) - 1): per :data:`ERROR_BINS` bin, the rows whose
            |fair - next| / next (row 0) and |today - next| / next (row 1) fall in it,
            clipped to the last edge; None or all zero when no forecast was scored.
        kpis: the KPIs of the same rows; the MAPEs shown are theirs (one definition of MAPE).
    """
    if bins is None or not np.asarray(bins).sum():
        return {"edges": ERROR_BINS.tolist(), "fair": [], "naive": [], "mape_fair": None, "mape_naive": None}
    return {"edges": ERROR_BINS.tolist(), "fair": [int(v) for v in bins[0]], "naive": [int(v) for v in bins[1]],
            "mape_fair": _nan_to_none(kpis.get("mape_fair")), "mape_naive": _nan_to_none(kpis.get("mape_naive"))}


def error_histogram(prices: np.ndarray, fair: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """Bin counts (2, bins) of |fair - next| / next and |today - next| / next over the forecast rows (numpy)."""
    rows = np.flatnonzero(flags & kernels.ROW_FORECAST)
    following = prices[rows + 1]
    bins = np.zeros((2, len(ERROR_BINS) - 1), np.int64)
    for k, forecast in enumerate((fair[rows], prices[rows])):
        errors = np.abs(forecast - following) / following
        bins[k] = np.histogram(np.minimum(errors, ERROR_BINS[-1]), ERROR_BINS)[0]
    return bins


def signal_summaries(counts: np.ndarray, sums: np.ndarray, kpis: dict, values: list[np.ndarray]
                     ) -> tuple[dict, pd.DataFrame, dict]:
    """Direction figures, the per-signal table and the box-plot statistics from per-signal forward returns.

    Args:
        values: per signal (BUY, HOLD, SELL), the forward returns of its scored rows in
            row order, as fresh arrays: they are reordered in place once their mean is taken.

    Returns:
        (direction, by_signal, return_boxes), see :class:`BacktestResult`.
    """
    boxes = {name: return_box(v, overwrite=True) for name, v in zip(SIGNALS, values)}
    medians = [float(np.median(v, overwrite_input=True)) if len(v) else np.nan for v in values]
    direction = {kind: direction_figures(counts, sums, kind, median=medians[code] if len(values[code]) else None)
                 for kind, code in (("BUY", 0), ("SELL", 2))}
    direction["HOLD"] = {"flags": int(counts[:, kernels.C_SCORED_SIG + 1].sum()) if len(counts) else 0,
                         "mean_forward_return": _nan_to_none(kpis["mean_forward_return_hold"]),
                         "median_forward_return": medians[1] if len(values[1]) else None}
    return direction, by_signal_table(counts, sums, medians), boxes


def take_rows(frame: pd.DataFrame, rows: np.ndarray, **extra) -> pd.DataFrame:
    """``frame.iloc[rows]`` plus ``extra`` columns, taken column by column with plain numpy takes."""
    columns = {}
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            columns[name] = pd.Categorical.from_codes(column.cat.codes.to_numpy()[rows], dtype=column.dtype,
                                                      validate=False)
        elif isinstance(column.dtype, np.dtype):
            columns[name] = column.to_numpy()[rows]
        else:
            columns[name] = column.array.take(rows)
    columns.update(extra)
    return pd.DataFrame(columns, index=frame.index[rows], copy=False)


def scored_rows(frame: pd.DataFrame, prices: np.ndarray, fair: np.ndarray, forward_return: np.ndarray,
                flags: np.ndarray, target_return: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The scored rows and the forecast errors, built from the per-row kernel outputs."""
    picked = np.flatnonzero(flags & kernels.ROW_SCORED)
    returns = forward_return[picked]
    scored = take_rows(frame, picked, forward_return=returns, good_buy=returns >= target_return,
                       good_sell=returns <= -target_return)
    rows = np.flatnonzero(flags & kernels.ROW_FORECAST)
    following = prices[rows + 1]
    errors = pd.DataFrame({"abs_error_fair": np.abs(fair[rows] - following) / following,
                           "abs_error_naive": np.abs(prices[rows] - following) / following})
    return scored, errors


def score(pf: PriceFrame, fair: np.ndarray, codes: np.ndarray, horizon_days: int = 7, target_return: float = 0.05,
          start=None, end=None, min_price: float = 1.0, *, rows: bool = True, workers: int = 1,
          engine: str = "loky") -> tuple:
    """Backtest tables of one set of fair values and signal codes over ``pf``.

    Returns:
        (counts, sums, forward_return, flags, end_ts): the per-series tables, the
        per-row forward returns and flags (empty unless ``rows``), and the scoring end.
    """
    start_day, end_day, end_ts = scoring_window(pf.days, horizon_days, start, end)
    counts, sums, forward_return, flags = parallel.backtest_partials(
        pf, fair, codes, horizon_days, start_day, end_day, min_price, target_return, with_rows=rows,
        workers=workers, engine=engine)
    return counts, sums, forward_return, flags, end_ts


def backtest_arrays(pf: PriceFrame, fair: np.ndarray, codes: np.ndarray, horizon_days: int = 7,
                    target_return: float = 0.05, start=None, end=None, min_price: float = 1.0,
                    frame: pd.DataFrame | Callable[[], pd.DataFrame] | None = None, *, workers: int = 1,
                    engine: str = "loky") -> BacktestResult:
    """Score fair values and signal codes aligned with ``pf`` (see the module docstring).

    ``frame`` (or a function returning it) is the signals table the scored rows are
    taken from when they are first asked for; by default ``pf.frame``.

    Raises:
        ParameterError: bad horizon, target return or min_price.
    """
    horizon_days = checks.horizon_days(horizon_days)
    target_return = checks.fraction("target_return", target_return)
    min_price = checks.non_negative("min_price", min_price)
    fair = np.ascontiguousarray(fair, np.float64)
    codes = np.ascontiguousarray(codes, np.int8)
    counts, sums, forward_return, flags, end_ts = score(pf, fair, codes, horizon_days, target_return, start, end,
                                                        min_price, workers=workers, engine=engine)
    kpis = kpis_from_partials(counts, sums, horizon_days, target_return, end_ts)
    scored = (flags & kernels.ROW_SCORED).astype(bool)
    direction, by_signal, box = signal_summaries(counts, sums, kpis, [forward_return[scored & (codes == i)]
                                                                      for i in range(len(SIGNALS))])
    errors = error_figures(error_histogram(pf.prices, fair, flags), kpis)
    table = None

    def frame_of() -> pd.DataFrame:
        nonlocal table
        if table is None:
            table = frame() if callable(frame) else frame if frame is not None else pf.frame
        return table

    first_rows = frame_of().iloc[pf.starts] if frame is not None else pf.rows(pf.starts)
    category = by_category(counts, *series_categories(first_rows)) if len(pf) else pd.DataFrame()

    def detail() -> tuple[pd.DataFrame, pd.DataFrame]:
        return scored_rows(frame_of(), pf.prices, fair, forward_return, flags, target_return)

    result = BacktestResult(kpis, by_signal, direction, category, detail=detail)
    result.return_boxes, result.error_histogram = box, errors
    result.arrays = (forward_return, flags)
    return result


def run_backtest(signals: pd.DataFrame, horizon_days: int = 7, target_return: float = 0.05,
                 start=None, end=None, min_price: float = 1.0, *, workers: int = 1,
                 engine: str = "loky") -> BacktestResult:
    """Score the flags in ``signals`` (from :func:`pokewatch.core.signals.compute_signals`).

    :func:`backtest_arrays` on the table's columns: the scoring the pipeline's track
    record runs (:func:`pokewatch.core.walkforward.track_record`, whose one-pass path is
    tested equal to it). In-sample unless the signals were produced walk-forward: this
    scores whatever codes it is given.

    Args:
        signals: all rows with fair values and signals, sorted by series and date.
        horizon_days: H, calendar days between a flag and its outcome.
        target_return: X, the move that makes a flag right (or, the other way, wrong).
        start, end: flag dates to score; ``end`` defaults to the last date minus H.
        min_price: rows under this price are outside the scored universe.
        workers, engine: shards of cards (see :mod:`pokewatch.core.parallel`); the result is the same.

    Raises:
        ParameterError: bad horizon, target return or min_price.
    """
    if signals.empty:
        return BacktestResult({"rows_scored": 0, "horizon_days": horizon_days, "target_return": target_return},
                              detail=lambda: (signals, pd.DataFrame()))
    codes = signals["series"].to_numpy(np.int32)
    pf = PriceFrame(codes, day_numbers(signals["date"]),
                    np.ascontiguousarray(signals["market_price"].to_numpy(np.float64)), series_bounds(codes), signals)
    return backtest_arrays(pf, signals["fair_value"].to_numpy(np.float64), signal_codes(signals["signal"]),
                           horizon_days, target_return, start, end, min_price, signals, workers=workers, engine=engine)


def signal_codes(signal: pd.Series) -> np.ndarray:
    """Signal codes (0 BUY, 1 HOLD, 2 SELL; anything else 1) of a signal column."""
    if isinstance(signal.dtype, pd.CategoricalDtype) and list(signal.cat.categories) == list(SIGNALS):
        return signal.cat.codes.to_numpy(np.int8)
    codes = pd.Categorical(signal.astype("string"), categories=list(SIGNALS)).codes.astype(np.int8)
    return np.where(codes < 0, 1, codes).astype(np.int8)
