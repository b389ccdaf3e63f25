"""The decisions and bookkeeping behind ``scripts/run_pipeline.sh``, in testable Python.

The bash script stays a readable list of steps; everything that needs parsing or
a judgement lives here and is called as ``python -m pokewatch.pipeline COMMAND``:

* ``plan``          validate ``--param NAME=VALUE`` against the parameters each notebook
                    declares (papermill's own inspection) and their allowed ranges, before
                    anything runs; write one papermill parameters file per notebook.
* ``start``         create the attempt folder and its manifest.
* ``should-train``  Mondays, when no model exists on or before the date, or when forced.
* ``fail``          mark the attempt failed, naming the notebook and the cell that failed.
* ``finish``        render ``report.html``, publish the attempt, print the day's BUY/SELL
                    counts and the steps that hit the cache, regenerate ``runs/index.html``
                    and post the webhook alert when ``POKEWATCH_WEBHOOK_URL`` is set.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import pandas as pd
import yaml

from pokewatch import atomic, config, params, runs
from pokewatch.errors import ParameterError, PokeWatchError
from pokewatch.sources import get_source

logger = logging.getLogger(__name__)

NOTEBOOKS = ("collect", "train", "evaluate")
_CASTS = {"int": int, "float": float, "str": str, "bool": lambda v: str(v).lower() in ("1", "true", "yes")}


def declared_parameters(notebook: str) -> dict[str, dict]:
    """Parameters a notebook declares in its ``parameters`` cell: name -> {type, default, help}."""
    import papermill  # noqa: PLC0415 - slow import, only needed when planning

    path = config.NOTEBOOKS_DIR / f"{notebook}.ipynb"
    return papermill.inspect_notebook(str(path))


def _cast(name: str, raw: str, declared: dict) -> object:
    kind = (declared.get("inferred_type_name") or "str").strip()
    cast = _CASTS.get(kind, str)
    try:
        return cast(raw)
    except ValueError:
        raise ParameterError(f"parameter {name} must be of type {kind}, got {raw!r}") from None


def plan(run_date: str, source: str, overrides: list[str], *, backfill: str = "", archives: str = "") -> dict:
    """Per-notebook papermill parameters, validated.

    Raises:
        ParameterError: malformed ``NAME=VALUE``, a name no notebook declares, a value of the
            wrong type or out of range; the message names the parameter.
    """
    date = params.run_date("--date", run_date)
    common: dict[str, object] = {"run_date": date, "source": source}
    if backfill:
        if ".." not in backfill:
            raise ParameterError(f"--backfill must be FROM..TO (YYYY-MM-DD..YYYY-MM-DD), got {backfill!r}")
        start, end = backfill.split("..", 1)
        common["backfill_from"] = params.run_date("--backfill FROM", start)
        common["run_date"] = date = params.run_date("--backfill TO", end)
        if common["backfill_from"] > date:
            raise ParameterError(f"--backfill {backfill}: FROM is after TO")
    if archives:
        common["archives"] = archives
    declared = {nb: declared_parameters(nb) for nb in NOTEBOOKS}
    known = sorted({name for spec in declared.values() for name in spec})
    requested: dict[str, str] = {}
    for item in overrides:
        if "=" not in item:
            raise ParameterError(f"--param expects NAME=VALUE, got {item!r}")
        name, raw = item.split("=", 1)
        name = name.strip()
        if name in ("run_dir",):
            raise ParameterError(f"parameter {name} is set by the pipeline itself")
        if name not in known:
            raise ParameterError(f"unknown parameter {name!r}; the notebooks declare: {', '.join(known)}")
        requested[name] = raw
    plans: dict[str, dict] = {}
    for nb, spec in declared.items():
        values = {k: v for k, v in common.items() if k in spec}
        for name, raw in requested.items():
            if name in spec:
                values[name] = params.check(name, _cast(name, raw, spec[name]))
        plans[nb] = values
    get_source(source)  # an unknown source fails here, before any notebook runs
    return {"run_date": date, "notebooks": plans}


def should_train(run_date: str, force: bool = False) -> tuple[bool, str]:
    """Train on Mondays, when no usable model exists yet, or when forced."""
    if force:
        return True, "forced with --force-train"
    if pd.Timestamp(run_date).day_of_week == 0:
        return True, "Monday: weekly training"
    if runs.find_model(run_date) is None:
        return True, f"no model trained on or before {run_date} yet"
    return False, f"using the model of {runs.find_model(run_date).parent.name}"


def failing_cell(notebook_path: Path) -> str | None:
    """'cell N (In [k]): ErrorName: message' for the first cell papermill marked as failed."""
    import nbformat  # noqa: PLC0415 - only needed after a failure

    if not notebook_path.exists():
        return None
    nb = nbformat.read(str(notebook_path), as_version=4)
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                count = cell.get("execution_count")
                return f"cell {index} (In [{count}]): {output.get('ename')}: {output.get('evalue')}"
    return None


def _counts(run_dir: Path) -> dict[str, int]:
    signals = run_dir / "signals.csv"
    if not signals.exists():
        return {}
    return pd.read_csv(signals, usecols=["signal"])["signal"].value_counts().to_dict()


def _cache_summary(manifest: dict) -> str:
    """'evaluate: signals hit, backtest hit; train: train miss' from the manifest's steps."""
    parts = []
    for step, info in manifest.get("steps", {}).items():
        hits = info.get("cache_hits") or {}
        if hits:
            parts.append(f"{step}: " + ", ".join(f"{name} {'hit' if hit else 'miss'}" for name, hit in hits.items()))
    return "; ".join(parts) or "no cached steps ran"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pokewatch.pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plan", help="validate parameters; print the plan as JSON")
    p.add_argument("--date", default="today")
    p.add_argument("--source", default="demo")
    p.add_argument("--param", action="append", default=[])
    p.add_argument("--backfill", default="")
    p.add_argument("--archives", default="")
    p.add_argument("--out", help="write the plan JSON here")
    s = sub.add_parser("start", help="create an attempt folder from a plan; print its path")
    s.add_argument("plan_file")
    t = sub.add_parser("should-train")
    t.add_argument("--date", required=True)
    t.add_argument("--force", action="store_true")
    t.add_argument("--attempt")
    f = sub.add_parser("fail")
    f.add_argument("--attempt", required=True)
    f.add_argument("--step", required=True)
    f.add_argument("--notebook")
    f.add_argument("--message", default="")
    d = sub.add_parser("finish")
    d.add_argument("--attempt", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _dispatch(args)
    except PokeWatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _dispatch(args) -> int:
    if args.command == "plan":
        result = plan(args.date, args.source, args.param, backfill=args.backfill, archives=args.archives)
        text = json.dumps(result, indent=2)
        if args.out:
            atomic.write_text(args.out, text)
        print(result["run_date"])
        return 0
    if args.command == "start":
        spec = json.loads(Path(args.plan_file).read_text())
        attempt = runs.start_run(spec["run_date"], spec["notebooks"])
        for nb, values in spec["notebooks"].items():
            atomic.write_text(attempt / "params" / f"{nb}.yaml",
                              yaml.safe_dump({**values, "run_dir": str(attempt)}, sort_keys=True))
        print(attempt)
        return 0
    if args.command == "should-train":
        train, reason = should_train(args.date, args.force)
        if args.attempt:
            runs.update_manifest(Path(args.attempt), training={"trained": train, "reason": reason})
        print(f"{'yes' if train else 'no'}: {reason}")
        return 0 if train else 1
    if args.command == "fail":
        cell = failing_cell(Path(args.notebook)) if args.notebook else None
        runs.fail(Path(args.attempt), args.step, args.message or "step failed", cell)
        print(f"{args.step} failed" + (f" at {cell}" if cell else "") + f"; kept in {args.attempt}")
        _refresh_index()
        return 0
    if args.command == "finish":
        attempt = Path(args.attempt)
        _render_report(attempt)
        link = runs.publish(attempt)
        counts = _counts(attempt)
        print(f"run folder: {link} -> {attempt.name}; BUY {counts.get('BUY', 0)}, SELL {counts.get('SELL', 0)}, "
              f"HOLD {counts.get('HOLD', 0)}")
        print(f"cache: {_cache_summary(runs.read_manifest(attempt))}")
        index = _refresh_index()
        if (attempt / "report.html").exists():
            print(f"report: {link / 'report.html'}" + (f"; all runs: {index}" if index else ""))
        _send_alert(attempt, link)
        return 0
    return 1


# -- after a run: report, index of runs, alert (none of them can fail a run) ------------------
def _render_report(attempt: Path) -> None:
    """Render report.html into the attempt before it is published; a failure is recorded, not raised."""
    from pokewatch import report  # nbconvert only when finishing

    try:
        path = report.render_report(attempt)
        runs.update_manifest(attempt, report={"status": "rendered", "file": path.name})
    except Exception as exc:  # noqa: BLE001 - a report problem must not hold back a good run
        logger.warning("could not render the report of %s: %s: %s", attempt.name, type(exc).__name__, exc)
        runs.update_manifest(attempt, report={"status": "failed", "error": f"{type(exc).__name__}: {exc}"})


def _refresh_index() -> Path | None:
    """Regenerate runs/index.html; a failure is logged, never raised."""
    from pokewatch import report

    try:
        return report.write_index()
    except Exception as exc:  # noqa: BLE001 - the index is a convenience
        logger.warning("could not regenerate %s: %s: %s", config.runs_dir() / "index.html", type(exc).__name__, exc)
        return None


def _send_alert(attempt: Path, link: Path) -> None:
    """Post the webhook alert when POKEWATCH_WEBHOOK_URL is set; the outcome goes in the manifest."""
    from pokewatch import alerts

    report_path = link / "report.html"
    result = alerts.notify_run(attempt, report=str(report_path) if report_path.exists() else None)
    if result is not None:
        print(f"alert to {result.target}: " + ("sent" if result.ok else
                                                f"FAILED after {result.attempts} attempt(s): {result.error}"))


if __name__ == "__main__":
    sys.exit(main())
