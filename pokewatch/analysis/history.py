"""Every attempt in a runs folder, as plain records: status, source, counts, KPIs, failure, portfolio.

Why a module of its own, with no pandas: ``pokewatch runs`` answers "did last
night's run work?" and should answer in a fraction of a second, while importing
pandas alone takes most of a second of CPU. Reading a few dozen small JSON files
needs nothing but the standard library. :func:`pokewatch.analysis.explore.run_history` turns
these records into the DataFrame the index and the notebooks use, so the terminal
and the HTML index always list the same attempts with the same figures.

The folder layout is :mod:`pokewatch.run.folder`'s (``runs/attempts/<attempt>/``,
``runs/<date>`` links to the published attempt), which imports nothing but pathlib.
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from pokewatch.run.folder import ATTEMPTS, INTERACTIVE, RunFolder

logger = logging.getLogger(__name__)

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

#: KPIs followed from run to run (precision, lift, forecast error against naive).
TREND_KPIS = ("buy_precision", "buy_lift", "sell_precision", "sell_lift", "mape_fair", "mape_naive")
#: The fields of one record, in order.
FIELDS = ["run_date", "state", "status", "published", "attempt", "path", "source", "started_at", "finished_at",
          "cards", "buy", "sell", "hold", "model", *TREND_KPIS, "mean_forward_return_buy",
          "mean_forward_return_sell", "failure", "report", "portfolio_value", "portfolio_pnl",
          "portfolio_currency", "alert", "failed_step"]
#: How a record names the source of an attempt whose manifest does not record one.
UNKNOWN_SOURCE = "unknown"


def read_json(path: Path) -> dict:
    """A JSON file as a dict; empty when it is missing or not valid JSON (logged)."""
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except (json.JSONDecodeError, OSError, UnicodeDecodeError):
        logger.warning("%s is not valid JSON; ignoring it", path)
        return {}


def published_dates(root: Path) -> list[str]:
    """Dates with a published run (a ``runs/<date>`` link that resolves), oldest first."""
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if _DATE_RE.match(p.name) and p.exists())


def attempts(root: Path) -> list[dict]:
    """Every attempt folder with a readable manifest: run_date, status, published, path and manifest.

    The records of :func:`pokewatch.run.runs.attempts`, without building a DataFrame.
    """
    folder = root / ATTEMPTS
    if not folder.is_dir():
        return []
    live = {(root / d).resolve() for d in published_dates(root)}
    rows = []
    for attempt in sorted(folder.iterdir()):
        manifest = read_json(RunFolder(attempt).manifest) or None
        if not manifest:
            continue
        rows.append({"run_date": manifest.get("run_date"), "status": manifest.get("status"),
                     "published": attempt.resolve() in live, "path": attempt, "manifest": manifest})
    return rows


def interactive_folders(root: Path) -> list[Path]:
    """``runs/interactive/<date>`` folders whose evaluate notebook finished, oldest first."""
    folder = root / INTERACTIVE
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _DATE_RE.match(p.name) and RunFolder(p).signals.exists())


def run_source(manifest: dict) -> str | None:
    """The source a run's manifest records (collect's, else evaluate's or train's parameter), or None."""
    parameters = manifest.get("parameters") or {}
    for step in ("collect", "evaluate", "train"):
        source = (parameters.get(step) or {}).get("source")
        if source:
            return str(source)
    return None


def record(folder: Path, manifest: dict, published: bool) -> dict:
    """One attempt as a record with :data:`FIELDS` (missing figures are None)."""
    files = RunFolder(folder)
    kpis = read_json(files.metrics).get("kpis", {})
    evaluate = manifest.get("steps", {}).get("evaluate", {})
    model = manifest.get("model") or {}
    failure = manifest.get("failure") or {}
    book = read_json(files.portfolio_summary)
    totals = (book.get("totals") or [{}])[0]
    status = manifest.get("status")
    state = ("published" if published else "superseded" if status == "success" else status or "unknown")
    return {
        "run_date": manifest.get("run_date") or folder.name[:10], "state": state, "status": status,
        "published": published, "attempt": folder.name, "path": folder,
        "source": run_source(manifest) or read_json(files.quality).get("source") or UNKNOWN_SOURCE,
        "started_at": manifest.get("started_at"), "finished_at": manifest.get("finished_at"),
        "cards": evaluate.get("cards"), "buy": evaluate.get("buy"), "sell": evaluate.get("sell"),
        "hold": evaluate.get("hold"),
        "model": f"{model['method']}({model['window']})" if model.get("method") else None,
        **{k: kpis.get(k) for k in (*TREND_KPIS, "mean_forward_return_buy", "mean_forward_return_sell")},
        "failure": (f"{failure.get('step')}: {failure.get('cell') or failure.get('error')}" if failure else None),
        "report": files.report.exists(),
        "portfolio_value": totals.get("value"), "portfolio_pnl": totals.get("pnl"),
        "portfolio_currency": totals.get("currency"), "alert": (manifest.get("alert") or {}).get("status"),
        "failed_step": failure.get("step") if failure else None,
    }


def records(root: Path, interactive: bool = False) -> list[dict]:
    """Every pipeline attempt (published, superseded, failed, running) as a record, oldest first.

    Args:
        root: the runs folder.
        interactive: also list ``runs/interactive/<date>`` folders (state ``interactive``).

    Returns:
        Records with :data:`FIELDS`; ``state`` is ``published`` (what ``runs/<date>``
        points at), ``superseded`` (an older success of that date), ``failed``,
        ``running`` or ``interactive``. Sorted by run date, then attempt.
    """
    rows = [record(Path(a["path"]), a["manifest"], bool(a["published"])) for a in attempts(root)]
    if interactive:
        for folder in interactive_folders(root):
            manifest = {"run_date": folder.name, "status": INTERACTIVE, **read_json(RunFolder(folder).manifest)}
            rows.append(record(folder, manifest, False) | {"state": INTERACTIVE})
    return sorted(rows, key=lambda r: (str(r["run_date"]), r["attempt"]))
