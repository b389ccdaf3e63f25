"""Tables for people: money as ``$1,234.56``, changes as ``+12.3%``, human headers, no index column.

Why this module exists: the report, the run index, the explore notebook and the
terminal all show the same frames (a day's signals, a comparison of two runs, the
run history, a portfolio). A raw DataFrame shows its pandas index, ``snake_case``
headers, ``0.1234`` for 12.3% and ``<NA>`` for a missing value. Here each column
is formatted once, by what it holds, and rendered three ways:

* :func:`to_html`: a ``<table class="pw-table">`` inside a horizontally scrolling
  ``<div>``, so a wide table never widens the page (phones included);
* :func:`to_rich`: an aligned :mod:`rich` table for the terminal;
* :func:`show`: what a notebook cell returns, a :class:`Table` (HTML in Jupyter and
  in reports rendered from it, aligned text elsewhere), or a one-line :class:`Note`
  when there is nothing to show ("none today").

A column's header and format come from :data:`COLUMNS` by name; an unknown column
gets a readable header and a format from its dtype. Missing values show as
:data:`MISSING`, never ``nan``, ``NaN`` or ``<NA>``.

Card names and links are made in one place, :func:`card_labels` and
:func:`card_links`, so the sources' own display names and product pages plug in
there and nowhere else.
"""
from __future__ import annotations

import html
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported where frames are handled, so the CLI can list runs without it
    import pandas as pd

logger = logging.getLogger(__name__)

#: What a table shows for a missing value.
MISSING = "—"
#: What an empty section says by default.
NONE_TODAY = "None today."
#: Background colours of the signal badges (the plots use the same ones).
SIGNAL_COLORS = {"BUY": "#1a9850", "HOLD": "#8c8c8c", "SELL": "#d73027"}
_SYMBOLS = {"USD": "$", "EUR": "€"}

#: column name -> (header, kind). Kinds: text, card, signal, money, signed_money, pct, signed_pct,
#: lift, count, number, date, and figure (text formatted already, aligned like a number).
COLUMNS: dict[str, tuple[str, str]] = {
    "name": ("Card", "card"), "card_id": ("Card id", "text"), "set_name": ("Set", "text"),
    "variant": ("Printing", "text"), "currency": ("Currency", "text"), "rarity": ("Rarity", "text"),
    "number": ("No.", "text"), "date": ("Date", "date"), "signal": ("Signal", "signal"),
    "market_price": ("Market price", "money"), "fair_value": ("Fair value", "money"),
    "deviation": ("vs fair value", "signed_pct"),
    # comparisons of two runs
    "signal_before": ("Signal before", "signal"), "signal_after": ("Signal now", "signal"),
    "change": ("Change", "text"), "market_price_before": ("Price before", "money"),
    "market_price_after": ("Price now", "money"), "price_change": ("Price move", "signed_pct"),
    "value_at_stake": ("Value at stake", "money"), "deviation_before": ("vs fair before", "signed_pct"),
    "deviation_after": ("vs fair now", "signed_pct"),
    # portfolios
    "quantity": ("Qty", "count"), "purchase_price": ("Paid", "money"), "purchase_date": ("Bought", "date"),
    "value": ("Value", "money"), "cost": ("Cost", "money"), "pnl": ("Profit/loss", "signed_money"),
    "pnl_pct": ("P/L %", "signed_pct"), "value_change_1d": ("1-day change", "signed_money"),
    "line": ("Line", "count"), "reason": ("Reason", "text"), "detail": ("Detail", "text"),
    # runs and KPIs
    "run_date": ("Date", "text"), "state": ("Status", "text"), "source": ("Source", "text"),
    "cards": ("Cards tracked", "count"), "buy": ("BUY", "count"), "sell": ("SELL", "count"),
    "hold": ("HOLD", "count"), "buy_precision": ("BUY precision", "pct"), "buy_lift": ("BUY lift", "lift"),
    "sell_precision": ("SELL precision", "pct"), "sell_lift": ("SELL lift", "lift"),
    "mape_fair": ("MAPE fair value", "pct"), "mape_naive": ("MAPE last price", "pct"),
    "mape_ratio": ("MAPE ratio", "number"), "model": ("Model", "text"), "attempt": ("Attempt", "text"),
    "failure": ("Failure", "text"), "KPI": ("KPI", "text"),
    # figures formatted already (KPI tables): shown as they are, right-aligned
    "value_text": ("Value", "figure"), "before": ("Before", "figure"), "after": ("Now", "figure"),
}
_RIGHT = {"money", "signed_money", "pct", "signed_pct", "lift", "count", "number", "figure"}


# -- single values ----------------------------------------------------------------------------
def is_missing(value) -> bool:
    """True for None, NaN, ``pd.NA`` and ``NaT`` (checked without importing pandas)."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if type(value).__name__ in ("NAType", "NaTType"):
        return True
    try:
        return bool(value != value)  # NaN-like scalars of numpy
    except (TypeError, ValueError):
        return False


def money(amount, currency: str | None = "USD", signed: bool = False) -> str:
    """``$1,234.56``, ``-€3.20`` or, with ``signed``, ``+$12.00``; :data:`MISSING` when missing."""
    if is_missing(amount):
        return MISSING
    cur = "USD" if is_missing(currency) or not currency else str(currency)
    symbol = _SYMBOLS.get(cur, f"{cur} ")
    sign = "-" if amount < 0 else ("+" if signed and amount > 0 else "")
    return f"{sign}{symbol}{abs(float(amount)):,.2f}"


def pct(share, signed: bool = False, digits: int = 1) -> str:
    """A share as a percentage: ``12.3%`` or, with ``signed``, ``+12.3%``; never ``-0.0%``."""
    if is_missing(share):
        return MISSING
    value = round(float(share) * 100, digits)
    if value == 0:
        value = 0.0  # drops the sign of -0.0
    return f"{value:+,.{digits}f}%" if signed else f"{value:,.{digits}f}%"


def lift(value) -> str:
    """``1.42x``; :data:`MISSING` when missing."""
    return MISSING if is_missing(value) else f"{float(value):.2f}x"


def count(value) -> str:
    """``12,345``; :data:`MISSING` when missing; a value that is no whole number (the text of a
    rejected input row, such as a portfolio quantity of ``x`` or ``1.5``) is shown as it is."""
    if is_missing(value):
        return MISSING
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return _text(value)


def _number(value) -> str:
    if is_missing(value):
        return MISSING
    try:
        return f"{float(value):,.2f}"
    except (TypeError, ValueError):  # the text of a rejected row, shown as it is
        return _text(value)


def _date(value) -> str:
    if is_missing(value):
        return MISSING
    try:
        return value.strftime("%Y-%m-%d")
    except AttributeError:
        return str(value)[:10]


def _text(value) -> str:
    return MISSING if is_missing(value) or str(value) == "" else str(value)


# -- columns ------------------------------------------------------------------------------------
def header(column: str) -> str:
    """The header people read for ``column`` (``market_price`` -> ``Market price``)."""
    if column in COLUMNS:
        return COLUMNS[column][0]
    text = str(column).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def kind_of(column: str, values: pd.Series) -> str:
    """How ``column`` is formatted: from :data:`COLUMNS`, else from the dtype."""
    import pandas as pd

    if column in COLUMNS:
        return COLUMNS[column][1]
    if pd.api.types.is_bool_dtype(values):
        return "text"
    if pd.api.types.is_integer_dtype(values):
        return "count"
    if pd.api.types.is_float_dtype(values):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(values):
        return "date"
    return "text"


def card_labels(frame: pd.DataFrame, with_set: bool = False) -> pd.Series:
    """The card name shown for each row (:func:`pokewatch.analysis.card_display.display_name`), never ``<NA>``.

    Without the set by default: every table, title and message here shows the set beside the name.
    """
    from pokewatch.analysis.card_display import display_name

    return display_name(frame, with_set=with_set).astype(object)


def card_links(frame: pd.DataFrame) -> pd.Series:
    """Each row's card page (TCGplayer product or pokemontcg.io prices), or missing (:func:`card_display.card_url`)."""
    from pokewatch.analysis.card_display import card_url

    urls = card_url(frame)
    return urls.mask(urls.eq(""))


def _currencies(frame: pd.DataFrame) -> pd.Series:
    import pandas as pd

    if "currency" in frame:
        return frame["currency"].astype("string").fillna("USD")
    if "portfolio_currency" in frame:
        return frame["portfolio_currency"].astype("string").fillna("USD")
    return pd.Series("USD", index=frame.index, dtype="string")


def _money_column(values: pd.Series, currencies: pd.Series, signed: bool) -> pd.Series:
    import pandas as pd

    amounts = pd.to_numeric(values, errors="coerce").astype("float64")
    symbols = currencies.map(lambda c: _SYMBOLS.get(str(c), f"{c} ")).astype(object)
    signs = pd.Series("", index=values.index, dtype=object).mask(amounts < 0, "-")
    if signed:
        signs = signs.mask(amounts > 0, "+")
    text = signs + symbols + amounts.abs().map("{:,.2f}".format)
    return text.where(amounts.notna(), MISSING)


def _formatted(frame: pd.DataFrame, column: str, kind: str) -> pd.Series:
    values = frame[column]
    if kind in ("money", "signed_money"):
        return _money_column(values, _currencies(frame), kind == "signed_money")
    if kind == "card":
        return card_labels(frame)
    formatter = {"pct": pct, "signed_pct": lambda v: pct(v, signed=True), "lift": lift, "count": count,
                 "number": _number, "date": _date}.get(kind, _text)
    return values.astype(object).map(formatter)


def format_frame(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """``frame`` as text for people: human headers, formatted values, no index.

    Args:
        frame: any frame; columns named in :data:`COLUMNS` get their format, the
            others one from their dtype.
        columns: the columns to show, in order (default: all of them).

    Returns:
        A frame of strings with a fresh 0..n-1 index and human headers; missing
        values are :data:`MISSING`.

    Raises:
        KeyError: a column in ``columns`` is not in ``frame`` (the message lists the columns there are).
    """
    import pandas as pd

    wanted = list(columns) if columns is not None else list(frame.columns)
    unknown = [c for c in wanted if c not in frame.columns]
    if unknown:
        raise KeyError(f"columns {unknown} are not in the table; it has {list(frame.columns)}")
    frame = frame.reset_index(drop=True)
    out = {header(c): _formatted(frame, c, kind_of(c, frame[c])).to_numpy(dtype=object) for c in wanted}
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame)))


# -- HTML ---------------------------------------------------------------------------------------
def _signal_badge(text: str) -> str:
    color = SIGNAL_COLORS.get(text)
    if color is None or text == "HOLD":
        return html.escape(text)
    return (f'<span class="pw-signal pw-{text.lower()}" style="background:{color};color:#fff;'
            f'padding:0 5px;border-radius:3px;font-weight:600">{html.escape(text)}</span>')


def to_html(frame: pd.DataFrame, columns: Sequence[str] | None = None, empty: str = NONE_TODAY,
            caption: str | None = None) -> str:
    """``frame`` as an HTML table with human headers and no index, or one line of ``empty`` text.

    Numbers are right-aligned and never wrap; text wraps. The table sits in a
    ``<div class="pw-scroll">`` that scrolls sideways on its own, so a wide table never
    makes the page wider than the window. Card names link to their page where
    :func:`card_links` knows it.
    """
    import pandas as pd

    if frame is None or len(frame) == 0:
        return Note(empty)._repr_html_()
    wanted = list(columns) if columns is not None else list(frame.columns)
    text = format_frame(frame, wanted)
    plain = frame.reset_index(drop=True)
    links = card_links(plain) if "name" in wanted else None
    kinds = [kind_of(c, plain[c]) for c in wanted]
    head = "".join(f'<th class="{"pw-num" if k in _RIGHT else "pw-text"}" scope="col">{html.escape(h)}</th>'
                   for h, k in zip(text.columns, kinds))
    rows = pd.Series("<tr>", index=text.index, dtype=object)
    for position, kind in enumerate(kinds):  # one pass per column; the rows are vectorized
        inner = text.iloc[:, position].astype(str).map(html.escape)
        if kind == "signal":
            inner = text.iloc[:, position].astype(str).map(_signal_badge)
        elif kind == "card" and links is not None:
            href = links.reset_index(drop=True).astype(object)
            linked = '<a href="' + href.fillna("").astype(str).map(html.escape) + '">' + inner + "</a>"
            inner = inner.where(href.isna(), linked)
        style = ' style="text-align:right;white-space:nowrap"' if kind in _RIGHT else ""
        rows = rows + f'<td class="pw-{kind}"{style}>' + inner + "</td>"
    body = (rows + "</tr>").tolist()
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (f'<div class="pw-scroll" style="overflow-x:auto;max-width:100%">'
            f'<table class="pw-table">{cap}<thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


# -- the terminal --------------------------------------------------------------------------------
def _kind_of_value(column: str, rows: list[dict]) -> str:
    if column in COLUMNS:
        return COLUMNS[column][1]
    value = next((r.get(column) for r in rows if not is_missing(r.get(column))), None)
    if isinstance(value, bool) or value is None:
        return "text"
    return "count" if isinstance(value, int) else "number" if isinstance(value, float) else "text"


def format_value(value, kind: str, currency: str | None = "USD") -> str:
    """One value as :func:`format_frame` shows it in a column of ``kind``."""
    if kind in ("money", "signed_money"):
        return money(value, currency, signed=kind == "signed_money")
    return {"pct": pct, "signed_pct": lambda v: pct(v, signed=True), "lift": lift, "count": count,
            "number": _number, "date": _date}.get(kind, _text)(value)


def format_records(rows: list[dict], columns: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """Rows given as dicts (no pandas needed), formatted like :func:`format_frame`: (kinds, text rows)."""
    kinds = [_kind_of_value(c, rows) for c in columns]
    text = []
    for row in rows:  # a terminal table: a few dozen runs
        currency = row.get("currency") or row.get("portfolio_currency") or "USD"
        text.append([(row.get("name") or f"card {row.get('card_id', '?')}") if kind == "card"
                     else format_value(row.get(column), kind, currency) for column, kind in zip(columns, kinds)])
    return kinds, text


def to_rich(frame: pd.DataFrame | list[dict], columns: Sequence[str] | None = None, title: str | None = None,
            width: int | None = None, optional: Sequence[str] = ()):
    """``frame`` (a DataFrame, or rows as dicts) as an aligned :class:`rich.table.Table`, no index.

    Numbers are right-aligned. Figures, dates and signals never wrap; long text
    (names, failures) folds. When the table is wider than ``width``, the ``optional``
    columns are left out, last first, until it fits: a narrow terminal loses a column
    rather than getting figures broken over two lines.
    """
    from rich import box
    from rich.table import Table as RichTable

    if isinstance(frame, list):
        wanted = list(columns) if columns is not None else list(frame[0]) if frame else []
        kinds, rows = format_records(frame, wanted)
    else:
        wanted = list(columns) if columns is not None else list(frame.columns)
        plain = frame.reset_index(drop=True)
        kinds = [kind_of(c, plain[c]) for c in wanted]
        rows = format_frame(frame, wanted).values.tolist()
    natural = [max([len(line) for line in header(c).split("\n")] + [len(r[i]) for r in rows])
               for i, c in enumerate(wanted)]
    keep = list(range(len(wanted)))
    droppable = [wanted.index(c) for c in optional if c in wanted]
    while width and droppable and sum(min(natural[i], 24) + 2 for i in keep) > width:
        keep.remove(droppable.pop())
    table = RichTable(title=title, box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)
    for i in keep:
        fixed = kinds[i] not in ("text", "card") or natural[i] <= 12
        table.add_column(header(wanted[i]), justify="right" if kinds[i] in _RIGHT else "left", no_wrap=fixed,
                         min_width=natural[i] if fixed else 8, overflow="fold")
    for row in rows:
        table.add_row(*[_rich_cell(row[i]) for i in keep])
    return table


def _rich_cell(value: str):
    from rich.text import Text

    color = SIGNAL_COLORS.get(value)
    return Text(value, style=f"bold {color}") if color and value != "HOLD" else Text(value)


# -- what notebook cells show ------------------------------------------------------------------
@dataclass
class Note:
    """One line of text in place of a table or plot that has nothing to show today."""

    text: str = NONE_TODAY

    def _repr_html_(self) -> str:
        return f'<p class="pw-note">{html.escape(self.text)}</p>'

    def __repr__(self) -> str:
        return self.text


@dataclass
class Table:
    """A frame shown for people: HTML in notebooks and reports, aligned text elsewhere."""

    frame: pd.DataFrame = field(repr=False)
    columns: list[str] | None = None
    empty: str = NONE_TODAY
    caption: str | None = None

    def _repr_html_(self) -> str:
        return to_html(self.frame, self.columns, self.empty, self.caption)

    def __repr__(self) -> str:
        if len(self.frame) == 0:
            return self.empty
        return format_frame(self.frame, self.columns).to_string(index=False)


def show(frame: pd.DataFrame | None, columns: Sequence[str] | None = None, empty: str | None = NONE_TODAY,
         caption: str | None = None) -> Table | Note | None:
    """What a notebook cell returns to show ``frame`` formatted.

    Args:
        frame: the rows; None means "not available" (the cell shows nothing, because
            the notebook already said so in one line).
        columns: the columns to show, in order (default all).
        empty: the line shown instead of an empty table (None: show nothing).
        caption: a one-line caption above the table.

    Returns:
        A :class:`Table`, a :class:`Note` for an empty frame, or None.
    """
    if frame is None:
        return None
    if len(frame) == 0:
        return Note(empty) if empty else None
    return Table(frame, list(columns) if columns is not None else None, empty or NONE_TODAY, caption)


def kpis(table: pd.DataFrame | None) -> Table | None:
    """A KPI table (``summary.kpi_table`` or ``summary.kpi_comparison``) without its index header row.

    Those frames are indexed by ``KPI``; shown as they are, the index name becomes a
    stray second header row. Here the KPI is an ordinary first column. None (no KPIs
    to compare yet) shows nothing.
    """
    if table is None:
        return None
    frame = table.reset_index() if table.index.name else table
    frame = frame.rename(columns={"value": "value_text"})
    return Table(frame, empty="No KPIs could be computed yet.")
