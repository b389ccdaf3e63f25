"""Small, real run folders for the analyst-facing tests (explore, report, portfolio, alerts, CLI).

A run built here has what the pipeline leaves, made by the same package functions on
a 60-series demo market in a fraction of a second: ``signals.csv``, ``metrics.json``,
``model.npz``, ``quality.json``, a manifest with step facts, optionally a valued
portfolio, and a tiny *executed* ``evaluate.ipynb`` (markdown, printed text, a log
line on stderr, an image, a path repr) for the report to render.
"""
from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import nbformat
import pandas as pd
from matplotlib.figure import Figure

from pokewatch import atomic
from pokewatch.analysis import portfolio, summary
from pokewatch.run import display, model_file, runs
from pokewatch.core.backtest import run_backtest
from pokewatch.data.demo_market import demo_prices
from pokewatch.core.model import FairValueModel
from pokewatch.core.rules import Rule
from pokewatch.core.signals import compute_signals
from pokewatch.run.folder import RunFolder

N_SERIES = 60
HISTORY_START = "2026-07-01"
CODE_MARKER = "print('this code must not show in the report')"
LOG_MARKER = "INFO pokewatch.test: a log line readers do not need"
#: A printed line the report's headline does not say, so the report must keep it.
NEWS = "BUY at deviation <= -10%, SELL at >= +15%, cards under $1.00 not flagged"


@lru_cache(maxsize=2)
def demo_history(n_series: int = N_SERIES, end: str = "2026-11-30") -> pd.DataFrame:
    """The demo market's prices from :data:`HISTORY_START` to ``end`` (cached per process)."""
    return demo_prices(HISTORY_START, end, n_series=n_series)


def _clean(obj):
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _png() -> bytes:
    fig = Figure(figsize=(2, 1))
    fig.add_subplot().plot([1, 2, 3], [1, 3, 2])
    return display.to_png(fig, dpi=40)


#: Tables as an evaluate notebook that does not use pokewatch.analysis.tables shows them (pandas' own HTML).
PANDAS_TABLES = {
    "kpis": pd.DataFrame({"KPI": ["BUY lift", "BUY precision"], "value": ["1.25x", "20.0%"]}).set_index("KPI")
    .to_html(),
    "candidates": pd.DataFrame({"card_id": ["bw1-3"], "market_price": [1.2], "fair_value": [1.04]}, index=[40])
    .style.format({"market_price": "{:.2f}"}).to_html(),
    "skipped rows": pd.DataFrame(columns=["line", "card_id", "reason"]).to_html(),
}


def _html_cell(page: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell("table", outputs=[nbformat.v4.new_output(
        "execute_result", execution_count=5, data={"text/html": page, "text/plain": "a table"})])


def executed_notebook(title: str = "Evaluate: a test run", printed: str = "") -> nbformat.NotebookNode:
    """An evaluate-like notebook as papermill leaves it, outputs included.

    Args:
        printed: text a cell prints (the evaluate notebook prints its summary paragraph).
    """
    import base64

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('run_date = "2026-11-28"', metadata={"tags": ["parameters"]})
    shown = nbformat.v4.new_code_cell(CODE_MARKER, outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="model rolling_mean(7), trained in this run\n"),
        nbformat.v4.new_output("stream", name="stderr", text=LOG_MARKER + "\n")])
    image = nbformat.v4.new_code_cell("fig", outputs=[nbformat.v4.new_output(
        "execute_result", execution_count=3,
        data={"image/png": base64.b64encode(_png()).decode(), "text/plain": "<Figure size 200x100 with 1 Axes>"})])
    path_repr = nbformat.v4.new_code_cell("ctx.write_csv('x.csv', frame)", outputs=[nbformat.v4.new_output(
        "execute_result", execution_count=4, data={"text/plain": "PosixPath('/somewhere/x.csv')"})])
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {title}"), params, shown,
                nbformat.v4.new_markdown_cell("## Plots\nWhat the plots show, in one line."), image, path_repr,
                nbformat.v4.new_markdown_cell("## Tables as pandas shows them"),
                *[_html_cell(page) for page in PANDAS_TABLES.values()]]
    if printed:
        nb.cells.insert(3, nbformat.v4.new_code_cell("print(text)", outputs=[
            nbformat.v4.new_output("stream", name="stdout", text=printed + "\n")]))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def make_run(runs_root: Path, run_date: str = "2026-11-28", *, publish: bool = True, holdings: str | None = None,
             notebook: bool = True, n_series: int = N_SERIES, history: pd.DataFrame | None = None) -> Path:
    """Build one finished attempt under ``runs_root`` (published unless told otherwise).

    Args:
        holdings: portfolio CSV text to value into the run (as the evaluate notebook does).
        notebook: write an executed ``evaluate.ipynb`` (needed to render a report).
        history: the price history to build the run from (default: the demo market's).
    """
    history = demo_history(n_series) if history is None else history
    history = history[history["date"] <= pd.Timestamp(run_date)]
    rule = Rule("rolling_mean", 7)
    signals = compute_signals(history, rule)
    model = FairValueModel(rule, trained_on=run_date).fit(history)
    today = model.predict_all(run_date)
    result = run_backtest(signals)
    kpis = result.kpis
    track = {"label": "out-of-sample (test fixture)", "horizon_days": 7, "target_return": 0.05,
             "first_flag_date": kpis.get("scored_from"), "last_flag_date": kpis.get("scored_to"), **result.direction}
    attempt = runs.start_run(run_date, {"collect": {"source": "demo"}, "evaluate": {"buy_threshold": 0.1}},
                             runs_root=runs_root)
    model_file.write(model_file.path_in(attempt), model)
    atomic.write_csv(RunFolder(attempt).signals, today.sort_values("deviation"))
    metrics = _clean({"run_date": run_date, "model": model.params, "kpis": kpis, "track_record": track})
    atomic.write_json(RunFolder(attempt).metrics, metrics)
    atomic.write_json(RunFolder(attempt).quality, {"completeness": 1.0, "validation": {"rows_rejected": 0}})
    counts = today["signal"].value_counts()
    runs.record_step(attempt, "evaluate", 1.5, {"signals": False}, cards=len(today),
                     **{s.lower(): int(counts.get(s, 0)) for s in ("BUY", "HOLD", "SELL")})
    runs.update_manifest(attempt, model={"trained_on": run_date, "method": model.method, "window": model.window})
    if holdings is not None:
        book = portfolio.build(portfolio.parse_holdings(holdings), history, today, run_date,
                               path=Path(portfolio.OWN))
        portfolio.write_outputs(book, attempt)
    if notebook:
        quality = {"completeness": 1.0, "validation": {"rows_rejected": 0}}
        printed = summary.plain_summary(metrics, today, quality) + "\n" + NEWS
        nbformat.write(executed_notebook(printed=printed), str(RunFolder(attempt).notebook("evaluate")))
    if publish:
        runs.publish(attempt, runs_root)
    return attempt


def failed_run(runs_root: Path, run_date: str, step: str = "evaluate") -> Path:
    """An attempt that failed at ``step``, its executed notebook kept."""
    attempt = runs.start_run(run_date, runs_root=runs_root)
    nbformat.write(executed_notebook(), str(RunFolder(attempt).notebook(step)))
    runs.fail(attempt, step, "exit status 1", "cell 3 (In [2]): ValueError: boom")
    return attempt


def held_cards(n: int = 3, run_date: str = "2026-11-28") -> pd.DataFrame:
    """``n`` series of the demo history priced at least $1 on ``run_date`` (for portfolios)."""
    day = demo_history()
    day = day[(day["date"] == pd.Timestamp(run_date)) & (day["market_price"] >= 1)]
    return day.drop_duplicates("card_id").head(n)[["card_id", "variant", "market_price", "name"]]


def manifest(folder: Path) -> dict:
    return json.loads(RunFolder(folder).manifest.read_text())
