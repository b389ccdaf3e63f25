"""Looking back at finished runs: find a card, follow its price, compare runs, track KPIs.

Why this module exists: the explore notebook, the ``pokewatch`` command line and the
run index all answer the same questions ("which run?", "which card did they mean?",
"what changed since yesterday?", "are the flags getting better?"). Answering them
here, once, keeps the notebook cells one-liners and the three front ends in agreement.

Where runs come from (see :func:`locate_run`): a published run ``runs/<date>``
(what the pipeline leaves), or, when none is published for that date, the folder
the notebooks write to in JupyterLab, ``runs/interactive/<date>``. Every function
here only reads run folders; nothing in a run is changed.

A card's fair value and signals come from the run's model (``model.npz``), which keeps the
last ``keep_days`` days (90 by default) of market and fair prices for every series;
its market price can reach further back, over everything the price store holds for
the run's source (pass the stored prices to :func:`card_history`).

"Cards tracked" means one thing everywhere (:func:`cards_tracked`): the number of
*series*, a card in one printing and one currency (``card_id``, ``variant``,
``currency``; see :mod:`pokewatch.core.schema`). A run's ``signals.csv`` has one row per
series, so that is also its row count.

Imports stay light: the model and the signal rules (and with them numba, which
:mod:`pokewatch.core.signals` imports through :mod:`pokewatch.core.kernels`) load only when a
run's signals, a card's history or a run's model are read, so listing runs
(``pokewatch runs``, the index) never pays for them.
"""
from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pokewatch.analysis import candidates, history, summary, tables
from pokewatch.run import display
from pokewatch import config
from pokewatch.core import checks
from pokewatch.run import model_file, runs
from pokewatch.run.folder import INTERACTIVE, LATEST, RunFolder
from pokewatch.errors import ParameterError, RunError, UnknownCardError
from pokewatch.core.schema import SERIES_KEY, SIGNAL_DTYPE

if TYPE_CHECKING:
    from pokewatch.core.model import FairValueModel

logger = logging.getLogger(__name__)

#: KPIs followed from run to run (precision, lift, forecast error against naive).
TREND_KPIS = history.TREND_KPIS
#: Fuzzy matches at least this similar (difflib ratio, 0..1) are accepted as the card meant: one
#: slipped letter in a name ("Charzard"), but not another Pokémon ("Pichu" is not "Pikachu", 0.83).
ACCEPT_SIMILARITY = 0.88
#: Matches at least this similar are offered as suggestions when none is accepted.
SUGGEST_SIMILARITY = 0.5
_STRING_COLUMNS = ("card_id", "variant", "currency", "name", "set_id", "set_name", "number", "rarity",
                   "category")
#: Where a run's source is read from when its manifest does not say (interactive runs).
DEFAULT_SOURCE = "demo"


def cards_tracked(frame: pd.DataFrame) -> int:
    """How many cards a frame tracks: its distinct series (``card_id``, ``variant``, ``currency``).

    The one definition of "cards tracked" for the CLI, the report, the index and the
    notebooks. A card printed as Normal and Reverse Holofoil counts twice; so does one
    priced in USD and EUR, because those prices are never compared with each other.
    """
    if frame is None or len(frame) == 0:
        return 0
    return int(len(frame[SERIES_KEY].drop_duplicates()))


# -- finding and loading runs ---------------------------------------------------------------
def _root(runs_root: Path | str | None) -> Path:
    return Path(runs_root) if runs_root else config.runs_dir()


def interactive_folders(runs_root: Path | str | None = None) -> list[Path]:
    """``runs/interactive/<date>`` folders whose evaluate notebook finished, oldest first."""
    return history.interactive_folders(_root(runs_root))


def locate_run(run_date: str = "latest", run_dir: str | Path = "", runs_root: Path | str | None = None,
               option: str = "run_date") -> Path:
    """The folder of the run to look at.

    Args:
        run_date: ``latest`` (the newest published run, or the newest interactive one
            when nothing is published yet), ``today`` or ``YYYY-MM-DD``. A date means
            its published run, else ``runs/interactive/<date>``.
        run_dir: an explicit run folder; wins over ``run_date``.
        runs_root: the runs folder (default ``$POKEWATCH_RUNS_DIR`` or ``runs/``).
        option: how error messages name ``run_date`` (the CLI passes ``--date``).

    Raises:
        RunError: no such run, with the dates there are (and why a date failed, if it did).
        ParameterError: ``run_date`` is neither ``latest``, ``today`` nor a date.
    """
    root = _root(runs_root)
    if run_dir:
        folder = Path(run_dir).expanduser()
        if not RunFolder(folder).signals.exists():
            raise RunError(f"{folder} has no {RunFolder.signals.name}; point run_dir at a finished run folder "
                           f"such as {root / LATEST}")
        return folder.resolve()
    spec = str(run_date or "latest").strip()
    if spec == "latest":
        latest = runs.latest_run(root)
        if latest is not None:
            return latest
        interactive = interactive_folders(root)
        if interactive:
            return interactive[-1]
        raise RunError(f"no runs in {root} yet; run scripts/run_pipeline.sh (make pipeline), or the collect, "
                       "train and evaluate notebooks")
    try:
        date = checks.run_date(option, spec)
    except ParameterError:
        raise ParameterError(f"{option} must be YYYY-MM-DD, latest or today, got {spec!r}") from None
    if (root / date).exists():
        return (root / date).resolve()
    interactive = root / INTERACTIVE / date
    if RunFolder(interactive).signals.exists():
        return interactive
    raise RunError(_no_run_message(date, root))


def _no_run_message(date: str, root: Path) -> str:
    known = runs.published_dates(root)
    failed = [a for a in history.attempts(root) if a["run_date"] == date and a["status"] == "failed"]
    why = ""
    if failed:
        failure = failed[-1]["manifest"].get("failure") or {}
        why = (f" (its last attempt failed at step {failure.get('step', '?')}; see "
               f"{failed[-1]['path']} or 'pokewatch runs show {date}')")
    recent = ", ".join(known[-5:]) or "none yet"
    return f"no finished run for {date} in {root}{why}; recent runs: {recent}"


def read_signals(path: Path | str) -> pd.DataFrame:
    """A run's ``signals.csv`` with ids as strings, ``date`` as dates and ``signal`` categorical.

    Text cells that began with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
    were written with a leading ``'`` (:func:`pokewatch.atomic.spreadsheet_safe`) and
    are read back with it: ``'=SUM(A1)`` is the expected form of such a name.
    Numeric columns are unaffected.
    """
    frame = pd.read_csv(path, dtype=dict.fromkeys(_STRING_COLUMNS, "string"), parse_dates=["date"])
    frame["signal"] = frame["signal"].astype(SIGNAL_DTYPE)
    return frame


_read_json = history.read_json
run_source = history.run_source


@dataclass
class Run:
    """One finished run, read-only: its folder, manifest, metrics and the day's signals."""

    dir: Path
    run_date: str
    kind: str  # published, interactive, superseded or failed
    manifest: dict = field(repr=False)
    metrics: dict = field(repr=False)
    today: pd.DataFrame = field(repr=False)

    def __repr__(self) -> str:
        counts = self.today["signal"].value_counts()
        return (f"{self.kind} {self.source} run of {self.run_date} in {self.dir}: "
                f"{cards_tracked(self.today):,} cards tracked, BUY {counts.get('BUY', 0)}, "
                f"SELL {counts.get('SELL', 0)}")

    @property
    def source(self) -> str:
        """The price source the run evaluated (``demo``, ``tcgcsv``, ...), from its parameters."""
        return run_source(self.manifest) or _read_json(RunFolder(self.dir).quality).get("source") or DEFAULT_SOURCE

    @property
    def min_price(self) -> float:
        """The price under which the run's signals never flag a card."""
        model = self.metrics.get("model", {})
        evaluate = self.manifest.get("parameters", {}).get("evaluate", {})
        return float(model.get("min_price", evaluate.get("min_price", 1.0)))

    @property
    def kpis(self) -> dict:
        return self.metrics.get("kpis", {})

    @property
    def thresholds(self) -> tuple[float, float]:
        """(buy_threshold, sell_threshold) the run's signals used."""
        model = self.metrics.get("model", {})
        evaluate = self.manifest.get("parameters", {}).get("evaluate", {})
        buy = model.get("buy_threshold", evaluate.get("buy_threshold", 0.10))
        sell = model.get("sell_threshold", evaluate.get("sell_threshold", 0.15))
        return float(buy), float(sell)

    @cached_property
    def model(self) -> FairValueModel:
        """The run's fitted model (loaded on first use).

        Raises:
            RunError: the run folder has no model, or its model cannot be read (an old pickled
                ``model.joblib`` is refused, with how to train again).
        """
        path = model_file.path_in(self.dir)
        if not path.exists() and not (self.dir / model_file.OLD_MODEL_FILE).exists():
            raise RunError(f"{self.dir} has no {model_file.MODEL_FILE}, so card histories are not available for it")
        return model_file.read(path)  # imports the model, and with it numba: only when a card's history is asked for


def load_run(folder: Path | str, runs_root: Path | str | None = None) -> Run:
    """Read a run folder.

    Raises:
        RunError: the folder has no ``signals.csv`` (the evaluate step did not finish).
    """
    folder = Path(folder)
    files = RunFolder(folder)
    if not files.signals.exists():
        raise RunError(f"{folder} has no {files.signals.name}; its evaluate step did not finish")
    manifest = _read_json(files.manifest)
    root = _root(runs_root)
    published = {(root / d).resolve() for d in runs.published_dates(root)}
    status = manifest.get("status")
    if folder.resolve() in published:
        kind = "published"
    elif status == INTERACTIVE or folder.parent.name == INTERACTIVE:
        kind = INTERACTIVE
    else:
        kind = "failed" if status == "failed" else "superseded"
    run_date = manifest.get("run_date") or folder.name[:10]
    return Run(folder, run_date, kind, manifest, _read_json(files.metrics), read_signals(files.signals))


def open_run(run_date: str = "latest", run_dir: str | Path = "", runs_root: Path | str | None = None,
             option: str = "run_date") -> Run:
    """:func:`locate_run` then :func:`load_run` (``option`` names ``run_date`` in error messages).

    In a notebook's kernel, returned figures are then shown inline (:mod:`pokewatch.run.display`).
    """
    display.show_figures_inline()
    return load_run(locate_run(run_date, run_dir, runs_root, option), runs_root)


def comparison_run(compare_to: str, run: Run, runs_root: Path | str | None = None) -> Run | None:
    """The run to compare ``run`` with.

    Args:
        compare_to: ``previous`` (the newest published run on the same source dated
            before ``run``), a date, or empty for no comparison.

    Returns:
        None when ``compare_to`` is empty or there is no earlier run on that source yet.
    """
    spec = str(compare_to or "").strip()
    if not spec:
        return None
    if spec != "previous":
        return open_run(spec, runs_root=runs_root)
    root = _root(runs_root)
    same = [r for r in history.records(root) if r["state"] == "published" and r["run_date"] < run.run_date
            and r["source"] == run.source]
    return open_run(same[-1]["run_date"], runs_root=runs_root) if same else None


# -- cards -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CardMatch:
    """The series a query resolved to, how it matched, and other cards it could have meant."""

    card_id: str
    variant: str
    currency: str
    name: str
    set_name: str
    matched_by: str
    alternatives: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.name} ({self.card_id}, {self.variant}, {self.set_name})"

    def describe(self) -> str:
        """One line for people: what was found, how, and what else matched."""
        text = f"{self} matched by {self.matched_by}"
        if self.alternatives:
            text += f"; also matching: {', '.join(self.alternatives)}"
        return text


def strongest_flag(today: pd.DataFrame) -> str:
    """Card id of the day's strongest BUY or SELL flag (:func:`pokewatch.analysis.candidates.rank_flags`), else of the
    most valuable card."""
    flagged = candidates.rank_flags(today, limit=1)
    if len(flagged):
        return str(flagged["card_id"].iat[0])
    return str(today.loc[today["market_price"].idxmax(), "card_id"])


def _similarity(query: str, candidates: pd.Series) -> pd.Series:
    unique = candidates.dropna().unique()
    scores = {c: difflib.SequenceMatcher(None, query, str(c).casefold()).ratio() for c in unique}
    return candidates.map(scores).fillna(0.0)


def find_card(cards: pd.DataFrame, query: str, variant: str | None = None, where: str = "this run") -> CardMatch:
    """Resolve a card name or id typed by a person to one series.

    Tries, in order: the exact id, the exact name, names containing the query, then
    the closest name or id (difflib) when it is at least :data:`ACCEPT_SIMILARITY`
    alike. Several cards share a name (a Pikachu in every set); the most valuable one
    is chosen and the others are listed in ``alternatives``. Case is ignored.

    Args:
        cards: one row per series with card_id, variant, currency, name, set_name and
            ideally market_price (a run's ``signals.csv`` or ``model.cards()``).
        query: a card id (``sv3pt5-199``) or name (``Charizard ex``, ``charizard``).
        variant: the printing wanted (``Holofoil``); empty picks the usual printing.
        where: how to name the searched cards in error messages.

    Raises:
        UnknownCardError: nothing matches (the message lists close matches), or the
            card has no such variant (the message lists its variants).
    """
    text = str(query or "").strip()
    if not text:
        raise UnknownCardError("no card given; pass a card name (Charizard ex) or id (sv3pt5-199)")
    wanted = text.casefold()
    ids = cards["card_id"].astype("string").str.casefold()
    names = cards["name"].astype("string").fillna("").str.casefold()
    attempts = (("id", ids == wanted), ("name", names == wanted),
                ("part of the name", names.str.contains(wanted, regex=False)))
    for how, mask in attempts:
        mask = mask.fillna(False).to_numpy(bool)
        if mask.any():
            return _pick(cards[mask], how, variant, where)
    score = np.maximum(_similarity(wanted, ids).to_numpy(), _similarity(wanted, names).to_numpy())
    best = float(score.max()) if len(score) else 0.0
    if best >= ACCEPT_SIMILARITY:
        return _pick(cards[score >= best - 1e-9], f"similar name or id ({best:.0%} alike)", variant, where)
    close = cards.assign(score=score)[score >= SUGGEST_SIMILARITY].sort_values("score", ascending=False)
    suggestions = list(dict.fromkeys(f"{n} ({c})" for n, c in zip(tables.card_labels(close), close["card_id"])))[:8]
    hint = f"close matches: {', '.join(suggestions)}" if suggestions else "nothing similar"
    raise UnknownCardError(f"no card matches {text!r} in {where} ({cards_tracked(cards):,} cards tracked); {hint}. "
                           "Try a card id such as "
                           f"{cards['card_id'].iloc[0] if len(cards) else 'sv3pt5-199'}, or 'pokewatch signals'")


def _pick(matches: pd.DataFrame, how: str, variant: str | None, where: str) -> CardMatch:
    if variant:
        same = matches["variant"].astype("string").str.casefold() == str(variant).strip().casefold()
        if not same.fillna(False).any():
            have = ", ".join(sorted(set(matches["variant"].astype(str))))
            raise UnknownCardError(f"{matches['name'].iloc[0]} ({', '.join(sorted(set(matches['card_id'])))}) "
                                   f"has no {variant!r} printing in {where}; it has {have}")
        matches = matches[same.fillna(False).to_numpy(bool)]
    from pokewatch.core.model import VARIANT_PREFERENCE

    rank = {v: i for i, v in enumerate(VARIANT_PREFERENCE)}
    price = matches["market_price"] if "market_price" in matches else pd.Series(0.0, index=matches.index)
    ordered = matches.assign(
        _card_value=price.groupby(matches["card_id"]).transform("max").fillna(0.0),
        _usd=(matches["currency"] != "USD").astype(int),
        _variant=matches["variant"].map(rank).fillna(len(rank)),
    ).sort_values(["_card_value", "_usd", "_variant", "card_id"], ascending=[False, True, True, True])
    ordered = ordered.assign(_label=tables.card_labels(ordered), _set=_text_column(ordered, "set_name"))
    best = ordered.iloc[0]
    others = ordered[ordered["card_id"] != best["card_id"]].drop_duplicates("card_id")
    alternatives = tuple(f"{n} ({c}, {s})" for n, c, s in
                         zip(others["_label"], others["card_id"], others["_set"]))[:8]
    return CardMatch(str(best["card_id"]), str(best["variant"]), str(best["currency"]), str(best["_label"]),
                     str(best["_set"]), how, alternatives)


def _text_column(frame: pd.DataFrame, column: str) -> pd.Series:
    """A text column with missing values as empty text (never ``<NA>`` in a message)."""
    if column not in frame:
        return pd.Series("", index=frame.index, dtype=object)
    return frame[column].astype("string").fillna("").astype(object)


def card_history(model: FairValueModel, match: CardMatch, days: int | None = None,
                 prices: pd.DataFrame | None = None) -> pd.DataFrame:
    """A series' daily market price, fair value, deviation and signal.

    Fair value, deviation and signal come from the fitted model (the last ``keep_days``
    days it keeps), with the model's own thresholds and ``min_price``, so they agree
    with the run's ``signals.csv``. With ``prices`` (what the price store holds for the
    run's source), the market price reaches back over the card's whole stored history;
    days before the model's window have no fair value or signal. Days without an
    observation are left out; nothing after the model's last day is shown.

    Args:
        model: a run's fitted model (``Run.model``).
        match: the series (from :func:`find_card`).
        days: only the last ``days`` calendar days (default: all there are).
        prices: stored observations, at least card_id, variant, currency, date and
            market_price, e.g. ``PriceStore.load(run.source, None, run.run_date)``;
            other series in it are ignored.

    Raises:
        UnknownCardError: the series is not in the model.
    """
    try:
        frame = model.history(match.card_id, match.variant, match.currency).drop(columns="currency")
    except UnknownCardError:
        raise UnknownCardError(f"{match} is not in the model fitted through {model.fitted_through}") from None
    if prices is not None and len(prices):
        frame = _with_stored_prices(frame, prices, match, last_day=model.dates.max())
    if days:
        frame = frame[frame["date"] > frame["date"].max() - pd.Timedelta(days=int(days))].reset_index(drop=True)
    return frame.assign(card_id=match.card_id, variant=match.variant, currency=match.currency, name=match.name)


def _with_stored_prices(model_days: pd.DataFrame, prices: pd.DataFrame, match: CardMatch,
                        last_day: pd.Timestamp) -> pd.DataFrame:
    """The model's rows, preceded by the stored market prices of the days before its window."""
    mine = ((prices["card_id"].astype("string") == match.card_id)
            & (prices["variant"].astype("string") == match.variant)
            & (prices["currency"].astype("string") == match.currency)).fillna(False).to_numpy(bool)
    stored = prices.loc[mine, ["date", "market_price"]]
    stored = stored[(stored["date"] <= last_day) & stored["market_price"].notna()]
    if len(model_days):
        stored = stored[stored["date"] < model_days["date"].min()]
    earlier = stored.assign(fair_value=np.nan, deviation=np.nan,
                            signal=pd.Categorical([None] * len(stored), dtype=model_days["signal"].dtype))
    return pd.concat([earlier, model_days], ignore_index=True).sort_values("date", ignore_index=True)


#: Columns of :func:`card_history` an analyst reads, in order.
HISTORY_COLUMNS_SHOWN = ["date", "market_price", "fair_value", "deviation", "signal"]
#: Columns of the price store :func:`card_history` needs (``PriceStore.load(..., columns=PRICE_COLUMNS)``).
PRICE_COLUMNS = [*SERIES_KEY, "date", "market_price"]
#: Columns of a day's candidates (``candidates.top_candidates``) an analyst reads, in order.
CANDIDATE_COLUMNS = ["signal", "name", "set_name", "variant", "market_price", "fair_value", "deviation", "note"]


# -- comparing runs --------------------------------------------------------------------------
def compare_signals(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Series-by-series comparison of two days' signals (``signals.csv`` frames).

    Returns:
        One row per series in either day, with name, set_name, market/fair/deviation/
        signal ``_before`` and ``_after``, ``price_change`` (relative) and ``change``:
        ``new card``, ``dropped``, ``HOLD -> BUY`` style transitions, or ``unchanged``.
    """
    columns = [*SERIES_KEY, "name", "set_name", "market_price", "fair_value", "deviation", "signal"]
    left = before[columns].assign(signal=before["signal"].astype("string"))
    right = after[columns].assign(signal=after["signal"].astype("string"))
    merged = left.merge(right, on=SERIES_KEY, how="outer", suffixes=("_before", "_after"), validate="1:1",
                        indicator=True)
    merged["name"] = merged["name_after"].fillna(merged["name_before"])
    merged["set_name"] = merged["set_name_after"].fillna(merged["set_name_before"])
    merged["price_change"] = merged["market_price_after"] / merged["market_price_before"] - 1.0
    transition = merged["signal_before"].fillna("") + " -> " + merged["signal_after"].fillna("")
    merged["change"] = np.select(
        [merged["_merge"] == "right_only", merged["_merge"] == "left_only",
         (merged["signal_before"] != merged["signal_after"]).fillna(False)],
        ["new card", "dropped", transition.to_numpy(dtype=object)], default="unchanged")
    keep = [*SERIES_KEY, "name", "set_name", "signal_before", "signal_after", "change", "market_price_before",
            "market_price_after", "price_change", "deviation_before", "deviation_after"]
    return merged[keep].sort_values(SERIES_KEY, ignore_index=True)


#: Columns of :attr:`Comparison.signal_changes` and :meth:`Comparison.biggest_moves` an analyst reads.
CHANGE_COLUMNS = ["name", "set_name", "variant", "change", "market_price_before", "market_price_after",
                  "price_change", "deviation_after"]
MOVE_COLUMNS = ["name", "set_name", "variant", "market_price_before", "market_price_after", "price_change",
                "value_at_stake", "signal_after"]


@dataclass
class Comparison:
    """What changed between two runs: per-card table, KPI table and a one-line summary.

    With no earlier run (``before_date`` None) there is nothing to compare: the tables
    are None and :attr:`summary` says so in one line.
    """

    before_date: str | None
    after_date: str
    table: pd.DataFrame = field(repr=False)
    kpis: pd.DataFrame | None = field(repr=False)

    @property
    def available(self) -> bool:
        return self.before_date is not None

    def signal_changes(self, n: int | None = None) -> pd.DataFrame | None:
        """Cards whose signal changed (new flags first, then cleared ones), then new and dropped cards.

        Returns:
            At most ``n`` rows (all without ``n``), or None when there is no earlier run.
        """
        if not self.available:
            return None
        changed = self.table[self.table["change"] != "unchanged"]
        order = changed["signal_after"].map({"BUY": 0, "SELL": 1}).fillna(2)
        ordered = changed.assign(_order=order).sort_values(["_order", "change", "name"]).drop(columns="_order")
        return ordered.head(n) if n else ordered

    def biggest_moves(self, n: int = 10) -> pd.DataFrame | None:
        """The ``n`` cards with the most value at stake in their price move between the two runs.

        Value at stake is the move in money, the price before times the relative move
        (``|price now - price before|``): a 40% jump of a 25-cent card is ten cents, a 5%
        move of a $400 card is $20, and only the second is worth a collector's time.

        Returns:
            Rows of :attr:`table` with ``value_at_stake``, largest first, or None when
            there is no earlier run.
        """
        if not self.available:
            return None
        moved = self.table.dropna(subset=["price_change"])
        moved = moved.assign(value_at_stake=(moved["market_price_after"] - moved["market_price_before"]).abs())
        return moved.sort_values(["value_at_stake", "card_id"], ascending=[False, True]).head(n)

    @property
    def summary(self) -> str:
        if not self.available:
            return (f"No earlier run to compare {self.after_date} with yet: signal changes, price moves and "
                    "KPI changes appear from the second run on.")
        table = self.table
        changed = table["change"].str.contains("->", regex=False)
        new_buy = int((changed & (table["signal_after"] == "BUY")).sum())
        new_sell = int((changed & (table["signal_after"] == "SELL")).sum())
        cleared = int((changed & (table["signal_after"] == "HOLD")).sum())
        moves = table["price_change"].dropna()
        moved = moves[moves != 0]
        median = f", median move {moved.median():+.1%}" if len(moved) else ""
        return (f"{self.after_date} vs {self.before_date}: {int(changed.sum())} card(s) changed signal "
                f"({new_buy} new BUY, {new_sell} new SELL, {cleared} flag(s) cleared); prices moved on "
                f"{len(moved):,} of {len(moves):,} cards tracked in both{median}; "
                f"{int((table['change'] == 'new card').sum())} card(s) added, "
                f"{int((table['change'] == 'dropped').sum())} dropped.")


def compare(before: Run | None, after: Run) -> Comparison:
    """Compare two runs (``before`` may be None when there is no earlier run)."""
    if before is None:
        empty = compare_signals(after.today.iloc[:0], after.today.iloc[:0])
        return Comparison(None, after.run_date, empty, None)
    return Comparison(before.run_date, after.run_date, compare_signals(before.today, after.today),
                      summary.kpi_comparison(before.kpis, after.kpis))


# -- run history and KPI trends ------------------------------------------------------------
HISTORY_COLUMNS = history.FIELDS
UNKNOWN_SOURCE = history.UNKNOWN_SOURCE


def run_history(runs_root: Path | str | None = None, interactive: bool = False) -> pd.DataFrame:
    """Every pipeline attempt (published, superseded, failed, running) with its KPIs, oldest first.

    Args:
        interactive: also list ``runs/interactive/<date>`` folders (state ``interactive``).

    Returns:
        One row per attempt (:func:`pokewatch.analysis.history.records`) with :data:`HISTORY_COLUMNS`;
        ``state`` is ``published`` (what ``runs/<date>`` points at), ``superseded`` (an
        older success of that date), ``failed`` or ``running``.
    """
    table = pd.DataFrame(history.records(_root(runs_root), interactive), columns=HISTORY_COLUMNS)
    for column in ("cards", "buy", "sell", "hold"):
        table[column] = pd.to_numeric(table[column], errors="coerce").astype("Int64")
    for column in (*TREND_KPIS, "mean_forward_return_buy", "mean_forward_return_sell", "portfolio_value",
                   "portfolio_pnl"):
        table[column] = pd.to_numeric(table[column], errors="coerce").astype("float64")
    return table.sort_values(["run_date", "attempt"], ignore_index=True)


def kpi_trends(history: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    """One row per run date (published runs, else interactive ones) with :data:`TREND_KPIS`.

    Args:
        history: :func:`run_history` output.
        source: only runs on this price source. KPIs of different sources (the demo
            market, TCGplayer prices) measure different markets and are never one trend.

    Returns:
        Indexed by ``run_date`` (oldest first): the day's BUY and SELL counts, the
        trend KPIs and ``mape_ratio`` (fair-value MAPE / naive MAPE; below 1 is better).
    """
    usable = history[history["state"].isin(["published", INTERACTIVE])]
    if source is not None:
        usable = usable[usable["source"] == source]
    usable = usable.assign(_rank=(usable["state"] != "published").astype(int))
    usable = usable.sort_values(["run_date", "_rank"]).drop_duplicates("run_date", keep="first")
    trends = usable.set_index("run_date")[["buy", "sell", *TREND_KPIS]]
    return trends.assign(mape_ratio=trends["mape_fair"] / trends["mape_naive"])


#: Columns of :func:`kpi_trends` (after ``reset_index()``) an analyst reads, in order.
TREND_COLUMNS = ["run_date", "buy", "sell", "buy_precision", "buy_lift", "sell_precision", "sell_lift", "mape_fair",
                 "mape_naive"]


def sources(history: pd.DataFrame) -> list[str]:
    """The sources in a :func:`run_history`, the one run most recently first."""
    if history.empty:
        return []
    newest = history.groupby("source")["run_date"].max().sort_values(ascending=False)
    return newest.index.tolist()
