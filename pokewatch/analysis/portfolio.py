"""A collector's cards valued with a run's prices: value over time, profit and loss, signals.

Why: collectors ask "what is my collection worth, and should I sell anything?". The
evaluate step already has every card's price history and today's signal, so valuing
a list of held cards costs a merge, not another data source.

The holdings file, ``portfolio.csv`` (one row per purchase lot; see
``portfolio.example.csv`` and ``docs/analyst_guide.md``):

================ ========= ===============================================================
column           required  meaning
================ ========= ===============================================================
card_id          yes       card id as in ``signals.csv`` (``sv3pt5-199``); case is ignored
variant          no        printing (``Holofoil``, ``Reverse Holofoil`` ...); may be empty
                           when the card has a single printing in the run
quantity         yes       whole number of copies, 1 or more
purchase_price   yes       price paid per copy, in the series' currency, 0 or more
                           (a leading ``$``/``€`` and thousands commas are accepted)
purchase_date    no        ``YYYY-MM-DD``; empty means held since before the price history
currency         no        ``USD`` (default) or ``EUR``
note             no        free text, ignored
================ ========= ===============================================================

Blank lines and lines starting with ``#`` are ignored. A bad row (unknown card or
variant, a quantity or price that is not a valid number, an unreadable date, a
purchase after the run date) is skipped and reported with its line number and a
reason in :attr:`PortfolioBook.rejected`; it never fails a run. A missing or
unreadable file is reported the same way, as a note.

Valuation: a lot is worth ``quantity x`` the series' latest market price on or before
each day (the last observation carried forward). Before a series' first observation
in the history window its first price is used. Profit and loss is value minus
``quantity x purchase_price``; lots are valued from their purchase date on.

Which file a run uses (:func:`resolve_path`, the evaluate notebook's ``portfolio_file``
parameter, default ``auto``): ``$POKEWATCH_PORTFOLIO`` if set, else ``portfolio.csv``
at the project root if present, else, for the offline ``demo`` source only,
``portfolio.example.csv`` so that a fresh clone's ``make pipeline`` shows a portfolio.
"""
from __future__ import annotations

import csv
import io
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pokewatch import atomic, config
from pokewatch.run import runs
from pokewatch.run.folder import RunFolder
from pokewatch.analysis import summary
from pokewatch.core.frame import first_day_of, history_of_cards, rows_of_cards
from pokewatch.core.schema import CURRENCIES, SERIES_KEY

logger = logging.getLogger(__name__)

PORTFOLIO_ENV = "POKEWATCH_PORTFOLIO"
EXAMPLE = "portfolio.example.csv"
#: The collector's own holdings file at the project root (git-ignored), used by ``auto``.
OWN = "portfolio.csv"
HOLDING_COLUMNS = ["card_id", "variant", "quantity", "purchase_price", "purchase_date", "currency", "note"]
REQUIRED = ("card_id", "quantity", "purchase_price")
#: Why a portfolio row was skipped (the first rule a row breaks, in this order).
REJECT_REASONS = {
    "missing_card_id": "card_id is empty",
    "bad_quantity": "quantity is not a whole number of 1 or more",
    "bad_purchase_price": "purchase_price is not a number of 0 or more",
    "bad_purchase_date": "purchase_date is not a YYYY-MM-DD date",
    "bad_currency": f"currency is not one of {sorted(CURRENCIES)}",
    "unknown_card": "card_id is not in this run's prices",
    "unknown_variant": "the card has no such printing in this run's prices",
    "ambiguous_variant": "variant is empty but the card has several printings",
    "bought_after_run_date": "purchase_date is after the run date, so it is not held yet",
}
POSITION_COLUMNS = ["line", "card_id", "name", "set_name", "variant", "currency", "quantity", "purchase_price",
                    "purchase_date", "cost", "market_price", "price_date", "value", "pnl", "pnl_pct",
                    "value_change_1d", "value_change_7d", "fair_value", "deviation", "signal"]
VALUE_COLUMNS = ["date", "currency", "value", "cost", "pnl"]
#: Amounts of money, rounded to cents in every output.
MONEY = ("cost", "value", "pnl", "value_change_1d", "value_change_7d")


# -- which file ------------------------------------------------------------------------------
def resolve_path(setting: str = "auto", source: str = "demo") -> Path | None:
    """The holdings file a run should use, or None for no portfolio.

    Args:
        setting: ``auto`` (see the module docstring), ``none`` or empty for no
            portfolio, or a path; a relative path is looked up in the project root,
            then in the current directory.
        source: the run's price source; only ``demo`` falls back to the example file.
    """
    text = str(setting or "").strip()
    if text.lower() in ("", "none", "off", "no"):
        return None
    if text.lower() == "auto":
        if os.environ.get(PORTFOLIO_ENV):
            return Path(os.environ[PORTFOLIO_ENV]).expanduser()
        own = config.PROJECT_ROOT / OWN
        if own.exists():
            return own
        return config.PROJECT_ROOT / EXAMPLE if source == "demo" else None
    path = Path(text).expanduser()
    if path.is_absolute():
        return path
    for base in (config.PROJECT_ROOT, Path.cwd()):
        if (base / path).exists():
            return base / path
    return config.PROJECT_ROOT / path


# -- reading ---------------------------------------------------------------------------------
def parse_holdings(text: str) -> pd.DataFrame:
    """Holdings CSV text as strings, one row per lot, with its 1-based ``line`` in the file.

    Column names are matched case-insensitively (``Purchase Price`` works). Missing
    optional columns are added empty.

    Raises:
        ValueError: the header lacks a required column (the message names it).
    """
    numbered = [(n, line) for n, line in enumerate(text.splitlines(), start=1)
                if line.strip() and not line.lstrip().startswith("#")]
    if not numbered:
        return pd.DataFrame(columns=["line", *HOLDING_COLUMNS])
    records = list(csv.reader(io.StringIO("\n".join(line for _, line in numbered))))
    header = [h.strip().lower().replace(" ", "_") for h in records[0]]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ValueError(f"the header has no {', '.join(missing)} column(s); expected columns: "
                         f"{', '.join(HOLDING_COLUMNS)}")
    width = len(header)
    rows = [(r + [""] * width)[:width] for r in records[1:]]
    frame = pd.DataFrame(rows, columns=header, dtype="string")
    frame.insert(0, "line", [n for n, _ in numbered[1:]])
    for column in HOLDING_COLUMNS:
        if column not in frame:
            frame[column] = ""
    frame[HOLDING_COLUMNS] = frame[HOLDING_COLUMNS].fillna("").apply(lambda s: s.str.strip())
    return frame[["line", *HOLDING_COLUMNS]]


# -- validating --------------------------------------------------------------------------------
def _number(text: pd.Series) -> pd.Series:
    cleaned = text.str.replace(r"^[\$€]\s*", "", regex=True)
    thousands = cleaned.str.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?").fillna(False)
    cleaned = cleaned.where(~thousands, cleaned.str.replace(",", "", regex=False))
    return pd.to_numeric(cleaned.where(cleaned != "", None), errors="coerce").astype("float64")


def check_holdings(raw: pd.DataFrame, known: pd.DataFrame, run_date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split parsed holdings into valid lots and rejected rows with a reason and detail.

    Args:
        raw: :func:`parse_holdings` output.
        known: the run's series (card_id, variant, currency; e.g. today's signals).
        run_date: lots bought after this day are rejected as not held yet.

    Returns:
        ``(holdings, rejected)``. ``holdings`` has canonical card_id/variant/currency,
        int ``quantity``, float ``purchase_price`` and datetime ``purchase_date`` (NaT
        when empty). ``rejected`` keeps the raw row plus ``reason`` and ``detail``.
    """
    frame = raw.copy()
    frame["currency"] = frame["currency"].where(frame["currency"] != "", "USD").str.upper()
    quantity = _number(frame["quantity"])
    price = _number(frame["purchase_price"])
    date = pd.to_datetime(frame["purchase_date"], format="%Y-%m-%d", errors="coerce")
    # Only the holdings' cards: the string work below then costs nothing at 45,000 series.
    wanted = frame["card_id"].astype("string").str.casefold().unique()
    near = known["card_id"].astype("string").str.casefold().isin(wanted).to_numpy(dtype=bool, na_value=False)
    series = known.loc[near, SERIES_KEY].drop_duplicates().astype("string")
    id_of = dict(zip(series["card_id"].str.casefold(), series["card_id"]))
    card = frame["card_id"].astype("string").str.casefold().map(id_of).astype("string")
    variants = series.assign(v=series["variant"].str.casefold())
    variant_of = {(c, cur, v): orig for c, cur, v, orig in
                  zip(variants["card_id"], variants["currency"], variants["v"], variants["variant"])}
    printings = series.groupby(["card_id", "currency"])["variant"].agg(lambda v: ", ".join(sorted(v)))
    listed = pd.Series(list(zip(card.fillna(""), frame["currency"])), index=frame.index,
                       dtype=object).map(printings.to_dict()).astype("string")
    only = listed.where(~listed.fillna(",").str.contains(",", regex=False))
    chosen = pd.Series([variant_of.get((c, cur, v.casefold())) for c, cur, v in
                        zip(card.fillna(""), frame["currency"], frame["variant"])], index=frame.index, dtype="string")
    variant = chosen.where(frame["variant"] != "", only)

    reason = pd.Series(pd.NA, index=frame.index, dtype="string")
    detail = pd.Series(pd.NA, index=frame.index, dtype="string")

    def mark(mask, why: str, text) -> None:
        hit = pd.Series(mask, index=frame.index).fillna(False).astype(bool) & reason.isna()
        reason[hit] = why
        detail[hit] = text[hit] if isinstance(text, pd.Series) else text

    mark(frame["card_id"] == "", "missing_card_id", "card_id is empty")
    mark(quantity.isna() | (quantity < 1) | (quantity != quantity.round()), "bad_quantity",
         "quantity " + frame["quantity"].map(repr) + " is not a whole number of 1 or more")
    mark(price.isna() | (price < 0) | ~np.isfinite(price.fillna(0)), "bad_purchase_price",
         "purchase_price " + frame["purchase_price"].map(repr) + " is not a number of 0 or more")
    mark((frame["purchase_date"] != "") & date.isna(), "bad_purchase_date",
         "purchase_date " + frame["purchase_date"].map(repr) + " is not a YYYY-MM-DD date")
    mark(~frame["currency"].isin(CURRENCIES), "bad_currency",
         "currency " + frame["currency"].map(repr) + f" is not one of {sorted(CURRENCIES)}")
    mark(card.isna(), "unknown_card", "card " + frame["card_id"].map(repr) + " is not in this run's prices")
    mark((frame["variant"] != "") & variant.isna(), "unknown_variant",
         "card " + card.fillna("") + " has no " + frame["variant"].map(repr) + " printing; it has "
         + listed.fillna("none in " + frame["currency"]))
    mark(variant.isna(), "ambiguous_variant",
         "variant is empty but card " + card.fillna("") + " has " + listed.fillna("") + "; say which")
    mark(date > pd.Timestamp(run_date), "bought_after_run_date",
         "purchase_date " + frame["purchase_date"] + f" is after the run date {pd.Timestamp(run_date):%Y-%m-%d}")

    bad = reason.notna()
    rejected = raw[bad].assign(reason=reason[bad], detail=detail[bad]).reset_index(drop=True)
    holdings = pd.DataFrame({
        "line": frame["line"], "card_id": card, "variant": variant, "currency": frame["currency"],
        "quantity": quantity, "purchase_price": price, "purchase_date": date, "note": frame["note"],
    })[~bad].reset_index(drop=True)
    holdings["quantity"] = holdings["quantity"].astype("int64")
    if bad.any():
        logger.warning("portfolio: skipped %d of %d row(s): %s", int(bad.sum()), len(frame),
                       "; ".join(f"line {n}: {d}" for n, d in zip(rejected["line"], rejected["detail"])))
    return holdings, rejected


# -- valuing -----------------------------------------------------------------------------------
def price_panel(prices: pd.DataFrame, holdings: pd.DataFrame, start, end) -> pd.DataFrame:
    """Daily prices of the held series from ``start`` to ``end``: one column per lot.

    The last observation is carried forward; days before a series' first observation
    in ``prices`` take that first price.
    """
    held = holdings[SERIES_KEY].drop_duplicates()
    # Narrow to the held cards before any string work: prices can be millions of rows.
    mine = rows_of_cards(prices, held["card_id"].dropna())
    rows = prices.loc[mine, [*SERIES_KEY, "date", "market_price"]].astype({k: "string" for k in SERIES_KEY})
    rows = rows.merge(held.astype("string"), on=SERIES_KEY, how="inner", validate="m:1")
    wide = rows.pivot_table(index="date", columns=SERIES_KEY, values="market_price", aggfunc="last")
    first = min(pd.Timestamp(start), wide.index.min()) if len(wide) else pd.Timestamp(start)
    days = pd.date_range(first, pd.Timestamp(end), freq="D")
    wide = wide.reindex(days).ffill().bfill()
    lots = pd.MultiIndex.from_frame(holdings[SERIES_KEY].astype("string"))
    return wide.reindex(columns=lots).loc[pd.Timestamp(start):]


def _start(holdings: pd.DataFrame, first_price: pd.Timestamp) -> pd.Timestamp:
    bought = holdings["purchase_date"].min()
    return max(bought, first_price) if pd.notna(bought) and holdings["purchase_date"].notna().all() \
        else first_price


def value_over_time(holdings: pd.DataFrame, prices: pd.DataFrame, end, since=None) -> pd.DataFrame:
    """The portfolio's market value, cost and P&L per currency for every day up to ``end``.

    Starts at the first purchase (or the start of the price history when a lot has no
    purchase date or was bought before it; ``since`` when ``prices`` were narrowed to the
    held cards and the history starts earlier). Columns: :data:`VALUE_COLUMNS`.
    """
    if holdings.empty:
        return pd.DataFrame(columns=VALUE_COLUMNS)
    start = _start(holdings, prices["date"].min() if since is None or pd.isna(since) else pd.Timestamp(since))
    panel = price_panel(prices, holdings, start, end)
    dates = panel.index.to_numpy()
    bought = holdings["purchase_date"].to_numpy(dtype="datetime64[ns]")
    bought = np.where(np.isnat(bought), np.datetime64("1900-01-01", "ns"), bought)  # no date: held throughout
    held = dates[:, None] >= bought[None, :]
    quantity = holdings["quantity"].to_numpy(float)
    value = np.where(held, panel.to_numpy(float) * quantity, 0.0)
    cost = np.where(held, holdings["purchase_price"].to_numpy(float) * quantity, 0.0)
    currency = holdings["currency"].to_numpy()
    frames = []
    for name, data in (("value", value), ("cost", cost)):
        wide = pd.DataFrame(data, index=panel.index, columns=currency).T.groupby(level=0).sum().T
        frames.append(wide.stack().rename(name))
    out = pd.concat(frames, axis=1).rename_axis(["date", "currency"]).reset_index()
    return out.assign(pnl=out["value"] - out["cost"])[VALUE_COLUMNS].round({k: 2 for k in MONEY})


def positions(holdings: pd.DataFrame, prices: pd.DataFrame, today: pd.DataFrame, run_date) -> pd.DataFrame:
    """Each lot's cost, value, profit and loss, recent change and the card's signal today.

    Args:
        holdings: valid lots from :func:`check_holdings`.
        prices: price history (long format, at least the last 8 days).
        today: the run's signals (``signals.csv``): price, fair value, deviation, signal.
        run_date: the day valued.

    Returns:
        One row per lot with :data:`POSITION_COLUMNS`. ``value_change_1d`` and ``_7d``
        are the lot's value change since 1 and 7 days before the run date.
    """
    if holdings.empty:
        return pd.DataFrame(columns=POSITION_COLUMNS)
    day = pd.Timestamp(run_date)
    held = rows_of_cards(today, holdings["card_id"].dropna())   # only the held cards reach the string work
    columns = [*SERIES_KEY, "name", "set_name", "market_price", "date", "fair_value", "deviation", "signal"]
    current = today.loc[held, columns].rename(columns={"date": "price_date"}).astype({k: "string" for k in SERIES_KEY})
    lots = holdings.astype({k: "string" for k in SERIES_KEY}).merge(current, on=SERIES_KEY, how="left",
                                                                     validate="m:1")
    panel = price_panel(prices, holdings, day - pd.Timedelta(days=7), day).to_numpy(float)
    now = lots["market_price"].to_numpy(float)
    lots["cost"] = lots["quantity"] * lots["purchase_price"]
    lots["value"] = lots["quantity"] * lots["market_price"]
    lots["pnl"] = lots["value"] - lots["cost"]
    lots["pnl_pct"] = (lots["pnl"] / lots["cost"]).where(lots["cost"] > 0)
    if len(panel) >= 8:
        lots["value_change_1d"] = lots["quantity"] * (now - panel[-2])
        lots["value_change_7d"] = lots["quantity"] * (now - panel[0])
    else:
        lots["value_change_1d"] = lots["value_change_7d"] = np.nan
    return lots[POSITION_COLUMNS].round({k: 2 for k in MONEY})


def totals(lots: pd.DataFrame) -> pd.DataFrame:
    """Totals per currency: lots, cards, cost, value, pnl, pnl_pct and value_change_1d/_7d."""
    columns = ["currency", "lots", "cards", "cost", "value", "pnl", "pnl_pct", "value_change_1d",
               "value_change_7d"]
    if lots.empty:
        return pd.DataFrame(columns=columns)
    grouped = lots.groupby("currency", sort=True)
    out = grouped[["cost", "value", "pnl", "value_change_1d", "value_change_7d"]].sum(min_count=1)
    out["lots"] = grouped.size()
    out["cards"] = grouped["quantity"].sum()
    out = out.round({k: 2 for k in MONEY})
    out["pnl_pct"] = (out["pnl"] / out["cost"]).where(out["cost"] > 0)
    return out.reset_index()[columns]


def movers(lots: pd.DataFrame, n: int = 3) -> pd.DataFrame:
    """The ``n`` lots whose value changed most (either way) since the day before."""
    moved = lots[lots["value_change_1d"].fillna(0) != 0]
    return moved.loc[moved["value_change_1d"].abs().sort_values(ascending=False).index[:n]]


# -- the whole book ----------------------------------------------------------------------------
@dataclass
class PortfolioBook:
    """A run's view of a portfolio: lots, rejected rows, values over time and totals."""

    path: Path | None
    run_date: str
    holdings: pd.DataFrame = field(repr=False)
    rejected: pd.DataFrame = field(repr=False)
    positions: pd.DataFrame = field(repr=False)
    value: pd.DataFrame = field(repr=False)
    totals: pd.DataFrame = field(repr=False)
    notes: list[str] = field(default_factory=list)
    _figure: object = field(default=None, init=False, repr=False, compare=False)

    @property
    def empty(self) -> bool:
        return self.positions.empty

    def value_figure(self):
        """:func:`pokewatch.analysis.plots.portfolio_value` of this book, drawn once (saved and shown)."""
        from pokewatch.analysis import plots  # matplotlib only when a book is drawn

        if self._figure is None:
            self._figure = plots.portfolio_value(self.value)
        return self._figure

    def summary(self) -> str:
        """What a person needs to know: which file, its worth and P&L, what was skipped."""
        if self.path is None:
            return ("No portfolio: put your cards in portfolio.csv at the project root (format in "
                    "docs/analyst_guide.md), or pass portfolio_file.")
        text = summary.portfolio_sentence(self.totals, len(self.rejected), label=f"Portfolio ({self.path.name})")
        if len(self.rejected):
            text += " Skipped: " + "; ".join(f"line {n}: {d}" for n, d in
                                             zip(self.rejected["line"], self.rejected["detail"]))
        if self.notes:
            text += " " + " ".join(self.notes)
        return text

    def to_json(self) -> dict:
        return {"file": str(self.path) if self.path else None, "run_date": self.run_date,
                "lots": len(self.positions), "rejected": len(self.rejected), "notes": self.notes,
                "totals": _records(self.totals), "movers": _records(movers(self.positions)[
                    ["card_id", "name", "variant", "currency", "quantity", "value", "value_change_1d"]])}


def _records(frame: pd.DataFrame) -> list[dict]:
    out = []
    for record in frame.to_dict(orient="records"):
        out.append({k: (None if isinstance(v, float) and math.isnan(v) else
                        v.item() if isinstance(v, np.generic) else v) for k, v in record.items()})
    return out


def build(raw: pd.DataFrame, prices: pd.DataFrame, today: pd.DataFrame, run_date,
          path: Path | None = None, notes: list[str] | None = None) -> PortfolioBook:
    """Value parsed holdings (:func:`parse_holdings`) with a run's prices and signals.

    ``prices`` is the price history as a long table, or the evaluate step's
    :class:`~pokewatch.core.signals.SignalHistory`, which reads only the held cards' rows.
    """
    day = f"{pd.Timestamp(run_date):%Y-%m-%d}"
    holdings, rejected = check_holdings(raw, today, day)
    since = first_day_of(prices)
    if len(holdings):
        prices = history_of_cards(prices, holdings["card_id"].dropna())   # the held cards' rows only from here on
    lots = positions(holdings, prices, today, day)
    return PortfolioBook(path, day, holdings, rejected, lots, value_over_time(holdings, prices, day, since=since),
                         totals(lots), list(notes or []))


def evaluate(path: Path | str | None, prices: pd.DataFrame, today: pd.DataFrame, run_date) -> PortfolioBook:
    """Read the holdings file at ``path`` and value it; never raises for a bad file or row.

    A missing or unreadable file gives an empty book with a note saying why.
    """
    notes: list[str] = []
    raw = parse_holdings("")
    if path is not None:
        path = Path(path)
        try:
            raw = parse_holdings(path.read_text(encoding="utf-8-sig"))
        except FileNotFoundError:
            notes.append(f"Portfolio file {path} does not exist; no portfolio was valued.")
        except (OSError, UnicodeDecodeError, ValueError, csv.Error) as exc:
            notes.append(f"Portfolio file {path} could not be read ({exc}); no portfolio was valued.")
        for note in notes:
            logger.warning(note)
    return build(raw, prices, today, run_date, path, notes)


def style_positions(lots: pd.DataFrame):
    """A pandas Styler of the P&L table: money, percentages, and gains green, losses red."""
    columns = ["name", "card_id", "variant", "quantity", "purchase_price", "purchase_date", "market_price",
               "value", "pnl", "pnl_pct", "value_change_1d", "signal", "deviation"]

    def tone(value) -> str:
        if not isinstance(value, (int, float)) or pd.isna(value) or value == 0:
            return ""
        return "color: #1a9850" if value > 0 else "color: #d73027"

    money_format = "{:,.2f}"
    return (lots[columns].style.hide(axis="index")
            .format({"purchase_price": money_format, "market_price": money_format, "value": money_format,
                     "pnl": "{:+,.2f}", "pnl_pct": "{:+.1%}", "value_change_1d": "{:+,.2f}",
                     "deviation": "{:+.1%}", "purchase_date": lambda d: "" if pd.isna(d) else f"{d:%Y-%m-%d}"},
                    na_rep="n/a", escape="html")
            .map(tone, subset=["pnl", "pnl_pct", "value_change_1d"]))


def write_outputs(book: PortfolioBook, run_dir: Path | str) -> list[Path]:
    """Write the book into a run folder and note it in the manifest.

    Writes ``portfolio.csv`` (one row per lot), ``portfolio_value.csv``,
    ``portfolio.json`` (totals, movers, notes), ``portfolio_rejected.csv`` when rows
    were skipped, and ``plots/portfolio_value.png``. Nothing is written when no
    portfolio file was configured.
    """
    from pokewatch.analysis import plots  # matplotlib only when a book is written

    if book.path is None:
        return []
    run_dir = Path(run_dir)
    folder = RunFolder(run_dir)
    written = [atomic.write_csv(folder.portfolio, book.positions),
               atomic.write_csv(folder.portfolio_value, book.value),
               atomic.write_json(folder.portfolio_summary, book.to_json())]
    if len(book.rejected):
        written.append(atomic.write_csv(folder.portfolio_rejected, book.rejected))
    if not book.value.empty:
        written.append(plots.save(book.value_figure(), folder.plot("portfolio_value")))
    runs.update_manifest(run_dir, portfolio={"file": str(book.path), "lots": len(book.positions),
                                             "rejected": len(book.rejected)})
    return written
