"""Plots say what they show: titles, labelled axes with units, percent axes, zero-based shares, a stable card set."""
from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import pytest

from pokewatch.analysis import plots, tables
from pokewatch.core.backtest import error_figures, error_histogram, return_box
from pokewatch.core.kernels import ROW_FORECAST

DAYS = pd.date_range("2026-01-01", periods=200, freq="D")


def today_of(rows: list[tuple]) -> pd.DataFrame:
    """A day's signals from (card_id, market_price, deviation, signal) tuples."""
    frame = pd.DataFrame(rows, columns=["card_id", "market_price", "deviation", "signal"])
    return frame.assign(variant="Normal", currency="USD", name=frame["card_id"].str.upper(), set_name="Base",
                        fair_value=frame["market_price"] / (1 + frame["deviation"]), date=DAYS[-1])


def history_of(today: pd.DataFrame) -> pd.DataFrame:
    """Every card of ``today`` at its price on each of :data:`DAYS`, fair value known only for the last 90."""
    frame = today[["card_id", "variant", "currency", "market_price"]].merge(pd.DataFrame({"date": DAYS}),
                                                                             how="cross")
    fair = frame["market_price"].where(frame["date"] > DAYS[-91])
    return frame.assign(fair_value=fair, signal="HOLD")


def _percent(formatter, value: float) -> str:
    return formatter(value, 0)


def test_the_card_plot_shows_every_flag_then_tops_up_with_the_largest_deviations_above_min_price():
    today = today_of([("flag-sell", 5.0, 0.20, "SELL"), ("penny", 0.30, -0.45, "HOLD"),
                      ("rich-quiet", 900.0, -0.001, "HOLD"), ("near-buy", 20.0, -0.09, "HOLD"),
                      ("near-sell", 12.0, 0.12, "HOLD"), ("flag-buy", 8.0, -0.11, "BUY")])
    fig = plots.top_cards(history_of(today), today, 0.10, 0.15, min_price=1.0, n=4)
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert [t.split(" ")[0] for t in titles] == ["FLAG-SELL", "FLAG-BUY", "NEAR-SELL", "NEAR-BUY"]
    assert "penny" not in " ".join(titles).lower() and "rich-quiet" not in " ".join(titles).lower()
    assert "SELL, $5.00, +20.0% vs fair value" in titles[0]
    first = fig.axes[0].get_lines()[0]
    assert len(first.get_xdata()) == len(DAYS), "each card over the whole history passed in"


def test_a_quiet_day_shows_the_cards_nearest_a_flag_not_the_most_valuable_and_never_minus_zero():
    today = today_of([("a", 900.0, -0.0004, "HOLD"), ("b", 10.0, 0.08, "HOLD"), ("c", 3.0, -0.06, "HOLD")])
    titles = [ax.get_title(loc="left") for ax in plots.top_cards(history_of(today), today, 0.1, 0.15, n=2).axes]
    assert [t[0] for t in titles] == ["B", "C"]
    label = plots._pick_label(today.iloc[0])
    assert "-0%" not in label and "+0.0% vs fair value" in label


def test_nothing_to_plot_is_one_line_of_text_not_a_blank_figure():
    assert plots.top_cards(pd.DataFrame(), today_of([("penny", 0.2, 0.5, "HOLD")]), 0.1, 0.15) is None
    assert plots.portfolio_value(pd.DataFrame(columns=["date", "currency", "value", "cost"])) is None
    assert plots.kpi_trends(pd.DataFrame()) is None
    note = plots.show(None, "No portfolio valued today.")
    assert isinstance(note, tables.Note) and note._repr_html_() == '<p class="pw-note">No portfolio valued today.</p>'
    assert plots.save(None, "unused.png") is None


def test_a_saved_figure_is_shown_from_the_bytes_it_wrote_with_a_short_text_form(tmp_path):
    fig = plots.signal_distribution(today_of([("a-1", 5.0, 0.0, "HOLD")]))
    path = plots.save(fig, tmp_path / "signals.png")
    shown = plots.show(fig)
    assert shown._repr_png_() == path.read_bytes()
    assert repr(shown).startswith("<PNG image, ") and len(repr(shown)) < 40
    unsaved = plots.signal_distribution(today_of([("a-1", 5.0, 0.0, "HOLD")]))
    assert plots.show(unsaved) is unsaved           # drawn by the kernel's formatter as before


def _two_figures() -> dict:
    return {"signals": plots.signal_distribution(today_of([("a-1", 5.0, 0.0, "HOLD"), ("b-2", 9.0, -0.2, "BUY")])),
            "nothing": None}


def test_figures_drawn_in_another_process_are_the_files_save_writes(tmp_path):
    figures = _two_figures()
    drawing = plots.Drawing(figures, {name: tmp_path / f"{name}.png" for name in figures})
    assert drawing._child.started
    written = drawing.wait()
    assert written["nothing"] is None and not (tmp_path / "nothing.png").exists()
    here = plots.save(_two_figures()["signals"], tmp_path / "here.png")
    assert written["signals"].read_bytes() == here.read_bytes()
    assert plots.show(figures["signals"])._repr_png_() == here.read_bytes()   # shown from the bytes written


class _FailsInAChild:
    """A figure that draws only in the process that made it, like one whose child crashed."""

    def __init__(self, fig):
        self.fig, self.pid = fig, os.getpid()

    def savefig(self, *args, **kwargs):
        if os.getpid() != self.pid:
            raise RuntimeError("drawing failed in the child")
        return self.fig.savefig(*args, **kwargs)


def test_a_figure_the_drawing_process_could_not_draw_is_drawn_here(tmp_path, monkeypatch, caplog):
    fig = _FailsInAChild(_two_figures()["signals"])
    written = plots.Drawing({"signals": fig}, {"signals": tmp_path / "signals.png"}).wait()
    assert written["signals"].read_bytes() == plots.display.to_png(fig.fig)

    monkeypatch.setattr(plots, "DRAWING_TIMEOUT", 0.0)   # a child that says nothing in time is not waited for
    monkeypatch.setattr(plots, "_draw_all", lambda figures, dpi: time.sleep(30))
    started = time.perf_counter()
    written = plots.Drawing({"signals": fig}, {"signals": tmp_path / "late.png"}).wait()
    assert written["signals"].read_bytes() == plots.display.to_png(fig.fig)
    assert time.perf_counter() - started < 10 and "sent nothing" in caplog.text


def test_the_error_histogram_has_a_percent_axis_that_says_where_it_is_capped():
    rng = np.random.default_rng(1)
    prices = np.round(rng.uniform(5, 10, 501), 2)
    rows = np.r_[np.full(500, ROW_FORECAST), 0].astype(np.uint8)   # each row forecasts the next
    bins = error_histogram(prices, prices * rng.uniform(0.3, 1.7, 501), rows)
    histogram = error_figures(bins, {"mape_fair": 0.2, "mape_naive": 0.01})
    ax = plots.error_distribution(histogram).axes[0]
    assert ax.get_title(loc="left") and ax.get_xlim() == (0, 0.5)
    assert _percent(ax.xaxis.get_major_formatter(), 0.5) == "50%"
    assert "above 50% counted at 50%" in ax.get_xlabel() and ax.get_ylabel().startswith("observations")
    assert ax.yaxis.get_major_formatter()(1000, 0) == "1,000"   # plain counts: no mathtext to parse


def test_signal_bars_leave_room_for_their_labels_under_the_title():
    today = today_of([("a", 5.0, 0.2, "SELL")] + [(f"h{i}", 5.0, 0.0, "HOLD") for i in range(499)])
    fig = plots.signal_distribution(today)
    ax = fig.axes[0]
    assert ax.get_ylim()[1] >= 499 * 1.15, "the 499 label sits below the top of the axes"
    assert "500 cards tracked" in ax.get_title(loc="left") and ax.get_ylabel() == "cards tracked"
    assert [t.get_text() for t in ax.texts] == ["0", "499", "1"]


def test_kpi_trend_axes_start_at_zero_and_shares_read_as_percentages():
    trends = pd.DataFrame({"buy_precision": [0.2, 0.22], "sell_precision": [0.3, 0.31], "buy_lift": [1.2, 1.3],
                           "sell_lift": [2.0, 2.1], "mape_fair": [0.0092, 0.0098], "mape_naive": [0.0097, 0.0099]},
                          index=["2026-11-27", "2026-11-28"])
    fig = plots.kpi_trends(trends, "tcgcsv")
    precision, lift, mape = fig.axes
    assert all(ax.get_ylim()[0] == 0 for ax in fig.axes), "0.92%-0.98% must not look like a trend"
    for ax, share in ((precision, 0.25), (mape, 0.01)):
        text = _percent(ax.yaxis.get_major_formatter(), share)
        assert text.endswith("%") and float(text[:-1]) == pytest.approx(share * 100)
    assert "tcgcsv" in fig._suptitle.get_text()
    span = mape.get_xlim()[1] - mape.get_xlim()[0]
    assert span < 5, "two consecutive days do not stretch over a year"


def test_the_portfolio_axis_says_market_value_and_its_currency():
    value = pd.DataFrame({"date": DAYS[:5], "currency": "USD", "value": [10.0, 11, 12, 11, 13],
                          "cost": 11.0})
    ax = plots.portfolio_value(value).axes[0]
    assert ax.get_ylabel() == "market value (USD)" and ax.get_title(loc="left").startswith("Portfolio")


@pytest.mark.parametrize("build", [
    lambda: plots.forward_return_by_signal({s: return_box(np.array([r, r + 0.02])) for s, r in
                                            (("BUY", 0.1), ("HOLD", 0.0), ("SELL", -0.1))}, 7),
    lambda: plots.candidate_scores(pd.DataFrame({"method": ["ewm"], "window": [3], "buy_lift": [1.2],
                                                 "sell_lift": [2.0]})),
])
def test_every_plot_has_a_title_and_labelled_axes(build):
    ax = build().axes[0]
    assert ax.get_title(loc="left") and ax.get_xlabel() and ax.get_ylabel()
