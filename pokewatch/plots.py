"""Plots for runs and reports, as matplotlib Figures that work with or without a display.

Figures are built with ``matplotlib.figure.Figure`` (not pyplot), so cron and
papermill need no GUI backend. Importing this module inside a Jupyter kernel
registers a PNG formatter for Figure, so a cell ending in ``fig`` shows the plot
inline and executed notebooks (and reports rendered from them) carry the image.
Every function takes the frames the package already produces and returns a
Figure; :func:`save` writes one atomically as PNG.
"""
from __future__ import annotations

import io
import logging
import sys
from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pokewatch import atomic

logger = logging.getLogger(__name__)

COLORS = {"BUY": "#1a9850", "HOLD": "#8c8c8c", "SELL": "#d73027"}


def save(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    return Path(path)


def price_with_band(series_signals: pd.DataFrame, buy_threshold: float, sell_threshold: float,
                    title: str = "", ax=None) -> Figure:
    """One series: market price, fair value, the HOLD band between the thresholds, and flags."""
    fig = ax.figure if ax is not None else Figure(figsize=(9, 3.6))
    ax = ax or fig.add_subplot()
    frame = series_signals.sort_values("date")
    ax.plot(frame["date"], frame["market_price"], color="#2c7bb6", lw=1.2, label="market price")
    ax.plot(frame["date"], frame["fair_value"], color="#444444", lw=1.0, ls="--", label="fair value")
    ax.fill_between(frame["date"], frame["fair_value"] * (1 - buy_threshold),
                    frame["fair_value"] * (1 + sell_threshold), color="#bbbbbb", alpha=0.35,
                    label="HOLD band")
    for flag in ("BUY", "SELL"):
        hits = frame[frame["signal"] == flag]
        ax.scatter(hits["date"], hits["market_price"], s=22, color=COLORS[flag], zorder=3,
                   marker="^" if flag == "BUY" else "v", label=flag)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(f"price ({frame['currency'].iloc[0] if 'currency' in frame and len(frame) else 'USD'})")
    ax.legend(fontsize=7, loc="upper left", ncols=5)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    return fig


def top_cards(signals: pd.DataFrame, today: pd.DataFrame, buy_threshold: float, sell_threshold: float,
              n: int = 4, days: int = 120) -> Figure:
    """Price and fair-value band for the day's strongest BUY and SELL candidates."""
    flagged = today[today["signal"].isin(["BUY", "SELL"])].copy()
    flagged["strength"] = flagged["deviation"].abs()
    picks = flagged.nlargest(n, "strength")
    if picks.empty:
        picks = today.nlargest(n, "market_price")
    fig = Figure(figsize=(10, 2.8 * max(len(picks), 1)))
    since = signals["date"].max() - pd.Timedelta(days=days)
    # Narrow to the picked cards first: string comparisons over millions of rows are slow.
    recent = signals[(signals["date"] >= since) & signals["card_id"].isin(picks["card_id"].astype(str).unique())]
    keys = ["card_id", "variant", "currency"]
    for i, (_, pick) in enumerate(picks.iterrows(), start=1):
        ax = fig.add_subplot(len(picks), 1, i)
        mask = np.logical_and.reduce([recent[k].astype(str).to_numpy() == str(pick[k]) for k in keys])
        label = f"{pick.get('name', '')} {pick['card_id']} ({pick['variant']}): {pick['signal']} " \
                f"{pick['deviation']:+.0%} vs fair"
        price_with_band(recent[mask], buy_threshold, sell_threshold, title=label, ax=ax)
    fig.tight_layout()
    return fig


def error_distribution(histogram: dict) -> Figure:
    """Absolute % error of the fair value vs the naive last price against the next price, as histograms.

    Args:
        histogram: :func:`pokewatch.backtest.error_histogram` (counts per bin; the last bin holds
            every error of 50% or more).
    """
    fig = Figure(figsize=(7, 3.6))
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
        ax.text(0.5, 0.5, "no forecast could be scored yet", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}" + ("+" if v >= 0.5 else ""))
    ax.set_xlabel("absolute error vs the next observed price (last bin: 50% or more)")
    ax.set_ylabel("observations")
    ax.set_title("forecast error of the fair value known each day (out of sample)", fontsize=10)
    ax.grid(alpha=0.3)
    return fig


def signal_distribution(today: pd.DataFrame) -> Figure:
    fig = Figure(figsize=(5, 3.2))
    ax = fig.add_subplot()
    counts = today["signal"].value_counts().reindex(["BUY", "HOLD", "SELL"], fill_value=0)
    bars = ax.bar(counts.index, counts.to_numpy(), color=[COLORS[s] for s in counts.index])
    ax.bar_label(bars)
    ax.set_ylabel("cards")
    ax.set_title("today's signals", fontsize=10)
    return fig


def forward_return_by_signal(boxes: dict, horizon_days: int) -> Figure:
    """Distribution of the H-day forward return after each signal (boxes 25-75%, whiskers 5-95%).

    Args:
        boxes: per signal, :func:`pokewatch.backtest.return_box` statistics.
    """
    fig = Figure(figsize=(6, 3.6))
    ax = fig.add_subplot()
    names = [s for s in ("BUY", "HOLD", "SELL") if (boxes.get(s) or {}).get("n")]
    if not names:
        ax.text(0.5, 0.5, "no flag has reached its horizon yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    stats = [{**boxes[s], "label": f"{s}\n(n={boxes[s]['n']:,})"} for s in names]
    box = ax.bxp(stats, showfliers=False, showmeans=True, patch_artist=True)
    for patch, s in zip(box["boxes"], names):
        patch.set_facecolor(COLORS[s])
        patch.set_alpha(0.5)
    ax.axhline(0, color="black", lw=0.8)
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:+.0%}")
    ax.set_ylabel(f"return {horizon_days} days later")
    ax.set_title("what prices did after each signal (out of sample)", fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    return fig


def candidate_scores(candidates: pd.DataFrame) -> Figure:
    """BUY and SELL lift of each fair value's best confirmations in training (in-sample), the winner on top."""
    fig = Figure(figsize=(8, 3.6))
    ax = fig.add_subplot()
    ax.set_title("candidates in training (in-sample)", fontsize=10)
    if candidates.empty:
        ax.text(0.5, 0.5, "nothing to compare yet: no flag of the training window has an outcome",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    labels = candidates["method"] + "(" + candidates["window"].astype(str) + ")"
    ax.barh(labels[::-1], candidates["buy_lift"][::-1], height=0.4, align="edge", color=COLORS["BUY"], label="BUY lift")
    ax.barh(labels[::-1], candidates["sell_lift"][::-1], height=-0.4, align="edge", color=COLORS["SELL"],
            label="SELL lift")
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_xlabel("lift (precision / base rate); 1.0 = chance")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="x")
    return fig


def kpi_trends(trends: pd.DataFrame) -> Figure:
    """BUY/SELL precision, lift and forecast error per run, oldest run on the left.

    Args:
        trends: one row per run date (see :func:`pokewatch.explore.kpi_trends`), with
            columns buy_precision, sell_precision, buy_lift, sell_lift, mape_fair, mape_naive.
    """
    fig = Figure(figsize=(10, 3.4))
    axes = fig.subplots(1, 3)
    if trends.empty:
        for ax in axes:
            ax.set_axis_off()
        axes[1].text(0.5, 0.5, "no finished runs yet", ha="center", va="center", fontsize=11)
        return fig
    dates = pd.to_datetime(trends.index)
    panels = (
        (axes[0], "precision", (("buy_precision", "BUY"), ("sell_precision", "SELL")), "{:.0%}"),
        (axes[1], "lift (1.0 = chance)", (("buy_lift", "BUY"), ("sell_lift", "SELL")), "{:.1f}"),
        (axes[2], "MAPE vs next price", (("mape_fair", "fair value"), ("mape_naive", "naive last price")),
         "{:.2%}"),
    )
    styles = {"BUY": COLORS["BUY"], "SELL": COLORS["SELL"], "fair value": "#2c7bb6",
              "naive last price": "#fdae61"}
    for ax, title, lines, fmt in panels:
        for column, label in lines:
            if column in trends:
                ax.plot(dates, trends[column], marker="o", ms=3, lw=1.2, color=styles[label], label=label)
        ax.set_title(title, fontsize=10)
        ax.yaxis.set_major_formatter(lambda v, _, fmt=fmt: fmt.format(v))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[1].axhline(1.0, color="black", lw=0.8)
    _date_axis(axes, dates)
    fig.autofmt_xdate()
    fig.tight_layout()
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


def portfolio_value(value: pd.DataFrame) -> Figure:
    """A portfolio's market value against what it cost, per currency, over time.

    Args:
        value: rows of date, currency, value and cost (see :func:`pokewatch.portfolio.value_over_time`).
    """
    fig = Figure(figsize=(9, 3.4))
    ax = fig.add_subplot()
    if value.empty:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no portfolio", ha="center", va="center", fontsize=11)
        return fig
    for currency, part in value.groupby("currency", sort=True):
        part = part.sort_values("date")
        ax.plot(part["date"], part["value"], lw=1.4, color="#2c7bb6", label=f"market value ({currency})")
        ax.plot(part["date"], part["cost"], lw=1.0, ls="--", color="#444444", label=f"cost ({currency})")
        ax.fill_between(part["date"], part["cost"], part["value"], where=part["value"] >= part["cost"],
                        color=COLORS["BUY"], alpha=0.15, interpolate=True)
        ax.fill_between(part["date"], part["cost"], part["value"], where=part["value"] < part["cost"],
                        color=COLORS["SELL"], alpha=0.15, interpolate=True)
    ax.set_ylabel("value")
    ax.set_title("portfolio value vs cost", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    _date_axis([ax], pd.DatetimeIndex(value["date"]))
    fig.autofmt_xdate()
    return fig


def to_png(fig: Figure, dpi: int = 100) -> bytes:
    """A Figure as PNG bytes (for embedding in pages and notebook outputs)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def _show_figures_inline() -> None:
    """Let IPython display a returned Figure as a PNG.

    Figures built without pyplot never activate the inline backend, so a notebook cell
    ending in ``fig`` would show ``<Figure size ...>`` and executed notebooks (and the
    HTML reports rendered from them) would carry no image. Registering a PNG formatter
    for :class:`Figure` fixes that wherever this module is imported inside a kernel.
    """
    ipython = sys.modules.get("IPython")  # a kernel has imported it already; never import it here
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None and hasattr(shell, "display_formatter"):
        shell.display_formatter.formatters["image/png"].for_type(Figure, to_png)


_show_figures_inline()
