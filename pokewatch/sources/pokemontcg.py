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
from pokewatch.http_client import (
    HttpClient,
    HttpError,
    HttpSettings,
    RateLimitedError,
    progress,
    safe_name,
)
from pokewatch.raw_archive import RawArchive
from pokewatch.sources.base import (
    CollectRequest,
    FetchReport,
    PriceSource,
    as_day,
    fetched_payloads,
    int_option,
    stored_selection,
)
from pokewatch.watchlist import Selection, selection_from_options

logger = logging.getLogger(__name__)

DEFAULT_URL = "https://api.pokemontcg.io"
KEY_VARIABLE = "POKEMONTCG_API_KEY"
MAX_PAGE_SIZE = 250
DEFAULT_STALE_DAYS = 7
CARD_BATCH = 40
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
    return as_day(None if value in (None, "") else str(value).replace("/", "-"))


def stale_cutoff(end, stale_days: int) -> pd.Timestamp:
    """Prices updated before this day are stale for a run dated ``end``."""
    return pd.Timestamp(end).normalize() - pd.Timedelta(days=stale_days)


def card_rows(cards: list[dict], date) -> pd.DataFrame:
    """USD and EUR long-schema rows of pokemontcg.io card objects (stale ones included)."""
    rows = []
    for card in cards:
        if not isinstance(card, dict):
            continue
        card_set = card.get("set") if isinstance(card.get("set"), dict) else {}
        common = {"card_id": card.get("id"), "date": date, "source": "pokemontcg", "name": card.get("name"),
                  "set_id": card_set.get("id"), "set_name": card_set.get("name"),
                  "number": card.get("number"), "rarity": card.get("rarity")}
        tcgplayer = card.get("tcgplayer") if isinstance(card.get("tcgplayer"), dict) else {}
        for key, block in (tcgplayer.get("prices") or {}).items():
            block = block if isinstance(block, dict) else {}
            rows.append({**common, "variant": VARIANT_NAMES.get(key, key), "variant_key": key,
                         "market_price": block.get("market"), "currency": "USD",
                         "low_price": block.get("low"), "mid_price": block.get("mid"),
                         "high_price": block.get("high"), "direct_low_price": block.get("directLow"),
                         "updated_at": tcgplayer.get("updatedAt")})
        cardmarket = card.get("cardmarket") if isinstance(card.get("cardmarket"), dict) else {}
        prices = cardmarket.get("prices")
        if isinstance(prices, dict) and prices:
            rows.append({**common, "variant": EUR_VARIANT, "variant_key": "cardmarket",
                         "market_price": prices.get("trendPrice"), "currency": "EUR",
                         "low_price": prices.get("lowPrice"), "avg1": prices.get("avg1"),
                         "avg7": prices.get("avg7"), "avg30": prices.get("avg30"),
                         "updated_at": cardmarket.get("updatedAt")})
    columns = ["card_id", "variant", "date", "market_price", "currency", "source", "name", "set_id",
               "set_name", "number", "rarity", "variant_key", "low_price", "mid_price", "high_price",
               "direct_low_price", "avg1", "avg7", "avg30", "updated_at"]
    frame = pd.DataFrame(rows, columns=columns)
    for column in ("low_price", "mid_price", "high_price", "direct_low_price", "avg1", "avg7", "avg30"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    frame["updated_at"] = pd.to_datetime(frame["updated_at"].map(parse_updated_at), errors="coerce")
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


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

    @staticmethod
    def _stale_days(options: dict) -> int:
        return int_option(options, "stale_days", DEFAULT_STALE_DAYS, minimum=0)

    def fetch(self, request: CollectRequest, raw: RawArchive) -> FetchReport:
        """Fetch every page of every query into ``raw``; note stale prices.

        Raises:
            ParameterError: a multi-day range, or a bad ``pageSize`` / ``stale_days``.
        """
        options = request.options
        if request.start != request.end:
            raise ParameterError(
                "pokemontcg.io serves only current prices, so it cannot backfill "
                f"{request.start:%Y-%m-%d}..{request.end:%Y-%m-%d}; collect one day, or backfill with "
                "--source tcgcsv --archives DIR or --source pokemonpricetracker"
            )
        page_size = int_option(options, "page_size", MAX_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
        stale_days = self._stale_days(options)
        selection = selection_from_options(options, self.name)
        raw.put("selection.json", selection.to_json(), kind="selection", ok=True)
        key = os.environ.get(KEY_VARIABLE) or None
        rate = int_option(options, "rate_limit_per_minute", 120 if key else 30)
        client = HttpClient(self.name, base_url(), settings=HttpSettings.resolve(options), rate=(rate, 60.0),
                            headers={"X-Api-Key": key} if key else None, secrets=[key])
        queries = build_queries(options, selection)
        if queries == [("", None)]:
            logger.warning("pokemontcg: no watchlist, q or set given; fetching every card (~80 pages)")
        report = FetchReport()
        stale = {"USD": [], "EUR": []}
        unknown_variants: Counter = Counter()
        stopped: RateLimitedError | None = None
        bar = progress(total=len(queries), desc="pokemontcg.io", unit="page")
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
                    total = int(payload.get("totalCount") or len(payload["data"]))
                    pages = max(1, math.ceil(total / page_size))
                    bar.total = (bar.total or 0) + pages - 1
                    bar.refresh()
                frame = card_rows(payload["data"], request.end)
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
        stale_days = self._stale_days(request.options)
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
        repeated = frame.duplicated(["card_id", "variant", "currency"], keep="first") & frame["card_id"].notna()
        frame = frame.loc[~repeated]
        frame = selection.assign_categories(frame, frame["query_category"])
        return frame.drop(columns=["query_category"]).reset_index(drop=True)
