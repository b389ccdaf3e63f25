"""Readable summaries of a run's KPIs: tables for notebooks and a plain-language paragraph.

Analysts read percentages and lifts, not dict keys; collectors read sentences.
Both come from the same ``metrics.json`` numbers so they can never disagree.
"""
from __future__ import annotations

import math

import pandas as pd

_ROWS = [
    ("buy_flags", "BUY flags scored", "{:,.0f}"), ("buy_precision", "BUY precision", "{:.1%}"),
    ("buy_base_rate", "BUY base rate", "{:.1%}"), ("buy_lift", "BUY lift", "{:.2f}x"),
    ("buy_recall", "BUY recall", "{:.1%}"),
    ("sell_flags", "SELL flags scored", "{:,.0f}"), ("sell_precision", "SELL precision", "{:.1%}"),
    ("sell_base_rate", "SELL base rate", "{:.1%}"), ("sell_lift", "SELL lift", "{:.2f}x"),
    ("sell_recall", "SELL recall", "{:.1%}"),
    ("mean_forward_return_buy", "mean return after BUY", "{:+.2%}"),
    ("mean_forward_return_hold", "mean return after HOLD", "{:+.2%}"),
    ("mean_forward_return_sell", "mean return after SELL", "{:+.2%}"),
    ("mape_fair", "MAPE, fair value", "{:.2%}"), ("mape_naive", "MAPE, naive last price", "{:.2%}"),
    ("rmse_fair", "RMSE, fair value", "{:.3f}"), ("rmse_naive", "RMSE, naive last price", "{:.3f}"),
    ("coverage", "coverage", "{:.1%}"), ("signal_rate", "signal rate", "{:.1%}"),
    ("signal_flip_rate", "signal flip rate", "{:.1%}"),
    ("rows_scored", "observations scored", "{:,.0f}"), ("series_scored", "series scored", "{:,.0f}"),
]


def _fmt(value, pattern: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return pattern.format(value)


def kpi_table(kpis: dict) -> pd.DataFrame:
    """KPIs as a two-column table with human labels and formatted values."""
    return pd.DataFrame([{"KPI": label, "value": _fmt(kpis.get(key), pattern)}
                         for key, label, pattern in _ROWS if key in kpis]).set_index("KPI")


def plain_summary(kpis: dict, today: pd.DataFrame, quality: dict | None = None) -> str:
    """One paragraph: today's flags, how trustworthy flags have been, and data quality."""
    counts = today["signal"].value_counts()
    n_buy, n_sell = int(counts.get("BUY", 0)), int(counts.get("SELL", 0))
    h = kpis.get("horizon_days", 7)
    parts = [f"Today {n_buy} card(s) are flagged BUY and {n_sell} SELL out of {len(today):,} tracked."]
    lift_b, lift_s = kpis.get("buy_lift"), kpis.get("sell_lift")
    if lift_b is not None and not (isinstance(lift_b, float) and math.isnan(lift_b)):
        parts.append(
            f"Over the backtest, a BUY flag was followed by a rise of {kpis['target_return']:.0%} or more within "
            f"{h} days {_fmt(kpis.get('buy_precision'), '{:.0%}')} of the time, {_fmt(lift_b, '{:.1f}')}x the "
            f"base rate; a SELL flag by a similar fall {_fmt(kpis.get('sell_precision'), '{:.0%}')} of the time "
            f"({_fmt(lift_s, '{:.1f}')}x). Average {h}-day return after BUY was "
            f"{_fmt(kpis.get('mean_forward_return_buy'), '{:+.1%}')}, after SELL "
            f"{_fmt(kpis.get('mean_forward_return_sell'), '{:+.1%}')}.")
    mape_f, mape_n = kpis.get("mape_fair"), kpis.get("mape_naive")
    if mape_f is not None and mape_n is not None:
        better = "better" if mape_f < mape_n else "worse"
        parts.append(f"As a forecast of the next price the fair value was {better} than simply taking the last "
                     f"price (MAPE {_fmt(mape_f, '{:.1%}')} vs {_fmt(mape_n, '{:.1%}')}).")
    if quality:
        rejected = quality.get("validation", {}).get("rows_rejected", 0)
        parts.append(f"Data quality: {quality.get('completeness', 1):.0%} of requested items fetched, "
                     f"{rejected:,} row(s) rejected by validation.")
    return " ".join(parts)
