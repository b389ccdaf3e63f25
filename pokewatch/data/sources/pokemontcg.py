"""The ``pokemontcg`` source: pokemontcg.io v2 cards with TCGplayer (USD) and Cardmarket (EUR) prices.

Why: pokemontcg.io ids (``sv3pt5-199``) are what collectors write in watchlists,
and each card carries both a TCGplayer and a Cardmarket price block.

Request: ``GET {POKEWATCH_POKEMONTCG_URL}/v2/cards?q=...&page=N&pageSize=250``
(``select`` trims the payload to the fields we read). The envelope is
``{data, page, pageSize, count, totalCount}``; pages run to
``ceil(totalCount / pageSize)``. Queries come from the watchlist (``set`` ->
``set.id:X``, ``card`` -> ``id:X`` in batches joined with OR, ``query`` as given),
or from the options ``q`` / ``set``; with none of them every card is fetched
(about 80 pages).

Mapping to the long schema:

* USD rows: one per key of ``tcgplayer.prices`` with ``market`` as the price;
  ``variant`` maps normal -> Normal, holofoil -> Holofoil, reverseHolofoil ->
  Reverse Holofoil, 1stEditionHolofoil -> 1st Edition Holofoil, 1stEditionNormal ->
  1st Edition Normal; unknown keys are kept as they are (and counted in a note).
  ``low``, ``mid``, ``high``, ``directLow`` become ``low_price``, ``mid_price``,
  ``high_price``, ``direct_low_price``.
* EUR rows: one per card from ``cardmarket.prices.trendPrice`` with variant
  ``Cardmarket`` (Cardmarket's price guide is per card, not per printing); ``avg1``,
  ``avg7``, ``avg30`` and ``lowPrice`` (as ``low_price``) are kept.
* ``updated_at`` is the block's ``updatedAt`` ("YYYY/MM/DD"). It can be years old.
  A price last updated more than ``stale_days`` (default 7) before the run date is
  **not** stored as that day's price: it is dropped, and the quality report counts
  it in a ``stale_prices`` note per currency, with the oldest date and examples.
  A block without ``updatedAt`` counts as current.
* A card in an undocumented shape (a ``tcgplayer.prices`` that is a string or a
  list, an ``id`` that is a list, an ``updatedAt`` that is not a date, a key given
  twice ...) becomes one row marked malformed, which validation rejects as
  ``malformed_record``; the other cards of the page are stored as usual.

pokemontcg.io only serves current prices, so a collect covers one day (the run
date); backfill with tcgcsv archives or pokemonpricetracker history instead.

Key: ``POKEMONTCG_API_KEY`` (optional), sent as ``X-Api-Key``. Limits without a
key: 1,000 requests a day and 30 a minute; the client keeps to 30/minute without
a key and 120/minute with one (override with ``rate_limit_per_minute``). A 429
carries ``{"error": {"message", "code"}}``; its message lands in the report.
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
from collections import Counter

import pandas as pd

from pokewatch.errors import ParameterError
from pokewatch.data.http_client import (
    HTTP_OPTIONS,
    HttpClient,
    HttpError,
    HttpSettings,
    Progress,
    RateLimitedError,
    safe_name,
)
from pokewatch.data.raw_archive import RawArchive
from pokewatch.core.schema import MALFORMED
from pokewatch.data.sources.base import (
    WATCHLIST_OPTION,
    CollectRequest,
    FetchReport,
    PriceSource,
    as_day,
    duplicate_keys,
    fetched_payloads,
    kind_of,
    object_of,
    rate_option,
    source_id,
    stored_selection,
    text_of,
)
from pokewatch.data.sources.options import Option
from pokewatch.data.watchlist import Selection, selection_from_options

logger = logging.getLogger(__name__)

DEFAULT_URL = "https://api.pokemontcg.io"
KEY_VARIABLE = "POKEMONTCG_API_KEY"
MAX_PAGE_SIZE = 250
DEFAULT_STALE_DAYS = 7
CARD_BATCH = 40
#: Most pages fetched per query: pokemontcg.io holds about 20,000 cards (80 pages of 250).
MAX_PAGES = 1000
SELECT = "id,name,number,rarity,set,tcgplayer,cardmarket"
VARIANT_NAMES = {
    "normal": "Normal",
    "holofoil": "Holofoil",
    "reverseHolofoil": "Reverse Holofoil",
    "1stEditionHolofoil": "1st Edition Holofoil",
    "1stEditionNormal": "1st Edition Normal",
}
EUR_VARIANT = "Cardmarket"


def base_url() -> str:
    return os.environ.get("POKEWATCH_POKEMONTCG_URL", DEFAULT_URL).rstrip("/")


def parse_updated_at(value) -> pd.Timestamp | None:
    """``"YYYY/MM/DD"`` (pokemontcg.io's format; other date strings tolerated) -> day, or None."""
    if not isinstance(value, str) or not value.strip():
        return None
    return as_day(value.strip().replace("/", "-"))


def _updated_at(value, field_name: str) -> tuple[pd.Timestamp | None, str | None]:
    """An ``updatedAt``: the day, None when absent, or why it is unusable (staleness cannot be judged)."""
    if value is None or value == "":
        return None, None
    day = parse_updated_at(value)
    if day is None:
        return None, f"{field_name} is {kind_of(value)} {value!r:.40}, not a date like 2026/01/05"
    return day, None


def stale_cutoff(end, stale_days: int) -> pd.Timestamp:
    """Prices updated before this day are stale for a run dated ``end``."""
    return pd.Timestamp(end).normalize() - pd.Timedelta(days=stale_days)


_COLUMNS = ["card_id", "variant", "date", "market_price", "currency", "source", "name", "set_id", "set_name",
            "number", "rarity", "variant_key", "low_price", "mid_price", "high_price", "direct_low_price", "avg1",
            "avg7", "avg30", "updated_at", MALFORMED]


def _card_common(card: dict, date) -> tuple[dict, list[str]]:
    """The fields every row of ``card`` shares, and what is malformed about them."""
    problems = [f"key {key} is given twice" for key in duplicate_keys(card)]
    card_id, problem = source_id(card.get("id"), "id")
    problems.append(problem)
    card_set, problem = object_of(card.get("set"), "set")
    problems.append(problem)
    common = {"card_id": card_id, "date": date, "source": "pokemontcg"}
    for column, value, field_name in (("name", card.get("name"), "name"), ("number", card.get("number"), "number"),
                                      ("rarity", card.get("rarity"), "rarity"),
                                      ("set_id", card_set.get("id"), "set.id"),
                                      ("set_name", card_set.get("name"), "set.name")):
        common[column], problem = text_of(value, field_name)
        problems.append(problem)
    return common, [p for p in problems if p]


def card_rows(cards: list, date) -> pd.DataFrame:
    """USD and EUR long-schema rows of pokemontcg.io card objects (stale ones included).

    Never raises on a card's content: a card, price block or field in an
    undocumented shape becomes a row whose ``malformed`` column says what was wrong
    (one row for the card, or for the one currency or variant concerned).

    Args:
        cards: the ``data`` list of a ``/v2/cards`` page.
        date: the day the prices are stored under.
    """
    rows = []
    for position, card in enumerate(cards):
        if not isinstance(card, dict):
            rows.append({"date": date, "source": "pokemontcg",
                         MALFORMED: f"card {position + 1} of the page is {kind_of(card)}, not an object"})
            continue
        common, problems = _card_common(card, date)
        tcgplayer, usd_problem = object_of(card.get("tcgplayer"), "tcgplayer")
        cardmarket, eur_problem = object_of(card.get("cardmarket"), "cardmarket")
        if problems:
            rows.append({**common, MALFORMED: "; ".join(problems)})
            continue
        rows.extend(_usd_rows(common, tcgplayer, usd_problem))
        rows.extend(_eur_rows(common, cardmarket, eur_problem))
    frame = pd.DataFrame(rows, columns=_COLUMNS)
    for column in ("low_price", "mid_price", "high_price", "direct_low_price", "avg1", "avg7", "avg30"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    frame["updated_at"] = pd.to_datetime(frame["updated_at"], errors="coerce")
    frame["date"] = pd.to_datetime(frame["date"])
    frame[MALFORMED] = frame[MALFORMED].astype("string")
    return frame


def _usd_rows(common: dict, tcgplayer: dict, problem: str | None) -> list[dict]:
    """One row per ``tcgplayer.prices`` variant (or one malformed USD row)."""
    prices, prices_problem = object_of(tcgplayer.get("prices"), "tcgplayer.prices")
    updated, updated_problem = _updated_at(tcgplayer.get("updatedAt"), "tcgplayer.updatedAt")
    problems = [p for p in (problem, prices_problem, updated_problem) if p]
    if problems:
        return [{**common, "currency": "USD", MALFORMED: "; ".join(problems)}]
    rows = []
    for key, block in prices.items():
        block, block_problem = object_of(block, f"tcgplayer.prices.{key}")
        rows.append({**common, "variant": VARIANT_NAMES.get(key, key), "variant_key": key,
                     "market_price": block.get("market"), "currency": "USD", "low_price": block.get("low"),
                     "mid_price": block.get("mid"), "high_price": block.get("high"),
                     "direct_low_price": block.get("directLow"), "updated_at": updated, MALFORMED: block_problem})
    return rows


def _eur_rows(common: dict, cardmarket: dict, problem: str | None) -> list[dict]:
    """The one Cardmarket row of a card (none without prices; or one malformed EUR row)."""
    prices, prices_problem = object_of(cardmarket.get("prices"), "cardmarket.prices")
    updated, updated_problem = _updated_at(cardmarket.get("updatedAt"), "cardmarket.updatedAt")
    problems = [p for p in (problem, prices_problem, updated_problem) if p]
    if problems:
        return [{**common, "variant": EUR_VARIANT, "currency": "EUR", MALFORMED: "; ".join(problems)}]
    if not prices:
        return []
    return [{**common, "variant": EUR_VARIANT, "variant_key": "cardmarket", "market_price": prices.get("trendPrice"),
             "currency": "EUR", "low_price": prices.get("lowPrice"), "avg1": prices.get("avg1"),
             "avg7": prices.get("avg7"), "avg30": prices.get("avg30"), "updated_at": updated}]


def page_count(payload: dict, page_size: int) -> tuple[int, str | None]:
    """Pages of a query from its first page's ``totalCount``, and a note when that is unusable or huge."""
    total = payload.get("totalCount")
    data_count = len(payload.get("data") or [])
    if total is None:
        total = data_count
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        return 1, f"totalCount is {kind_of(total)} {total!r:.40}, not a count; fetched the first page only"
    pages = max(1, math.ceil(max(total, data_count) / page_size))
    if pages > MAX_PAGES:
        return MAX_PAGES, f"totalCount {total:,} means {pages:,} pages; fetched the first {MAX_PAGES:,} only"
    return pages, None


def stale_mask(frame: pd.DataFrame, end, stale_days: int) -> pd.Series:
    """True for rows whose ``updated_at`` is before the stale cutoff (unknown dates are not stale)."""
    return (frame["updated_at"] < stale_cutoff(end, stale_days)).fillna(False).astype(bool)


def build_queries(options: dict, selection: Selection) -> list[tuple[str, str | None]]:
    """``(q, category)`` pairs to fetch, from the options ``q``/``set`` and the watchlist."""
    queries: list[tuple[str, str | None]] = []
    if options.get("q"):
        queries.append((str(options["q"]), None))
    for set_id in str(options.get("set") or "").split(","):
        if set_id.strip():
            queries.append((f"set.id:{set_id.strip()}", None))
    for set_id, category in selection.sets.items():
        queries.append((f"set.id:{set_id}", category))
    card_ids = list(selection.cards)
    for start in range(0, len(card_ids), CARD_BATCH):
        batch = card_ids[start:start + CARD_BATCH]
        q = f"id:{batch[0]}" if len(batch) == 1 else "(" + " OR ".join(f"id:{c}" for c in batch) + ")"
        queries.append((q, None))
    for q, category in selection.queries.items():
        queries.append((q, category))
    seen = set()
    unique = []
    for q, category in queries:
        if q not in seen:
            seen.add(q)
            unique.append((q, category))
    return unique or [("", None)]


class PokemonTcgSource(PriceSource):
    """pokemontcg.io v2 ``/v2/cards``: TCGplayer USD and Cardmarket EUR prices per card."""

    name = "pokemontcg"
    remote = True
    OPTIONS = (
        Option("q", "text", None, "a pokemontcg.io q query, e.g. set.id:sv3pt5"),
        Option("set", "text", None, "set ids to fetch, comma-separated"),
        Option("page_size", "int", MAX_PAGE_SIZE, "cards per page", minimum=1, maximum=MAX_PAGE_SIZE),
        Option("stale_days", "int", DEFAULT_STALE_DAYS, "drop prices updated more than this many days before the "
               "run date", minimum=0, maximum=36_500),
        rate_option(None),
        WATCHLIST_OPTION,
        *HTTP_OPTIONS,
    )

    def fetch(self, request: CollectRequest, raw: RawArchive) -> FetchReport:
        """Fetch every page of every query into ``raw``; note stale prices.

        Raises:
            ParameterError: a multi-day range, or a bad ``pageSize`` / ``stale_days``.
        """
        options = self.check_options(request.options)
        if request.start != request.end:
            raise ParameterError(
                "pokemontcg.io serves only current prices, so it cannot backfill "
                f"{request.start:%Y-%m-%d}..{request.end:%Y-%m-%d}; collect one day, or backfill with "
                "--source tcgcsv --archives DIR or --source pokemonpricetracker"
            )
        page_size, stale_days = options["page_size"], options["stale_days"]
        selection = selection_from_options(options, self.name)
        raw.put("selection.json", selection.to_json(), kind="selection", ok=True)
        key = os.environ.get(KEY_VARIABLE) or None
        rate = options["rate_limit_per_minute"] or (120 if key else 30)
        client = HttpClient(self.name, base_url(), settings=HttpSettings.resolve(options), rate=(rate, 60.0),
                            headers={"X-Api-Key": key} if key else None, secrets=[key])
        queries = build_queries(options, selection)
        if queries == [("", None)]:
            logger.warning("pokemontcg: no watchlist, q or set given; fetching every card (~80 pages)")
        report = FetchReport()
        stale = {"USD": [], "EUR": []}
        unknown_variants: Counter = Counter()
        stopped: RateLimitedError | None = None
        bar = Progress("pokemontcg.io", len(queries), unit="page", every=10)
        for q, category in queries:
            tag = hashlib.sha1(q.encode()).hexdigest()[:8]
            page, pages = 1, 1
            while page <= pages:
                report.expected += 1
                item = f"q={q!r} page {page}" if q else f"all cards page {page}"
                if stopped is not None:
                    report.failures.append({"item": item, "error": f"not fetched: stopped after HTTP 429 ({stopped})"})
                    break
                params = {"page": page, "pageSize": page_size, "select": SELECT}
                if q:
                    params["q"] = q
                try:
                    response = client.fetch(raw, safe_name("cards", q[:40] or "all", tag, f"p{page}") + ".json",
                                            "/v2/cards", params, meta={"kind": "cards", "q": q, "page": page,
                                                                       "category": category})
                    payload = response.json()
                    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
                        raise HttpError(f"pokemontcg: GET {response.url} answered JSON without a 'data' list",
                                        url=response.url, status=response.status)
                except RateLimitedError as exc:
                    stopped = exc
                    report.failures.append(exc.as_failure(item))
                    break
                except HttpError as exc:
                    report.failures.append(exc.as_failure(item))
                    if page == 1:
                        break  # without the first page the page count is unknown
                    page += 1
                    bar.update(1)
                    continue
                if page == 1:
                    pages, problem = page_count(payload, page_size)
                    if problem:
                        report.notes.append({"kind": "page_count", "query": q, "detail": problem})
                    bar.total = bar.total + pages - 1
                frame = card_rows(payload["data"], request.end)
                frame = frame[frame[MALFORMED].isna()]
                for currency, found in stale.items():
                    mask = stale_mask(frame, request.end, stale_days) & frame["currency"].eq(currency)
                    found.extend(zip(frame.loc[mask, "card_id"], frame.loc[mask, "updated_at"]))
                unknown_variants.update(frame.loc[frame["currency"].eq("USD") & ~frame["variant_key"]
                                        .isin(list(VARIANT_NAMES)), "variant_key"])
                page += 1
                bar.update(1)
        bar.close()
        self._report_stale(report, stale, request.end, stale_days)
        if unknown_variants:
            report.notes.append({"kind": "unknown_variants", "variants": dict(unknown_variants),
                                 "detail": "tcgplayer.prices keys PokeWatch has no name for; kept as-is"})
        if not key and client.requests_made > 1000:
            report.notes.append({"kind": "quota", "detail": f"{client.requests_made} requests without "
                                 f"{KEY_VARIABLE}; the keyless limit is 1,000 a day"})
        return report

    @staticmethod
    def _report_stale(report: FetchReport, stale: dict, end, stale_days: int) -> None:
        cutoff = stale_cutoff(end, stale_days)
        for currency, found in stale.items():
            if not found:
                continue
            cards = sorted({str(c) for c, _ in found})
            oldest = min(d for _, d in found)
            report.notes.append({
                "kind": "stale_prices", "currency": currency, "count": len(found),
                "stale_days": stale_days, "updated_before": f"{cutoff:%Y-%m-%d}",
                "oldest_updated_at": f"{oldest:%Y-%m-%d}", "examples": cards[:10],
                "action": f"dropped: not stored as the price of {pd.Timestamp(end):%Y-%m-%d}",
            })
            logger.warning("pokemontcg: %d %s price(s) last updated before %s were dropped as stale",
                           len(found), currency, f"{cutoff:%Y-%m-%d}")

    def parse(self, request: CollectRequest, raw: RawArchive) -> pd.DataFrame:
        """Rows of every good page in ``raw``, stale prices dropped, categories assigned."""
        stale_days = self.check_options(request.options, files=False)["stale_days"]
        selection = stored_selection(raw, self.name)
        frames = []
        for entry, payload in fetched_payloads(raw, "cards"):
            if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
                continue
            frame = card_rows(payload["data"], request.end)
            frame["query_category"] = entry.get("category")
            frames.append(frame)
        frame = pd.concat(frames, ignore_index=True) if frames else card_rows([], request.end)
        if "query_category" not in frame.columns:
            frame["query_category"] = pd.NA
        frame = frame.loc[~stale_mask(frame, request.end, stale_days)]
        # a card reached by two queries (its set and itself) is one observation
        repeated = frame.duplicated(["card_id", "variant", "currency"], keep="first") & frame["card_id"].notna() \
            & frame[MALFORMED].isna()
        frame = frame.loc[~repeated]
        frame = selection.assign_categories(frame, frame["query_category"])
        return frame.drop(columns=["query_category"]).reset_index(drop=True)
