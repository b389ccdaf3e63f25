"""Readable summaries of a run's KPIs: tables for notebooks and a plain-language paragraph.

Analysts read percentages and lifts, not dict keys; collectors read sentences.
Both come from the same ``metrics.json`` numbers so they can never disagree.
"""
from __future__ import annotations

import math

import pandas as pd

from pokewatch.analysis.candidates import top_candidates as top_candidates  # its home is candidates; kept for notebooks

_ROWS = [
    ("buy_flags", "BUY flags scored", "{:,.0f}"), ("buy_precision", "BUY precision", "{:.1%}"),
    ("buy_wrong_way_rate", "BUY wrong-way rate", "{:.1%}"),
    ("buy_base_rate", "BUY base rate", "{:.1%}"), ("buy_lift", "BUY lift", "{:.2f}x"),
    ("buy_recall", "BUY recall", "{:.1%}"),
    ("sell_flags", "SELL flags scored", "{:,.0f}"), ("sell_precision", "SELL precision", "{:.1%}"),
    ("sell_wrong_way_rate", "SELL wrong-way rate", "{:.1%}"),
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


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def record_sentence(figures: dict, kind: str = "SELL") -> str | None:
    """'Of 376 SELL flags from ... to ..., 36% were followed by a fall of 5% or more 7 days later and 16% by
    a rise of as much', or None when no flag of ``kind`` was scored."""
    data = figures.get(kind) or {}
    n = data.get("flags") or 0
    if not n or data.get("precision") is None:
        return None
    h, x = figures.get("horizon_days", 7), figures.get("target_return", 0.05)
    good, bad = ("rise", "fall") if kind == "BUY" else ("fall", "rise")
    span = ""
    if figures.get("first_flag_date") and figures.get("last_flag_date"):
        span = f" from {figures['first_flag_date']} to {figures['last_flag_date']}"
    return (f"Of {n:,} {kind} flag{'s' if n != 1 else ''}{span}, {data['precision']:.0%} "
            f"{'were' if n != 1 else 'was'} followed by a {good} of {x:.0%} or more {h} days later and "
            f"{data['wrong_way_rate']:.0%} by a {bad} of as much")


def track_record_sentences(figures: dict, rule: dict | None = None) -> list[str]:
    """The track record in plain words: one sentence per kind that was scored, or why none was.

    Args:
        figures: ``metrics.json``'s ``track_record`` (out of sample).
        rule: ``metrics.json``'s ``model`` (the rule), for why a kind is off today.
    """
    figures = figures or {}
    lines = [text + "." for kind in ("SELL", "BUY") if (text := record_sentence(figures, kind))]
    if not lines:
        note = figures.get("note") or "no flag has reached its horizon yet"
        lines.append(f"No flag could be scored out of sample yet ({note}), so there is no track record to "
                     "report; today's flags rest on the in-sample evidence of training only.")
    for kind in ("BUY", "SELL"):
        if rule and rule.get(kind.lower()) is None:
            why = (rule.get("reasons") or {}).get(kind)
            lines.append(f"{kind} flags are switched off" + (f": {why}." if why else "."))
    return lines


def plain_summary(metrics: dict, today: pd.DataFrame, quality: dict | None = None) -> str:
    """One paragraph: today's flags, the out-of-sample track record, forecast error and data quality.

    Args:
        metrics: the run's ``metrics.json`` (``track_record``, ``kpis``, ``model``).
        today: the day's signals (``signals.csv``).
        quality: the collect step's ``quality.json``, if any.
    """
    counts = today["signal"].value_counts()
    n_buy, n_sell = int(counts.get("BUY", 0)), int(counts.get("SELL", 0))
    stale = int(today["stale"].sum()) if "stale" in today else 0
    parts = [f"Today {n_buy} card(s) are flagged BUY and {n_sell} SELL out of {len(today):,} tracked"
             + (f" ({stale:,} with a price too old to flag)." if stale else ".")]
    parts += track_record_sentences(metrics.get("track_record") or {}, metrics.get("model"))
    kpis = metrics.get("kpis") or {}
    mape_f, mape_n = kpis.get("mape_fair"), kpis.get("mape_naive")
    if _finite(mape_f) and _finite(mape_n):
        better = "better" if mape_f < mape_n else "worse"
        parts.append(f"As a forecast of the next price, the fair value known each day was {better} than simply "
                     f"taking that day's price (MAPE {mape_f:.2%} vs {mape_n:.2%}, out of sample).")
    if quality:
        rejected = quality.get("validation", {}).get("rows_rejected", 0)
        completeness = quality.get("completeness")
        fetched = f"{completeness:.0%} of requested items fetched, " if _finite(completeness) else ""
        parts.append(f"Data quality: {fetched}{rejected:,} row(s) rejected by validation.")
    return " ".join(parts)


def direction_table(figures: dict) -> pd.DataFrame:
    """The track record per signal as a formatted table: flags, precision, wrong-way rate, base rate,
    lift with its 95% interval, and mean and median forward return ("n/a" where nothing was scored)."""
    rows = []
    for kind in ("BUY", "SELL", "HOLD"):
        data = (figures or {}).get(kind) or {}
        interval = "n/a"
        if data.get("lift_low") is not None and data.get("lift_high") is not None:
            interval = f"{data['lift_low']:.2f}x to {data['lift_high']:.2f}x"
        rows.append({"signal": kind, "flags": _fmt(data.get("flags"), "{:,.0f}"),
                     "precision": _fmt(data.get("precision"), "{:.1%}"),
                     "wrong-way rate": _fmt(data.get("wrong_way_rate"), "{:.1%}"),
                     "base rate": _fmt(data.get("base_rate"), "{:.1%}"), "lift": _fmt(data.get("lift"), "{:.2f}x"),
                     "lift, 95% interval": interval if kind != "HOLD" else "",
                     "mean return": _fmt(data.get("mean_forward_return"), "{:+.1%}"),
                     "median return": _fmt(data.get("median_forward_return"), "{:+.1%}")})
    return pd.DataFrame(rows).set_index("signal")


def kpi_comparison(before: dict, after: dict) -> pd.DataFrame:
    """KPIs of two runs side by side, formatted, with the change in the KPI's own unit.

    Only KPIs present in either run are listed; a side without the KPI shows ``n/a``.
    """
    rows = []
    for key, label, pattern in _ROWS:
        if key not in before and key not in after:
            continue
        old, new = before.get(key), after.get(key)
        change = "n/a"
        if all(isinstance(v, (int, float)) and not math.isnan(v) for v in (old, new)):
            change = _fmt(new - old, pattern.replace("{:", "{:+") if "{:+" not in pattern else pattern)
        rows.append({"KPI": label, "before": _fmt(old, pattern), "after": _fmt(new, pattern), "change": change})
    return pd.DataFrame(rows, columns=["KPI", "before", "after", "change"]).set_index("KPI")


_SYMBOLS = {"USD": "$", "EUR": "€"}


def money(amount, currency: str = "USD", signed: bool = False) -> str:
    """``$1,234.50``, ``-€3.20`` or ``+$12.00`` (``signed``); ``n/a`` for a missing amount."""
    if amount is None or (isinstance(amount, float) and math.isnan(amount)):
        return "n/a"
    symbol = _SYMBOLS.get(str(currency), f"{currency} ")
    sign = "-" if amount < 0 else ("+" if signed else "")
    return f"{sign}{symbol}{abs(amount):,.2f}"


def portfolio_sentence(totals: list[dict] | pd.DataFrame, rejected: int = 0, label: str = "Portfolio") -> str:
    """One sentence on a portfolio: value, cost, profit and loss, the day's change.

    Args:
        totals: one record per currency with lots, cards, cost, value, pnl, pnl_pct and
            value_change_1d (see :func:`pokewatch.analysis.portfolio.totals`).
        rejected: portfolio rows skipped as bad.
        label: how the sentence names the portfolio.
    """
    records = totals.to_dict(orient="records") if isinstance(totals, pd.DataFrame) else list(totals)
    if not records:
        return "No portfolio is valued in this run." + (
            f" {rejected} portfolio row(s) were skipped as bad." if rejected else "")
    parts = []
    for t in records:
        cur = t.get("currency", "USD")
        pct = t.get("pnl_pct")
        pct_text = f", {pct:+.1%}" if isinstance(pct, (int, float)) and not math.isnan(pct) else ""
        parts.append(f"{int(t.get('cards', 0)):,} card(s) in {int(t.get('lots', 0)):,} lot(s) worth "
                     f"{money(t.get('value'), cur)} against a cost of {money(t.get('cost'), cur)} "
                     f"(profit and loss {money(t.get('pnl'), cur, signed=True)}{pct_text}; "
                     f"{money(t.get('value_change_1d'), cur, signed=True)} since the day before)")
    text = f"{label}: " + "; ".join(parts) + "."
    if rejected:
        text += f" {rejected} portfolio row(s) were skipped as bad (see portfolio_rejected.csv)."
    return text
