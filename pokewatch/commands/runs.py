"""``pokewatch runs`` and ``pokewatch runs show DATE``: the run history in a terminal.

Why: "did last night's run work, and how good are the flags lately?" should take one
command, not a file browser. The table and the details come from the same
:func:`pokewatch.explore.run_history` the HTML index uses, so they always agree.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from pokewatch import config, explore, params, summary
from pokewatch.errors import RunError

EXAMPLES = """\
examples:
  pokewatch runs                      # every attempt, newest first, with status and KPIs
  pokewatch runs --published          # only what runs/<date> points at
  pokewatch runs show latest          # the newest good run in detail
  pokewatch runs show 2026-11-28      # one date (its failed attempt, when it has no good one)

Runs are read from $POKEWATCH_RUNS_DIR (default: runs/ in the project); --runs-dir overrides it.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "runs", help="list runs with status and KPIs; 'runs show DATE' for one run",
        description="List pipeline runs (published, superseded and failed attempts) with their status, "
                    "today's BUY/SELL counts and backtest KPIs.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs-dir", metavar="DIR", help="runs folder (default: $POKEWATCH_RUNS_DIR or runs/)")
    parser.add_argument("--published", action="store_true", help="only published runs (one per date)")
    parser.add_argument("--limit", type=int, default=30, metavar="N", help="newest N attempts (default 30; 0 = all)")
    parser.set_defaults(handler=list_runs)
    actions = parser.add_subparsers(dest="runs_action", metavar="ACTION")
    show = actions.add_parser("show", help="one run in detail: status, model, KPIs, summary, files",
                              description="Show one run: its status (and failure), model, signal counts, "
                                          "plain-language summary, KPI table, portfolio, alert and files.")
    show.add_argument("date", help="YYYY-MM-DD, 'latest' or 'today'")
    show.add_argument("--runs-dir", metavar="DIR", help="runs folder (default: $POKEWATCH_RUNS_DIR or runs/)")
    show.set_defaults(handler=show_run)


def _root(args) -> Path:
    return Path(args.runs_dir).expanduser() if getattr(args, "runs_dir", None) else config.runs_dir()


def runs_table(history: pd.DataFrame) -> pd.DataFrame:
    """The terminal table of :func:`pokewatch.explore.run_history` (newest first)."""
    def pct(v):
        return "" if pd.isna(v) else f"{v:.0%}"

    def lift(v):
        return "" if pd.isna(v) else f"{v:.2f}x"

    table = history.sort_values(["run_date", "attempt"], ascending=False)
    return pd.DataFrame({
        "date": table["run_date"], "state": table["state"],
        "BUY": table["buy"].astype("string").fillna(""), "SELL": table["sell"].astype("string").fillna(""),
        "BUY prec": table["buy_precision"].map(pct), "BUY lift": table["buy_lift"].map(lift),
        "SELL prec": table["sell_precision"].map(pct), "SELL lift": table["sell_lift"].map(lift),
        "MAPE fair/naive": [("" if pd.isna(f) else f"{f:.1%}/{n:.1%}") for f, n in
                            zip(table["mape_fair"], table["mape_naive"])],
        "model": table["model"].fillna(""), "attempt": table["attempt"],
        "failure": table["failure"].fillna("").str.slice(0, 60),
    })


def list_runs(args: argparse.Namespace) -> int:
    root = _root(args)
    history = explore.run_history(root)
    if args.published:
        history = history[history["state"] == "published"]
    if history.empty:
        print(f"no runs in {root} yet; run 'make pipeline' or scripts/run_pipeline.sh")
        return 0
    table = runs_table(history)
    if args.limit and args.limit > 0:
        table = table.head(args.limit)
    if not table["failure"].str.len().any():
        table = table.drop(columns="failure")
    print(table.to_string(index=False))
    index = root / "index.html"
    print(f"\n{len(history)} attempt(s) in {root}" + (f"; open {index} for links and reports" if index.exists()
                                                       else ""))
    return 0


def pick_attempt(history: pd.DataFrame, date: str, root: Path) -> pd.Series:
    """The attempt 'runs show DATE' describes: the published one, else the newest of that date.

    Raises:
        RunError: no attempt of that date (the message lists recent dates).
    """
    if date == "latest":
        published = history[history["state"] == "published"]
        if published.empty:
            raise RunError(f"no published run in {root} yet" + (
                f"; attempts exist for {', '.join(history['run_date'].unique()[-5:])}" if len(history) else ""))
        date = published["run_date"].max()
    date = params.run_date("DATE", date)
    same = history[history["run_date"] == date]
    if same.empty:
        dates = ", ".join(history["run_date"].drop_duplicates().tolist()[-8:]) or "none yet"
        raise RunError(f"no run for {date} in {root}; runs there: {dates}")
    published = same[same["state"] == "published"]
    return (published if len(published) else same).iloc[-1]


def show_run(args: argparse.Namespace) -> int:
    root = _root(args)
    history = explore.run_history(root)
    row = pick_attempt(history, args.date, root)
    folder = Path(row["path"])
    manifest = json.loads((folder / "manifest.json").read_text())
    lines = [f"Run {row['run_date']}: {row['state']} (attempt {row['attempt']})",
             f"  folder     {folder}",
             f"  started    {manifest.get('started_at', '?')}   finished {manifest.get('finished_at', '-')}"]
    failure = manifest.get("failure")
    if failure:
        lines.append(f"  FAILED at  step {failure.get('step')}: {failure.get('cell') or failure.get('error')}")
        notebook = folder / f"{failure.get('step')}.ipynb"
        if notebook.exists():
            lines.append(f"  notebook   {notebook}")
    model = manifest.get("model") or {}
    if model:
        lines.append(f"  model      {model.get('method')}({model.get('window')}) trained on {model.get('trained_on')}"
                     f"; {model.get('reason') or ''}".rstrip("; "))
    steps = manifest.get("steps", {})
    if steps:
        lines.append("  steps      " + ", ".join(
            f"{name} {s.get('seconds', 0):.1f}s" + (" (cache hit)" if any(s.get("cache_hits", {}).values()) else "")
            for name, s in steps.items()))
    if not pd.isna(row["buy"]):
        lines.append(f"  signals    BUY {row['buy']}, SELL {row['sell']}, HOLD {row['hold']} of {row['cards']} cards")
    for name in ("report.html", "signals.csv", "metrics.json", "portfolio.csv"):
        if (folder / name).exists():
            lines.append(f"  {name:<14} {folder / name}")
    alert = manifest.get("alert")
    if alert:
        lines.append(f"  alert      {alert.get('status')} to {alert.get('target')} after {alert.get('attempts')} "
                     f"attempt(s)" + (f": {alert.get('error')}" if alert.get("error") else ""))
    print("\n".join(lines))
    if (folder / "signals.csv").exists():
        from pokewatch.report import run_summary  # nbconvert-free, but keep start-up light

        print("\n" + run_summary(folder))
        kpis = json.loads((folder / "metrics.json").read_text()).get("kpis", {}) \
            if (folder / "metrics.json").exists() else {}
        if kpis:
            print("\n" + summary.kpi_table(kpis).to_string())
    return 0
