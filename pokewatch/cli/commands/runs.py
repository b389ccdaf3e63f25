"""``pokewatch runs`` and ``pokewatch runs show DATE``: the run history in a terminal.

Why: "did last night's run work, and how good are the flags lately?" should take one
command, not a file browser. The table and the details come from the same
:func:`pokewatch.analysis.history.records` the HTML index uses, so they always agree.
Listing runs reads the manifests with :mod:`pokewatch.analysis.history` and imports neither pandas
nor the model, so it starts in a fraction of a second (``benchmarks/cli_startup.py``).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from pokewatch.run.folder import INDEX, RunFolder

EXAMPLES = """\
examples:
  pokewatch runs                      # every attempt, newest first, with status and KPIs
  pokewatch runs --published          # only what runs/<date> points at
  pokewatch runs --source tcgcsv      # only the runs on TCGplayer prices
  pokewatch runs --json               # for scripts: every attempt with every KPI, null for missing
  pokewatch runs show latest          # the newest good run in detail
  pokewatch runs show 2026-11-28      # one date (its failed attempt, when it has no good one)

Runs are read from $POKEWATCH_RUNS_DIR (default: runs/ in the project); --runs-dir overrides it.
"Cards tracked" counts each card once per printing and currency (a series).
"""
#: Columns of the terminal table, in order ("source" only when there is more than one). Failures
#: are listed under the table, one line each, so the table keeps its width.
COLUMNS = ["run_date", "state", "source", "Cards\ntracked", "buy", "sell", "BUY precision\n(lift)",
           "SELL precision\n(lift)", "MAPE fair\n/ last price", "model"]
#: Columns left out, last first, when the table would not fit the terminal.
OPTIONAL = ["source", "MAPE fair\n/ last price", "model"]
#: What ``runs --json`` gives for each attempt.
JSON_FIELDS = ["run_date", "state", "source", "attempt", "path", "started_at", "finished_at", "cards", "buy",
               "sell", "hold", "model", "buy_precision", "buy_lift", "sell_precision", "sell_lift", "mape_fair",
               "mape_naive", "mean_forward_return_buy", "mean_forward_return_sell", "failed_step", "failure",
               "report", "portfolio_value", "portfolio_pnl", "portfolio_currency", "alert"]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "runs", help="list runs with status and KPIs; 'runs show DATE' for one run",
        description="List pipeline runs (published, superseded and failed attempts) with their status, "
                    "today's BUY/SELL counts and backtest KPIs.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs-dir", metavar="DIR", help="runs folder (default: $POKEWATCH_RUNS_DIR or runs/)")
    parser.add_argument("--published", action="store_true", help="only published runs (one per date)")
    parser.add_argument("--source", metavar="NAME", help="only runs on this price source (demo, tcgcsv, ...)")
    parser.add_argument("--limit", type=int, default=30, metavar="N", help="newest N attempts (default 30; 0 = all)")
    parser.add_argument("--json", action="store_true", help="print the attempts as JSON instead of a table")
    parser.set_defaults(handler=list_runs)
    actions = parser.add_subparsers(dest="runs_action", metavar="ACTION")
    show = actions.add_parser("show", help="one run in detail: status, model, KPIs, summary, files",
                              description="Show one run: its status (and failure), model, signal counts, "
                                          "plain-language summary, KPI table, portfolio, alert and files.")
    show.add_argument("date", help="YYYY-MM-DD, 'latest' or 'today'")
    show.add_argument("--runs-dir", metavar="DIR", help="runs folder (default: $POKEWATCH_RUNS_DIR or runs/)")
    show.add_argument("--json", action="store_true", help="print the run (manifest, KPIs, summary) as JSON")
    show.set_defaults(handler=show_run)


def _root(args) -> Path:
    from pokewatch import config

    return Path(args.runs_dir).expanduser() if getattr(args, "runs_dir", None) else config.runs_dir()


def runs_rows(records: list[dict]) -> list[dict]:
    """The rows of ``pokewatch runs``: :func:`pokewatch.analysis.history.records`, newest first.

    Precision and lift of a signal share one column (``20% (1.25x)``), and the two
    MAPEs another, so the table fits an 80-column terminal.
    """
    from pokewatch.analysis.tables import MISSING, is_missing, lift, pct

    def pair(row, first, second, left, right) -> str:
        return MISSING if is_missing(row[first]) else f"{left(row[first])} {right(row[second])}"

    def precision(share) -> str:
        return pct(share, digits=0)

    rows = sorted(records, key=lambda r: (str(r["run_date"]), r["attempt"]), reverse=True)
    return [row | {
        "Cards\ntracked": row["cards"],
        "BUY precision\n(lift)": pair(row, "buy_precision", "buy_lift", precision, lambda v: f"({lift(v)})"),
        "SELL precision\n(lift)": pair(row, "sell_precision", "sell_lift", precision, lambda v: f"({lift(v)})"),
        "MAPE fair\n/ last price": pair(row, "mape_fair", "mape_naive", pct, lambda v: f"/ {pct(v)}"),
    } for row in rows]


def list_runs(args: argparse.Namespace) -> int:
    from pokewatch.analysis import history
    from pokewatch.cli import terminal

    root = _root(args)
    records = history.records(root)
    if args.published:
        records = [r for r in records if r["state"] == "published"]
    if args.source:
        records = [r for r in records if r["source"] == args.source]
    rows = runs_rows(records)
    if args.limit and args.limit > 0:
        rows = rows[:args.limit]
    if args.json:
        terminal.print_json({"runs_dir": str(root), "attempts": [{k: r[k] for k in JSON_FIELDS} for r in rows]})
        return 0
    if not rows:
        terminal.print_text(f"No runs in {root} yet; run 'make pipeline' or scripts/run_pipeline.sh.")
        return 0
    columns = [c for c in COLUMNS if c != "source" or len({r["source"] for r in rows}) > 1]
    terminal.print_table(rows, columns, optional=OPTIONAL)
    for row in rows:
        if row["failure"]:
            terminal.print_text(f"{row['run_date']} failed at {row['failure']} (attempt {row['attempt']})")
    index = root / INDEX
    terminal.print_text(f"{len(records)} attempt(s) in {root}" + (
        f"; open {index} for links and reports" if index.exists() else ""))
    return 0


def pick_attempt(history, date: str, root: Path):
    """The attempt 'runs show DATE' describes: the published one, else the newest of that date.

    Raises:
        RunError: no attempt of that date (the message lists recent dates).
        ParameterError: DATE is neither a date, ``latest`` nor ``today``.
    """
    from pokewatch.core import checks
    from pokewatch.errors import ParameterError, RunError

    if date == "latest":
        published = history[history["state"] == "published"]
        if published.empty:
            raise RunError(f"no published run in {root} yet" + (
                f"; attempts exist for {', '.join(history['run_date'].unique()[-5:])}" if len(history) else ""))
        date = published["run_date"].max()
    try:
        date = checks.run_date("DATE", date)
    except ParameterError:
        raise ParameterError(f"DATE must be YYYY-MM-DD, latest or today, got {date!r}") from None
    same = history[history["run_date"] == date]
    if same.empty:
        dates = ", ".join(history["run_date"].drop_duplicates().tolist()[-8:]) or "none yet"
        raise RunError(f"no run for {date} in {root}; runs there: {dates}")
    published = same[same["state"] == "published"]
    return (published if len(published) else same).iloc[-1]


def _details(row, manifest: dict, folder: Path) -> list[str]:
    from pokewatch.analysis.tables import is_missing

    lines = [f"Run {row['run_date']}: {row['state']} ({row['source']}, attempt {row['attempt']})",
             f"  folder     {folder}",
             f"  started    {manifest.get('started_at', '?')}   finished {manifest.get('finished_at', '-')}"]
    files = RunFolder(folder)
    failure = manifest.get("failure")
    if failure:
        lines.append(f"  FAILED at  step {failure.get('step')}: {failure.get('cell') or failure.get('error')}")
        for path in (files.notebook_page(failure.get("step")), files.notebook(failure.get("step"))):
            if path.exists():
                lines.append(f"  notebook   {path}")
    model = manifest.get("model") or {}
    if model:
        lines.append(f"  model      {model.get('method')}({model.get('window')}) trained on {model.get('trained_on')}"
                     f"; {model.get('reason') or ''}".rstrip("; "))
    steps = manifest.get("steps", {})
    if steps:
        lines.append("  steps      " + ", ".join(
            f"{name} {s.get('seconds', 0):.1f}s" + (" (cache hit)" if any(s.get("cache_hits", {}).values()) else "")
            for name, s in steps.items()))
    if not is_missing(row["buy"]):
        lines.append(f"  signals    BUY {row['buy']:,}, SELL {row['sell']:,}, HOLD {row['hold']:,} "
                     f"of {row['cards']:,} cards tracked")
    for path in (files.report, files.signals, files.metrics, files.portfolio):
        if path.exists():
            lines.append(f"  {path.name:<14} {path}")
    alert = manifest.get("alert")
    if alert:
        lines.append(f"  alert      {alert.get('status')} to {alert.get('target')} after {alert.get('attempts')} "
                     f"attempt(s)" + (f": {alert.get('error')}" if alert.get("error") else ""))
    return lines


def show_run(args: argparse.Namespace) -> int:
    from pokewatch.analysis import explore, summary, tables
    from pokewatch.cli import terminal

    root = _root(args)
    history = explore.run_history(root)
    row = pick_attempt(history, args.date, root)
    folder = Path(row["path"])
    files = RunFolder(folder)
    manifest = json.loads(files.manifest.read_text())
    metrics = json.loads(files.metrics.read_text()) if files.metrics.exists() else {}
    kpis = metrics.get("kpis", {})
    text = None
    if files.signals.exists():
        from pokewatch.analysis.report import run_summary  # nbconvert-free

        text = run_summary(folder)
    if args.json:
        terminal.print_json({"attempt": {k: row[k] for k in JSON_FIELDS}, "manifest": manifest, "kpis": kpis,
                             "summary": text})
        return 0
    print("\n".join(_details(row, manifest, folder)))  # paths stay on one line each
    if text:
        print()
        terminal.print_text(text)
    if kpis:
        print()
        terminal.print_table(tables.kpis(summary.kpi_table(kpis)).frame)
    return 0
