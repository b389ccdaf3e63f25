"""The ``pokemonpricetracker`` source: the original project's API v2, with price history.

Why: it is the only source here with per-card daily history behind one request,
so it can backfill a watchlist without archives.

Request: ``GET {POKEWATCH_PPT_URL}/cards`` with ``Authorization: Bearer <key>``:

* ``tcgPlayerId=<id>`` for one card; ``data`` is then one object;
* ``setId=<id>`` (or ``search=<text>``) with ``limit`` (at most 200) and ``offset``;
  ``data`` is a list, paged until ``metadata.hasMore`` is false (or a short page);
* ``includeHistory=true&days=N`` with N reaching back from today to the first
  requested day.

Mapping to the long schema: ``card_id`` = ``tcgPlayerId`` (TCGplayer's productId,
the same id tcgcsv uses), one row per entry of
``priceHistory.conditions["Near Mint"].history[{date, market, volume}]`` inside
[start, end], plus the current ``prices.market`` on the day of
``prices.lastUpdated`` when history has no entry for that day. Nothing is stored
under a date it was not observed on. ``variant`` is the printing when the card
names one (``prices.primaryPrinting``, ``variant`` or ``printing``), else
``option variant`` (default ``Normal``); ``condition`` and ``volume`` are kept.
Currency USD.

Key: ``POKEMONPRICETRACKER_API_KEY`` is required; a missing or rejected key stops
the collect with a message saying so. A 429 usually means the day's credits are
spent: the collect stops at once (no retry loop), lists every card it did not
fetch, and fails only if that drops completeness below the threshold.
"""
from __future__ import annotations

import logging
import os

import pandas as pd

from pokewatch.errors import ParameterError, SourceError
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

DEFAULT_URL = "https://www.pokemonpricetracker.com/api/v2"
KEY_VARIABLE = "POKEMONPRICETRACKER_API_KEY"
MAX_LIMIT = 200
DEFAULT_CONDITION = "Near Mint"
DEFAULT_VARIANT = "Normal"
DEFAULT_RATE_PER_MINUTE = 60


def base_url() -> str:
    return os.environ.get("POKEWATCH_PPT_URL", DEFAULT_URL).rstrip("/")


def cards_of(payload) -> list[dict]:
    """``data`` as a list: one object for a single ``tcgPlayerId``, a list otherwise."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list):
        return [c for c in data if isinstance(c, dict)]
    return []


def card_rows(cards: list[dict], start, end, condition: str = DEFAULT_CONDITION,
              default_variant: str = DEFAULT_VARIANT) -> pd.DataFrame:
    """Long-schema rows of the observations in [start, end] (history, then the current price)."""
    lo, hi = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    rows = []
    for card in cards:
        prices = card.get("prices") if isinstance(card.get("prices"), dict) else {}
        variant = prices.get("primaryPrinting") or card.get("variant") or card.get("printing") or default_variant
        tcg_id = card.get("tcgPlayerId", card.get("tcgplayerId"))
        common = {"card_id": None if tcg_id in (None, "") else str(tcg_id), "variant": str(variant),
                  "currency": "USD", "source": "pokemonpricetracker", "name": card.get("name"),
                  "set_id": None if card.get("setId") is None else str(card.get("setId")),
                  "set_name": card.get("setName"), "number": card.get("cardNumber", card.get("number")),
                  "rarity": card.get("rarity"), "condition": condition}
        seen = set()
        history = (((card.get("priceHistory") or {}).get("conditions") or {}).get(condition) or {}).get("history")
        for point in history if isinstance(history, list) else []:
            if not isinstance(point, dict):
                continue
            day = as_day(point.get("date"))
            if day is None or not lo <= day <= hi or day in seen:
                continue
            seen.add(day)
            rows.append({**common, "date": day, "market_price": point.get("market"),
                         "volume": point.get("volume"), "price_kind": "history"})
        updated = as_day(prices.get("lastUpdated"))
        if updated is not None and lo <= updated <= hi and updated not in seen and "market" in prices:
            rows.append({**common, "date": updated, "market_price": prices.get("market"), "volume": None,
                         "price_kind": "current"})
    columns = ["card_id", "variant", "date", "market_price", "currency", "source", "name", "set_id",
               "set_name", "number", "rarity", "condition", "volume", "price_kind"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["date"] = pd.to_datetime(frame["date"])
    frame["volume"] = pd.to_numeric(frame["volume"], errors="coerce").astype("Float64")
    return frame


def history_days(start, today=None) -> int:
    """``days`` to ask for so history reaches back from today to ``start``."""
    today = pd.Timestamp.today().normalize() if today is None else pd.Timestamp(today).normalize()
    return max(1, (today - pd.Timestamp(start).normalize()).days + 1)


class PokemonPriceTrackerSource(PriceSource):
    """PokemonPriceTracker API v2 ``/cards`` with Near Mint price history."""

    name = "pokemonpricetracker"
    remote = True

    def _targets(self, options: dict, selection: Selection) -> list[tuple[str, str, str | None]]:
        """``(param, value, category)`` per request family: tcgPlayerId, setId or search."""
        targets = []
        for value in str(options.get("tcgplayer_id") or "").split(","):
            if value.strip():
                targets.append(("tcgPlayerId", value.strip(), None))
        for value in str(options.get("set_id") or "").split(","):
            if value.strip():
                targets.append(("setId", value.strip(), None))
        targets += [("tcgPlayerId", card, category) for card, category in selection.cards.items()]
        targets += [("setId", set_id, category) for set_id, category in selection.sets.items()]
        targets += [("search", q, category) for q, category in selection.queries.items()]
        return list(dict.fromkeys(targets))

    def fetch(self, request: CollectRequest, raw: RawArchive) -> FetchReport:
        """Fetch each watched card, set or search (with history) into ``raw``.

        Raises:
            SourceError: the key is missing or rejected (HTTP 401/403).
            ParameterError: nothing to fetch (no watchlist, ``tcgplayer_id`` or ``set_id``).
        """
        key = os.environ.get(KEY_VARIABLE, "").strip()
        if not key:
            raise SourceError(
                f"the pokemonpricetracker source needs an API key: export {KEY_VARIABLE}=<your key> "
                "(free keys at https://www.pokemonpricetracker.com); it is read from the environment "
                "only and never written to the run folder"
            )
        options = request.options
        selection = selection_from_options(options, self.name)
        raw.put("selection.json", selection.to_json(), kind="selection", ok=True)
        targets = self._targets(options, selection)
        if not targets:
            raise ParameterError(
                "pokemonpricetracker needs a watchlist (--param watchlist=PATH with cards = tcgPlayerIds or "
                "sets = setIds) or --param tcgplayer_id=ID[,ID] / --param set_id=ID; fetching everything "
                "would spend the day's credits"
            )
        limit = int_option(options, "limit", MAX_LIMIT, maximum=MAX_LIMIT)
        rate = int_option(options, "rate_limit_per_minute", DEFAULT_RATE_PER_MINUTE)
        client = HttpClient(self.name, base_url(), settings=HttpSettings.resolve(options, retry_429=False),
                            rate=(rate, 60.0), headers={"Authorization": f"Bearer {key}"}, secrets=[key])
        days = history_days(request.start, max(request.end, pd.Timestamp.today().normalize()))
        report = FetchReport()
        stopped: RateLimitedError | None = None
        for param, value, category in progress(targets, desc="pokemonpricetracker", unit="request"):
            offset = 0
            while True:
                report.expected += 1
                item = f"{param}={value}" + (f" offset {offset}" if param != "tcgPlayerId" else "")
                if stopped is not None:
                    report.failures.append({"item": item, "error": "not fetched: the API answered 429 earlier "
                                            "(daily credits spent?); run again tomorrow"})
                    break
                params = {param: value, "includeHistory": "true", "days": days}
                if param != "tcgPlayerId":
                    params.update(limit=limit, offset=offset)
                try:
                    response = client.fetch(raw, safe_name("cards", param, value, f"o{offset}") + ".json", "/cards",
                                            params, meta={"kind": "cards", "param": param, "value": value,
                                                          "offset": offset, "category": category})
                    payload = response.json()
                except RateLimitedError as exc:
                    stopped = exc
                    report.failures.append(exc.as_failure(item))
                    logger.error("pokemonpricetracker answered 429; stopping (the day's credits may be spent)")
                    break
                except HttpError as exc:
                    if exc.status in (401, 403):
                        raise SourceError(f"{KEY_VARIABLE} was rejected (HTTP {exc.status}): "
                                          f"{exc.api_message or exc}; check the key") from None
                    report.failures.append(exc.as_failure(item))
                    break
                if param == "tcgPlayerId":
                    break
                cards = cards_of(payload)
                metadata = payload.get("metadata") if isinstance(payload, dict) else None
                has_more = metadata.get("hasMore") if isinstance(metadata, dict) else None
                if has_more is None:
                    has_more = len(cards) >= limit
                if not has_more or not cards:
                    break
                offset += len(cards)  # not += limit: a plan may cap the page below the limit asked
        if stopped is not None:
            report.notes.append({"kind": "credits_exhausted", "detail": str(stopped),
                                 "not_fetched": sum(1 for f in report.failures
                                                    if f["error"].startswith("not fetched"))})
        return report

    def parse(self, request: CollectRequest, raw: RawArchive) -> pd.DataFrame:
        """Rows of every good response in ``raw`` within [start, end], categories assigned."""
        options = request.options
        condition = str(options.get("condition") or DEFAULT_CONDITION)
        variant = str(options.get("variant") or DEFAULT_VARIANT)
        selection = stored_selection(raw, self.name)
        frames = []
        for entry, payload in fetched_payloads(raw, "cards"):
            frame = card_rows(cards_of(payload), request.start, request.end, condition, variant)
            frame["query_category"] = entry.get("category")
            frames.append(frame)
        frame = pd.concat(frames, ignore_index=True) if frames else card_rows([], request.start, request.end)
        if "query_category" not in frame.columns:
            frame["query_category"] = pd.NA
        repeated = frame.duplicated(["card_id", "variant", "currency", "date"]) & frame["card_id"].notna()
        frame = frame.loc[~repeated]
        frame = selection.assign_categories(frame, frame["query_category"])
        return frame.drop(columns=["query_category"]).reset_index(drop=True)
