"""``pokewatch collect``: collect prices from a source, or replay a past run's raw responses.

Why a command besides the collect notebook: backfills and parser fixes are
one-off operator tasks. ``--replay`` re-parses the raw responses a run kept (no
network), so a fixed parser repairs history without refetching anything.
"""
from __future__ import annotations

import argparse
import json
import logging
import re
from pathlib import Path

import pandas as pd

from pokewatch import config
from pokewatch.errors import ParameterError

logger = logging.getLogger(__name__)

EXAMPLES = """\
examples:
  # today's TCGplayer prices of English Pokémon (category 3) from tcgcsv.com
  pokewatch collect --source tcgcsv --date 2026-01-05

  # backfill a week from tcgcsv's daily archives in a local folder
  pokewatch collect --source tcgcsv --archives ../shared/data/tcgcsv-archives \\
      --backfill 2025-09-21..2025-09-27

  # only the watchlist's cards and sets, from pokemontcg.io (key optional: POKEMONTCG_API_KEY)
  pokewatch collect --source pokemontcg --param watchlist=watchlist.yaml

  # an analyst's CSV with their own column names
  pokewatch collect --source file --param input_path=prices.csv \\
      --param "columns=Price (USD):market_price" --backfill 2026-01-01..2026-01-31

  # re-parse what a past run fetched (no network), e.g. after a parser fix
  pokewatch collect --replay runs/2026-01-05

  # ... or what a successful collect kept beyond the run folders (90 days by default)
  pokewatch collect --replay data/raw/tcgcsv/2026-01-05-<digest>

  # make the day hold exactly what is fetched now (stored rows not fetched are removed and counted)
  pokewatch collect --source file --param input_path=prices.csv --date 2026-01-05 --replace-day

Keys come from the environment only (POKEMONTCG_API_KEY, POKEMONPRICETRACKER_API_KEY)
and are never written to the run folder. Base URLs: POKEWATCH_TCGCSV_URL,
POKEWATCH_POKEMONTCG_URL, POKEWATCH_PPT_URL. Set TQDM_DISABLE=1 for cron logs.
See docs/data_sources.md for every source's options.
"""

#: --param names the pipeline uses that map to a different option name.
PARAM_ALIASES = {"input_path": "path"}


def _parse_backfill(text: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    match = re.fullmatch(r"\s*(\d{4}-\d{2}-\d{2})\s*\.\.\s*(\d{4}-\d{2}-\d{2})\s*", text or "")
    if not match:
        raise ParameterError(f"--backfill must be FROM..TO with dates YYYY-MM-DD, got {text!r}")
    start, end = pd.Timestamp(match.group(1)), pd.Timestamp(match.group(2))
    if end < start:
        raise ParameterError(f"--backfill {text}: TO is before FROM")
    return start, end


def _parse_params(pairs: list[str]) -> dict[str, str]:
    options = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ParameterError(f"--param must be NAME=VALUE, got {pair!r}")
        options[PARAM_ALIASES.get(name.strip(), name.strip())] = value
    return options


def _summary(result, run_dir: Path) -> str:
    report = result.quality_report(0.0)
    validation = report["validation"]
    rejected = {k: v["count"] for k, v in validation["rejected_by_reason"].items()}
    lines = [
        f"collected {report['source']} {report['start']}..{report['end']} into {run_dir}",
        (f"  rows: {validation['rows_valid']} valid, {validation['rows_rejected']} rejected"
         + (f" {rejected}" if rejected else "")),
        (f"  series: {report['series']}; days stored: {len(report['days_stored'])}; "
         f"completeness {report['completeness']:.0%} of {report['items_expected']} item(s)"),
    ]
    for failure in report["fetch_failures"][:5]:
        lines.append(f"  failed: {failure.get('item')}: {failure.get('error')}")
    if len(report["fetch_failures"]) > 5:
        lines.append(f"  ... {len(report['fetch_failures']) - 5} more failure(s) in quality.json")
    if report["rows_removed"]:
        lines.append(f"  removed {report['rows_removed']} stored row(s) not fetched again (--replace-day): "
                     f"{report['rows_removed_by_day']}")
    if report["columns_dropped"]:
        lines.append(f"  dropped {len(report['columns_dropped'])} column(s) the store does not keep")
    for note in report["notes"]:
        lines.append(f"  note: {json.dumps(note, default=str)[:300]}")
    lines.append(f"  quality report: {run_dir / 'quality.json'}; {result.seconds:.1f}s")
    return "\n".join(lines)


def handle(args: argparse.Namespace) -> int:
    from pokewatch.run.collect import collect, replay
    from pokewatch.data.store import PriceStore

    store = PriceStore(Path(args.store)) if args.store else None
    if args.replay:
        if args.date or args.backfill or args.archives or args.params:
            raise ParameterError("--replay re-parses a run as it was fetched; it takes no --date, --backfill, "
                                 "--archives or --param")
        run_dir = Path(args.replay)
        if not run_dir.is_dir():
            raise ParameterError(f"--replay {run_dir}: no such run folder")
        result = replay(run_dir, args.source, store=store, replace_day=args.replace_day)
        print(_summary(result, result.run_dir))
        return 0
    if not args.source:
        raise ParameterError("pass --source NAME to collect (or --replay RUN_DIR); see --help")
    if args.date and args.backfill:
        raise ParameterError("pass either --date or --backfill, not both")
    if args.backfill:
        start, end = _parse_backfill(args.backfill)
    else:
        try:
            start = end = pd.Timestamp(args.date or "today").normalize()
        except ValueError:
            raise ParameterError(f"--date must be YYYY-MM-DD, got {args.date!r}") from None
    options = _parse_params(args.params)
    if args.archives:
        options["archives"] = args.archives
    if args.watchlist:
        options["watchlist"] = args.watchlist
    run_dir = Path(args.run_dir) if args.run_dir else \
        config.data_dir() / "collect-runs" / f"{args.source}-{end:%Y-%m-%d}"
    result = collect(args.source, start, end, run_dir, options=options, store=store,
                     min_completeness=args.min_completeness, replace_day=args.replace_day)
    print(_summary(result, run_dir))
    return 0


def register(subparsers) -> None:
    from pokewatch.data.sources import SOURCES

    parser = subparsers.add_parser(
        "collect",
        help="collect prices from a source, backfill a date range, or replay a run's raw responses",
        description=("Collect prices into the store: fetch raw responses into RUN_DIR/raw/<source>/ first, "
                     "then parse, validate and store them, and write RUN_DIR/quality.json. One failing "
                     "card, set or day does not abort the collect; it fails only below --min-completeness."),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--source", choices=sorted(SOURCES), metavar="NAME",
                        help=f"price source: {', '.join(sorted(SOURCES))}")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--date", metavar="YYYY-MM-DD", help="the trading day to collect (default: today)")
    when.add_argument("--backfill", metavar="FROM..TO",
                      help="collect every day from FROM to TO (tcgcsv needs --archives; pokemonpricetracker "
                           "and file read history)")
    when.add_argument("--replay", metavar="RUN_DIR",
                      help="re-parse RUN_DIR/raw/<source>/ (or a folder kept under $POKEWATCH_DATA_DIR/raw/) "
                           "without the network and store the result again")
    parser.add_argument("--archives", metavar="DIR_OR_URL",
                        help="tcgcsv daily archives: a folder of prices-YYYY-MM-DD.ppmd.7z, a URL prefix, "
                             "or 'tcgcsv' for tcgcsv.com's archive URL")
    parser.add_argument("--watchlist", metavar="PATH", help="watchlist YAML/CSV (same as --param watchlist=PATH)")
    parser.add_argument("--param", dest="params", action="append", default=[], metavar="NAME=VALUE",
                        help="source option, repeatable: category=3, watchlist=PATH, input_path=PATH, "
                             "columns=..., stale_days=7, workers=4, http_timeout=30 ...")
    parser.add_argument("--run-dir", metavar="DIR",
                        help="where raw responses and quality.json go (default: "
                             "$POKEWATCH_DATA_DIR/collect-runs/<source>-<date>)")
    parser.add_argument("--replace-day", action="store_true",
                        help="make each collected day hold exactly the rows fetched now: stored rows of those "
                             "days that were not fetched again are removed (and counted); by default they stay")
    parser.add_argument("--store", metavar="DIR", help="price store folder (default: $POKEWATCH_DATA_DIR/store)")
    parser.add_argument("--min-completeness", type=float, default=0.9, metavar="SHARE",
                        help="fail when fewer than this share of items (groups, pages, days) came back "
                             "(default 0.9)")
    parser.set_defaults(handler=handle)
