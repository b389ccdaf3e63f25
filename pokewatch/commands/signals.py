"""``pokewatch signals``: a run's BUY and SELL flags (or any signal) as a table or CSV.

Why: the question a collector asks every morning is "what should I look at today?";
this answers it from the run folder without opening a notebook.
"""
from __future__ import annotations

import argparse
import sys

import pandas as pd

from pokewatch import explore

EXAMPLES = """\
examples:
  pokewatch signals                          # today's BUY and SELL flags of the latest run
  pokewatch signals --signal BUY --limit 5   # the five strongest BUYs
  pokewatch signals --date 2026-11-27 --signal SELL
  pokewatch signals --signal HOLD --csv > hold.csv

Rows are sorted by strength: the furthest from fair value first.
"""
COLUMNS = ["signal", "name", "card_id", "set_name", "variant", "market_price", "fair_value", "deviation", "date"]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "signals", help="a run's BUY/SELL flags, strongest first",
        description="Print a run's cards flagged BUY or SELL (or --signal HOLD), strongest first.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--date", default="latest", help="YYYY-MM-DD, 'latest' (default) or 'today'")
    parser.add_argument("--signal", type=str.upper, choices=["BUY", "SELL", "HOLD"], action="append",
                        help="only this signal (repeatable; default BUY and SELL)")
    parser.add_argument("--limit", type=int, default=50, metavar="N", help="at most N rows (default 50; 0 = all)")
    parser.add_argument("--csv", action="store_true", help="print CSV (every column) instead of a table")
    parser.add_argument("--runs-dir", metavar="DIR", help="runs folder (default: $POKEWATCH_RUNS_DIR or runs/)")
    parser.set_defaults(handler=show_signals)


def show_signals(args: argparse.Namespace) -> int:
    run = explore.open_run(args.date, runs_root=args.runs_dir)
    wanted = args.signal or ["BUY", "SELL"]
    today = run.today
    rows = today[today["signal"].isin(wanted)]
    rows = rows.loc[rows["deviation"].abs().sort_values(ascending=False, na_position="last").index]
    if args.limit and args.limit > 0:
        rows = rows.head(args.limit)
    if args.csv:
        rows.to_csv(sys.stdout, index=False)
        return 0
    print(f"{run.kind} run of {run.run_date} ({run.dir}): {len(today):,} cards, "
          + ", ".join(f"{s} {int((today['signal'] == s).sum())}" for s in ("BUY", "SELL", "HOLD")))
    if rows.empty:
        print(f"no {' or '.join(wanted)} flags in this run")
        return 0
    table = rows[COLUMNS].assign(
        market_price=rows["market_price"].map("{:,.2f}".format), fair_value=rows["fair_value"].map(
            lambda v: "n/a" if pd.isna(v) else f"{v:,.2f}"),
        deviation=rows["deviation"].map(lambda v: "n/a" if pd.isna(v) else f"{v:+.1%}"),
        date=rows["date"].dt.strftime("%Y-%m-%d"))
    print(table.to_string(index=False))
    return 0
