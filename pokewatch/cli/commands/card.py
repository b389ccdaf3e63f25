"""``pokewatch card NAME``: one card's recent prices, fair value and signals, plus a plot.

Why: before buying or selling, a collector wants to see the card's recent path and
where the fair-value band sits. Names are matched forgivingly (case, part of the
name, small typos); when nothing matches, the error lists the closest cards.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

EXAMPLES = """\
examples:
  pokewatch card Charizard ex              # the most valuable Charizard ex, its usual printing
  pokewatch card sv3pt5-199 --variant "Reverse Holofoil"
  pokewatch card pikachu --days 60 --date 2026-11-27
  pokewatch card mewtwo --out mewtwo.png
  pokewatch card mewtwo --json             # for scripts: the match and its history as JSON, no plot

The table lists the last --days days the run's model keeps (90 by default); the plot
(PNG) shows the market price, fair value, HOLD band and BUY/SELL flags.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "card", help="a card's price history with fair value and signals, plus a PNG plot",
        description="Show one card's daily market price, fair value, deviation and signal from a run, "
                    "and write a plot of it.", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", nargs="+", help="card name (any case, part of it, small typos ok) or card id")
    parser.add_argument("--variant", help="printing, e.g. Holofoil or 'Reverse Holofoil' (default: the usual one)")
    parser.add_argument("--date", default="latest", help="run date: YYYY-MM-DD, 'latest' (default) or 'today'")
    parser.add_argument("--days", type=int, default=30, metavar="N", help="days in the table (default 30)")
    parser.add_argument("--out", metavar="PNG", help="plot path (default: <runs>/explore/<date>/<card>.png)")
    parser.add_argument("--json", action="store_true",
                        help="print the match, thresholds and the last --days days as JSON; "
                             "the plot is written only with --out")
    parser.add_argument("--runs-dir", metavar="DIR", help="runs folder (default: $POKEWATCH_RUNS_DIR or runs/)")
    parser.set_defaults(handler=show_card)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-")


def show_card(args: argparse.Namespace) -> int:
    from pokewatch import config
    from pokewatch.analysis import explore
    from pokewatch.cli import terminal

    run = explore.open_run(args.date, runs_root=args.runs_dir, option="--date")
    match = explore.find_card(run.today, " ".join(args.name), args.variant, where=f"the run of {run.run_date}")
    history = explore.card_history(run.model, match)
    table = history.tail(max(args.days, 1))
    root = Path(args.runs_dir).expanduser() if args.runs_dir else config.runs_dir()
    out = Path(args.out) if args.out else (root / "explore" / run.run_date /
                                            f"{_slug(match.card_id)}-{_slug(match.variant)}.png")
    plot = _plot(history, run, match, out) if (args.out or not args.json) else None
    buy, sell = run.thresholds
    if args.json:
        terminal.print_json({
            "card": {"card_id": match.card_id, "variant": match.variant, "currency": match.currency,
                     "name": match.name, "set_name": match.set_name, "matched_by": match.matched_by,
                     "alternatives": list(match.alternatives)},
            "run": {"run_date": run.run_date, "kind": run.kind, "source": run.source, "dir": str(run.dir)},
            "thresholds": {"buy": buy, "sell": sell, "min_price": run.min_price},
            "history": terminal.records(table[explore.HISTORY_COLUMNS_SHOWN]),
            "plot": str(plot) if plot else None})
        return 0
    terminal.print_text(match.describe())
    terminal.print_text(f"{run.kind} {run.source} run of {run.run_date}; BUY at {-buy:+.0%}, SELL at {sell:+.0%} "
                        f"from fair value; cards under ${run.min_price:,.2f} are never flagged")
    terminal.print_table(table, explore.HISTORY_COLUMNS_SHOWN)
    print(f"plot: {plot}")  # one line, never wrapped: scripts read the path from it
    return 0


def _plot(history, run, match, out: Path) -> Path:
    from pokewatch.analysis import plots  # matplotlib only when a plot is written

    figure = plots.price_with_band(history, *run.thresholds, title=str(match))
    return plots.save(figure, out).resolve()
