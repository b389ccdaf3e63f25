"""``pokewatch signals``: a run's BUY and SELL flags (or any signal) as a table, CSV or JSON.

Why: the question a collector asks every morning is "what should I look at today?";
this answers it from the run folder without opening a notebook.
"""
from __future__ import annotations

import argparse
import sys

EXAMPLES = """\
examples:
  pokewatch signals                          # today's BUY and SELL flags of the latest run
  pokewatch signals --signal BUY --limit 5   # the five strongest BUYs
  pokewatch signals --date 2026-11-27 --signal SELL
  pokewatch signals --signal HOLD --csv > hold.csv
  pokewatch signals --json | jq '.rows[0]'   # for scripts: every column, null for missing values

Rows are sorted by strength: the furthest from fair value first, in the order the report,
the alerts and the API use. "Cards tracked" counts each card once per printing and
currency (a series).
"""
#: Columns of the terminal table, in order.
COLUMNS = ["signal", "name", "set_name", "variant", "market_price", "fair_value", "deviation", "card_id"]
#: Columns left out, last first, when the table would not fit the terminal.
OPTIONAL = ["variant", "card_id"]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "signals", help="a run's BUY/SELL flags, strongest first",
        description="Print a run's cards flagged BUY or SELL (or --signal HOLD), strongest first.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--date", default="latest", help="YYYY-MM-DD, 'latest' (default) or 'today'")
    parser.add_argument("--signal", type=str.upper, choices=["BUY", "SELL", "HOLD"], action="append",
                        help="only this signal (repeatable; default BUY and SELL)")
    parser.add_argument("--limit", type=int, default=50, metavar="N", help="at most N rows (default 50; 0 = all)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--csv", action="store_true", help="print CSV (every column) instead of a table")
    output.add_argument("--json", action="store_true", help="print JSON (run, counts and every column of each row)")
    parser.add_argument("--runs-dir", metavar="DIR", help="runs folder (default: $POKEWATCH_RUNS_DIR or runs/)")
    parser.set_defaults(handler=show_signals)


def show_signals(args: argparse.Namespace) -> int:
    from pokewatch.analysis import candidates, explore
    from pokewatch.cli import terminal

    run = explore.open_run(args.date, runs_root=args.runs_dir, option="--date")
    wanted = args.signal or ["BUY", "SELL"]
    today = run.today
    rows = candidates.rank_flags(today, wanted, limit=max(args.limit, 0))
    counts = {s: int((today["signal"] == s).sum()) for s in ("BUY", "SELL", "HOLD")}
    if args.csv:
        from pokewatch.atomic import spreadsheet_safe

        # As every CSV PokeWatch writes: spreadsheet-safe, and CRLF line ends, so a name holding a
        # carriage return is quoted instead of starting a new row (which a spreadsheet would run).
        spreadsheet_safe(rows).to_csv(sys.stdout, index=False, lineterminator="\r\n")
        return 0
    if args.json:
        terminal.print_json({"run_date": run.run_date, "kind": run.kind, "source": run.source, "dir": str(run.dir),
                             "cards_tracked": explore.cards_tracked(today), "counts": counts,
                             "signals": wanted, "rows": terminal.records(rows)})
        return 0
    terminal.print_text(f"{run.kind} {run.source} run of {run.run_date} ({run.dir}): "
                        f"{explore.cards_tracked(today):,} cards tracked; "
                        + ", ".join(f"{s} {n:,}" for s, n in counts.items()))
    if rows.empty:
        terminal.print_text(f"No {' or '.join(wanted)} flags in this run.")
        return 0
    terminal.print_table(rows, COLUMNS, optional=OPTIONAL)
    return 0
