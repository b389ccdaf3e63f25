"""``pokewatch card NAME``: one card's recent prices, fair value and signals, plus a plot.

Why: before buying or selling, a collector wants to see the card's recent path and
where the fair-value band sits. Names are matched forgivingly (case, part of the
name, small typos); when nothing matches, the error lists the closest cards.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import pandas as pd

from pokewatch import config, explore

EXAMPLES = """\
examples:
  pokewatch card Charizard ex              # the most valuable Charizard ex, its usual printing
  pokewatch card sv3pt5-199 --variant "Reverse Holofoil"
  pokewatch card pikachu --days 60 --date 2026-11-27
  pokewatch card mewtwo --out mewtwo.png

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
    parser.add_argument("--runs-dir", metavar="DIR", help="runs folder (default: $POKEWATCH_RUNS_DIR or runs/)")
    parser.set_defaults(handler=show_card)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-")


def show_card(args: argparse.Namespace) -> int:
    from pokewatch import plots  # matplotlib only for this command

    run = explore.open_run(args.date, runs_root=args.runs_dir)
    match = explore.find_card(run.today, " ".join(args.name), args.variant, where=f"the run of {run.run_date}")
    history = explore.card_history(run.model, match)
    print(f"{match.describe()}\nrun {run.run_date} ({run.kind}); BUY at {-run.thresholds[0]:+.0%}, "
          f"SELL at {run.thresholds[1]:+.0%} from fair value\n")
    table = history.tail(max(args.days, 1))
    print(table.assign(date=table["date"].dt.strftime("%Y-%m-%d"),
                       market_price=table["market_price"].map("{:,.2f}".format),
                       fair_value=table["fair_value"].map(lambda v: "n/a" if pd.isna(v) else f"{v:,.2f}"),
                       deviation=table["deviation"].map(lambda v: "n/a" if pd.isna(v) else f"{v:+.1%}"))
          [["date", "market_price", "fair_value", "deviation", "signal"]].to_string(index=False))
    root = Path(args.runs_dir).expanduser() if args.runs_dir else config.runs_dir()
    out = Path(args.out) if args.out else (root / "explore" / run.run_date /
                                            f"{_slug(match.card_id)}-{_slug(match.variant)}.png")
    figure = plots.price_with_band(history, *run.thresholds, title=str(match))
    print(f"\nplot: {plots.save(figure, out).resolve()}")
    return 0
