"""Plots for runs and reports, as matplotlib Figures that work with or without a display.

Figures are built with ``matplotlib.figure.Figure`` (not pyplot), so cron and
papermill need no GUI backend; :mod:`pokewatch.run.display` makes a kernel show a
returned Figure inline (as PNG), so executed notebooks and the reports
rendered from them carry the image. Importing this module changes nothing.
Every function takes the frames the package already produces and returns a
Figure, or None when there is nothing to plot (no portfolio, no finished run, no card
above ``min_price``): a page then says so in one line (:func:`show`) instead of
showing an empty frame. :func:`save` writes a Figure atomically as PNG;
:class:`Drawing` does it for several in a forked process while the notebook goes on.

What every plot has: a title that says what it shows, labelled axes with units,
percent axes where the values are shares, axes that start at zero where a share is
plotted, and constrained layout so labels never overlap. No function reads files:
the data comes in as arguments.
"""
from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from pokewatch import atomic
from pokewatch.run import display, forked

logger = logging.getLogger(__name__)

COLORS = {"BUY": "#1a9850", "HOLD": "#8c8c8c", "SELL": "#d73027"}


#: PNGs :func:`save` wrote, by figure, so :func:`show` need not draw the same figure again.
_SAVED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass(frozen=True, repr=False)
class Png:
    """A picture already drawn: a notebook shows these PNG bytes as they are."""

    data: bytes

    def _repr_png_(self) -> bytes:
        return self.data

    def __repr__(self) -> str:   # the notebook's text/plain beside the image: never the bytes
        return f"<PNG image, {len(self.data) / 1024:,.0f} kB>"


def save(fig: Figure | None, path: str | Path, dpi: int = display.DPI, png: bytes | None = None) -> Path | None:
    """Write ``fig`` to ``path`` as PNG, atomically; None (nothing to plot) writes no file and returns None.

    The PNG is remembered for :func:`show`: drawing a figure (constrained layout,
    every tick label) is most of a plot's cost, and the pipeline's notebooks save each
    figure and then show it. ``png`` is the figure already drawn (by :class:`Drawing`);
    without it the figure is drawn here.
    """
    if fig is None:
        logger.info("nothing to plot for %s; no file written", Path(path).name)
        return None
    png = png or display.to_png(fig, dpi)
    _SAVED[fig] = png
    return atomic.write_bytes(path, png)


#: Seconds :meth:`Drawing.wait` gives the drawing process before it draws the figures itself.
DRAWING_TIMEOUT = 120.0


class Drawing:
    """Figures being drawn as PNG in a forked process while this one goes on; :meth:`wait` saves them.

    Why: drawing holds the GIL (about 0.9 s for the evaluate notebook's four figures at
    45,000 series), and so do the tables the notebook writes meanwhile; a forked child
    (:class:`pokewatch.run.forked.Forked`) draws them on the other core. Change no
    figure between starting and :meth:`wait`: the child draws them as they were. Where
    fork is not available, or the child fails or stays silent for
    :data:`DRAWING_TIMEOUT` seconds, :meth:`wait` draws the missing figures here, so
    the files are the same whichever way they were drawn.
    """

    def __init__(self, figures: dict[str, Figure | None], paths: dict[str, str | Path], dpi: int = display.DPI):
        self.figures, self.paths, self.dpi = dict(figures), {k: Path(v) for k, v in paths.items()}, dpi
        todo = {name: fig for name, fig in self.figures.items() if fig is not None}
        self._child = forked.Forked(_draw_all, todo, dpi, name="the drawing process") if todo else None

    def wait(self) -> dict[str, Path | None]:
        """Write every figure (None writes nothing) as :func:`save` would; returns name -> path written."""
        pngs = self._child.result(DRAWING_TIMEOUT, {}) if self._child is not None else {}
        return {name: save(fig, self.paths[name], self.dpi, png=pngs.get(name)) for name, fig in self.figures.items()}


def _draw_all(figures: dict[str, Figure], dpi: int) -> dict[str, bytes]:
    return {name: display.to_png(fig, dpi) for name, fig in figures.items()}


def show(fig: Figure | None, empty: str = "None today."):
    """What a notebook cell returns for a plot: the figure, or one line of text when there was nothing to plot.

    A figure :func:`save` wrote is shown from the bytes it wrote (so change a figure
    before saving it, not after); any other is returned as it is and drawn by the
    kernel. Plot functions here return None instead of a blank figure when their input
    is empty; a report then says so in one line (``empty``) rather than showing a
    frame with "no data" in it.
    """
    if fig is not None:
        saved = _SAVED.get(fig)
        return Png(saved) if saved is not None else fig
    from pokewatch.analysis.tables import Note

    return Note(empty)


def _currency_label(frame: pd.DataFrame) -> str:
    currencies = sorted(set(frame["currency"].astype(str))) if "currency" in frame and len(frame) else ["USD"]
    return ", ".join(currencies)


def _money_axis(ax, axis: str = "y") -> None:
    """Thousands separated; cents only when the axis stays under 100 (every tick alike)."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    limits = ax.get_ylim if axis == "y" else ax.get_xlim
    target.set_major_formatter(lambda v, _: f"{v:,.0f}" if max(map(abs, limits())) >= 100 else f"{v:,.2f}")


def _percent_axis(ax, axis: str = "y", decimals: int | None = None, signed: bool = False) -> None:
    target = ax.yaxis if axis == "y" else ax.xaxis
    if signed:
        target.set_major_formatter(lambda v, _: f"{v:+.0%}" if round(v, 6) else "0%")
    else:
        target.set_major_formatter(PercentFormatter(1.0, decimals=decimals))


def _plain_log_labels(axis) -> None:
    """Log-axis ticks as plain counts (1, 10, 1,000), no minor labels.

    matplotlib's default labels a log axis ``$10^{3}$``, in mathtext; building the
    mathtext parser costs about 0.3 s the first time a process draws one, and "1,000
    observations" reads better anyway.
    """
    from matplotlib.ticker import NullFormatter  # noqa: PLC0415 - beside the one log axis that needs it

    axis.set_major_formatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}")
    axis.set_minor_formatter(NullFormatter())


def price_with_band(series_signals: pd.DataFrame, buy_threshold: float, sell_threshold: float,
                    title: str = "", ax=None) -> Figure:
    """One series: market price, fair value, the HOLD band between the thresholds, and flags.

    Days without a fair value (before the model's window) show the market price only.
    """
    fig = ax.figure if ax is not None else Figure(figsize=(9, 3.6), layout="constrained")
    ax = ax or fig.add_subplot()
    frame = series_signals.sort_values("date")
    ax.plot(frame["date"], frame["market_price"], color="#2c7bb6", lw=1.2, label="market price")
    if "fair_value" in frame and frame["fair_value"].notna().any():
        ax.plot(frame["date"], frame["fair_value"], color="#444444", lw=1.0, ls="--", label="fair value")
        ax.fill_between(frame["date"], frame["fair_value"] * (1 - buy_threshold),
                        frame["fair_value"] * (1 + sell_threshold), color="#bbbbbb", alpha=0.35,
                        label=f"HOLD band (-{buy_threshold:.0%} to +{sell_threshold:.0%})")
    if "signal" in frame:
        for flag in ("BUY", "SELL"):
            hits = frame[frame["signal"] == flag]
            if len(hits):
                ax.scatter(hits["date"], hits["market_price"], s=22, color=COLORS[flag], zorder=3,
                           marker="^" if flag == "BUY" else "v", label=flag)
    ax.set_title(title or "market price and fair value", fontsize=10, loc="left")
    ax.set_ylabel(f"price ({_currency_label(frame)})")
    ax.set_xlabel("date")
    _money_axis(ax)
    ax.legend(fontsize=7, loc="best", ncols=2, framealpha=0.85)
    ax.grid(alpha=0.3)
    if len(frame):
        _date_axis([ax], pd.DatetimeIndex(frame["date"]))
    return fig


def _pick_label(pick: pd.Series) -> str:
    from pokewatch.analysis.tables import card_labels, money, pct

    name = card_labels(pick.to_frame().T).iloc[0]
    where = f"{pick.get('set_name')}, " if isinstance(pick.get("set_name"), str) else ""
    return (f"{name} ({where}{pick['variant']}): {pick['signal']}, {money(pick['market_price'], pick['currency'])}, "
            f"{pct(pick['deviation'], signed=True)} vs fair value")


def top_cards(history: pd.DataFrame, today: pd.DataFrame, buy_threshold: float, sell_threshold: float,
              min_price: float = 1.0, n: int = 4) -> Figure | None:
    """Price, fair value and HOLD band of the day's flagged cards, topped up to ``n`` with the nearest to a flag.

    The cards are :func:`pokewatch.analysis.candidates.top_candidates`: every flagged card first
    (strongest first), then the cards above ``min_price`` furthest from their fair
    value, so a quiet day shows the cards to watch instead of one cheap card, and no
    card is picked only for being expensive.

    Args:
        history: the price history to draw, one row per series and day with card_id,
            variant, currency, date and market_price, and fair_value and signal where
            known (e.g. the evaluate step's signals over the whole stored history, a
            :class:`~pokewatch.core.signals.SignalHistory` that reads only the picked cards).
            Each picked card is drawn over every day it has here.
        today: the day's signals (``signals.csv``).
        min_price: cards under this price are never picked.
        n: how many cards.

    Returns:
        One panel per card, or None when no card is at least ``min_price``.
    """
    from pokewatch.analysis.candidates import top_candidates
    from pokewatch.core.frame import history_of_cards

    picks = top_candidates(today, min_price, n)
    if picks.empty:
        return None
    keys = ["card_id", "variant", "currency"]
    # Narrow to the picked cards first: string comparisons over millions of rows are slow.
    mine = history_of_cards(history, picks["card_id"])
    fig = Figure(figsize=(10, 2.9 * len(picks)), layout="constrained")
    axes = fig.subplots(len(picks), 1, squeeze=False)[:, 0]
    for ax, (_, pick) in zip(axes, picks.iterrows()):  # one panel per picked card (at most n)
        mask = np.logical_and.reduce([mine[k].astype(str).to_numpy() == str(pick[k]) for k in keys])
        price_with_band(mine[mask], buy_threshold, sell_threshold, title=_pick_label(pick), ax=ax)
    fig.suptitle("Today's flagged cards, topped up with those nearest a flag", fontsize=11)
    return fig


def error_distribution(histogram: dict) -> Figure | None:
    """Absolute % error of the fair value vs the naive last price against the next price, as histograms.

    Args:
        histogram: :func:`pokewatch.core.backtest.error_histogram` (counts per bin; the last bin holds
            every error of 50% or more).
    """
    fig = Figure(figsize=(7, 3.6), layout="constrained")
    ax = fig.add_subplot()
    edges = np.asarray(histogram.get("edges") or [0.0, 0.5])
    drawn = False
    for key, color, label in (("fair", "#2c7bb6", "fair value"), ("naive", "#fdae61", "naive last price")):
        counts = histogram.get(key) or []
        if len(counts):
            mape = histogram.get(f"mape_{key}")
            ax.stairs(counts, edges, fill=True, alpha=0.5, color=color,
                      label=f"{label} (MAPE {mape:.1%})" if mape is not None else label)
            drawn = True
    if not drawn:
        return None
    ax.set_yscale("log")
    _plain_log_labels(ax.yaxis)
    ax.legend(fontsize=8, frameon=False)
    _percent_axis(ax, "x", decimals=0)
    ax.set_xlim(0, edges[-1])
    ax.set_xlabel(f"absolute error vs the next observed price (errors above {edges[-1]:.0%} counted at "
                  f"{edges[-1]:.0%})")
    ax.set_ylabel("observations (log scale)")
    ax.set_title("How far the fair value known each day was from the next price (out of sample)", fontsize=10,
                 loc="left")
    ax.grid(alpha=0.3)
    return fig


def signal_distribution(today: pd.DataFrame) -> Figure:
    """How many cards tracked are BUY, HOLD and SELL today, as labelled bars."""
    from pokewatch.analysis.explore import cards_tracked
    fig = Figure(figsize=(5, 3.2), layout="constrained")
    ax = fig.add_subplot()
    counts = today["signal"].value_counts().reindex(["BUY", "HOLD", "SELL"], fill_value=0)
    bars = ax.bar(counts.index, counts.to_numpy(), color=[COLORS[s] for s in counts.index])
    ax.bar_label(bars, labels=[f"{v:,}" for v in counts.to_numpy()], padding=2, fontsize=9)
    ax.set_ylim(0, max(1, counts.max()) * 1.18)  # room for the labels under the title
    ax.set_ylabel("cards tracked")
    ax.set_xlabel("today's signal")
    ax.set_title(f"Today's signals ({cards_tracked(today):,} cards tracked)", fontsize=10, loc="left")
    return fig


def forward_return_by_signal(boxes: dict, horizon_days: int) -> Figure | None:
    """Distribution of the H-day forward return after each signal (boxes 25-75%, whiskers 5-95%).

    Args:
        boxes: per signal, :func:`pokewatch.core.backtest.return_box` statistics.
    """
    fig = Figure(figsize=(6, 3.6), layout="constrained")
    ax = fig.add_subplot()
    names = [s for s in ("BUY", "HOLD", "SELL") if (boxes.get(s) or {}).get("n")]
    if not names:
        return None
    stats = [{**boxes[s], "label": f"{s}\n(n={boxes[s]['n']:,})"} for s in names]
    box = ax.bxp(stats, showfliers=False, showmeans=True, patch_artist=True)
    for patch, s in zip(box["boxes"], names):
        patch.set_facecolor(COLORS[s])
        patch.set_alpha(0.5)
    ax.axhline(0, color="black", lw=0.8)
    _percent_axis(ax, signed=True)
    ax.set_ylabel(f"price change {horizon_days} days later")
    ax.set_xlabel("signal on the day (n = flags scored; box 25-75%, whiskers 5-95%, triangle the mean)")
    ax.set_title(f"What happened {horizon_days} days after each signal (out of sample)", fontsize=10, loc="left")
    ax.grid(alpha=0.3, axis="y")
    return fig


def candidate_scores(candidates: pd.DataFrame) -> Figure | None:
    """BUY and SELL lift of each fair value's best confirmations in training (in-sample), the winner on top."""
    fig = Figure(figsize=(8, 3.6), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title("candidates in training (in-sample)", fontsize=10)
    if candidates.empty:
        return None
    labels = candidates["method"] + "(" + candidates["window"].astype(str) + ")"
    ax.barh(labels[::-1], candidates["buy_lift"][::-1], height=0.4, align="edge", color=COLORS["BUY"], label="BUY lift")
    ax.barh(labels[::-1], candidates["sell_lift"][::-1], height=-0.4, align="edge", color=COLORS["SELL"],
            label="SELL lift")
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_xlim(left=0)
    ax.set_xlabel("lift (precision / base rate); 1.0 = chance")
    ax.set_ylabel("fair-value rule (window in days)")
    ax.set_title("Training candidates, the chosen one on top", fontsize=10, loc="left")
    ax.legend(fontsize=8, frameon=False)
    ax.grid(alpha=0.3, axis="x")
    return fig


def kpi_trends(trends: pd.DataFrame, source: str | None = None) -> Figure | None:
    """BUY/SELL precision, lift and forecast error per run of one source, oldest run on the left.

    Every axis starts at zero, so day-to-day noise in a share (a MAPE of 0.95% against
    0.97%) does not look like a trend.

    Args:
        trends: one row per run date (see :func:`pokewatch.analysis.explore.kpi_trends`), with
            columns buy_precision, sell_precision, buy_lift, sell_lift, mape_fair, mape_naive.
        source: the source the runs are from, for the title.

    Returns:
        The figure, or None when there are no finished runs.
    """
    if trends.empty:
        return None
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    axes = fig.subplots(1, 3)
    dates = pd.to_datetime(trends.index)
    panels = (
        (axes[0], "precision (share of flags right)", (("buy_precision", "BUY"), ("sell_precision", "SELL")), True),
        (axes[1], "lift (1.0 = chance)", (("buy_lift", "BUY"), ("sell_lift", "SELL")), False),
        (axes[2], "MAPE vs the next price", (("mape_fair", "fair value"), ("mape_naive", "naive last price")),
         True),
    )
    styles = {"BUY": COLORS["BUY"], "SELL": COLORS["SELL"], "fair value": "#2c7bb6",
              "naive last price": "#fdae61"}
    for ax, title, lines, share in panels:
        top = 0.0
        for column, label in lines:
            if column in trends and trends[column].notna().any():
                ax.plot(dates, trends[column], marker="o", ms=3, lw=1.2, color=styles[label], label=label)
                top = max(top, float(trends[column].max()))
        ax.set_title(title, fontsize=10)
        ax.set_ylim(0, (top or 1.0) * 1.15)
        if share:
            _percent_axis(ax)
        ax.set_xlabel("run date")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, frameon=False, loc="lower left")
    axes[1].axhline(1.0, color="black", lw=0.8)
    _date_axis(axes, dates)
    for ax in axes:
        ax.tick_params(axis="x", labelrotation=30)
    fig.suptitle(f"KPIs across runs{f' on {source}' if source else ''} ({len(trends)} run(s))", fontsize=11)
    return fig


def _date_axis(axes, dates: pd.DatetimeIndex) -> None:
    """Whole days on the x axis, with a day's margin (one run alone must not span years)."""
    span = (dates.max() - dates.min()).days if len(dates) else 0
    pad = pd.Timedelta(days=max(1, span // 20))
    for ax in axes:
        ax.set_xlim(dates.min() - pad, dates.max() + pad)
        if span <= 60:
            ax.xaxis.set_major_locator(mdates.DayLocator(interval=max(1, (span + 2) // 6)))
        else:
            ax.xaxis.set_major_locator(mdates.AutoDateLocator(maxticks=8))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d" if span > 60 else "%m-%d"))


def portfolio_value(value: pd.DataFrame) -> Figure | None:
    """A portfolio's market value against what it cost, per currency, over time.

    Args:
        value: rows of date, currency, value and cost (see :func:`pokewatch.analysis.portfolio.value_over_time`).

    Returns:
        The figure, or None when no portfolio was valued.
    """
    if value.empty:
        return None
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    ax = fig.add_subplot()
    for currency, part in value.groupby("currency", sort=True):
        part = part.sort_values("date")
        ax.plot(part["date"], part["value"], lw=1.4, color="#2c7bb6", label=f"market value ({currency})")
        ax.plot(part["date"], part["cost"], lw=1.0, ls="--", color="#444444", label=f"cost ({currency})")
        ax.fill_between(part["date"], part["cost"], part["value"], where=part["value"] >= part["cost"],
                        color=COLORS["BUY"], alpha=0.15, interpolate=True)
        ax.fill_between(part["date"], part["cost"], part["value"], where=part["value"] < part["cost"],
                        color=COLORS["SELL"], alpha=0.15, interpolate=True)
    ax.set_ylabel(f"market value ({_currency_label(value)})")
    ax.set_xlabel("date")
    _money_axis(ax)
    ax.set_ylim(bottom=0)
    ax.set_title("Portfolio: market value against what it cost", fontsize=10, loc="left")
    ax.legend(fontsize=8, loc="upper left", frameon=False)
    ax.grid(alpha=0.3)
    _date_axis([ax], pd.DatetimeIndex(value["date"]))
    return fig
