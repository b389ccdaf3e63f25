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
Currency USD. A card or history point in an undocumented shape becomes a row marked
malformed (validation rejects it as ``malformed_record``); a history point with an
unreadable date is kept so validation rejects it as ``bad_date``. An answer whose
envelope is not the documented ``{data: ...}`` counts as a failed request, with
what came instead, so it lowers completeness instead of passing as "no cards".

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

DEFAULT_URL = "https://www.pokemonpricetracker.com/api/v2"
KEY_VARIABLE = "POKEMONPRICETRACKER_API_KEY"
MAX_LIMIT = 200
#: Most pages read per set or search (100,000 cards): an API that always says hasMore cannot loop forever.
MAX_PAGES = 500
DEFAULT_CONDITION = "Near Mint"
DEFAULT_VARIANT = "Normal"
DEFAULT_RATE_PER_MINUTE = 60


def base_url() -> str:
    return os.environ.get("POKEWATCH_PPT_URL", DEFAULT_URL).rstrip("/")


def cards_of(payload) -> list:
    """``data`` as a list: one object for a single ``tcgPlayerId``, a list otherwise (items unchecked)."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list):
        return data
    return []


def envelope_problem(payload, single: bool) -> str | None:
    """Why an answer is not the documented ``{data: ...}`` envelope, or None.

    Args:
        single: a ``tcgPlayerId`` request, whose ``data`` is one object (a list is tolerated).
    """
    if not isinstance(payload, dict):
        return f"the answer is {kind_of(payload)}, not a JSON object with 'data'"
    data = payload.get("data")
    if isinstance(data, list) or (single and isinstance(data, dict)):
        return None
    keys = ", ".join(sorted(map(str, payload))[:8]) or "none"
    wanted = "an object or a list" if single else "a list"
    return (f"'data' is {kind_of(data)}, not {wanted} (top-level keys: {keys}); the API's format may have "
            "changed, the answer is kept in the raw archive")


_COLUMNS = ["card_id", "variant", "date", "market_price", "currency", "source", "name", "set_id", "set_name",
            "number", "rarity", "condition", "volume", "price_kind", MALFORMED]


def _card_common(card: dict, condition: str, default_variant: str) -> tuple[dict, dict, list[str]]:
    """The fields every row of ``card`` shares, its ``prices`` block, and what is malformed."""
    problems = [f"key {key} is given twice" for key in duplicate_keys(card)]
    prices, problem = object_of(card.get("prices"), "prices")
    problems.append(problem)
    card_id, problem = source_id(card.get("tcgPlayerId", card.get("tcgplayerId")), "tcgPlayerId")
    problems.append(problem)
    common = {"card_id": card_id, "currency": "USD", "source": "pokemonpricetracker", "condition": condition}
    variant = prices.get("primaryPrinting") or card.get("variant") or card.get("printing") or default_variant
    common["variant"], problem = text_of(variant, "variant")
    problems.append(problem)
    for column, value, field_name in (("name", card.get("name"), "name"), ("set_id", card.get("setId"), "setId"),
                                      ("set_name", card.get("setName"), "setName"),
                                      ("number", card.get("cardNumber", card.get("number")), "cardNumber"),
                                      ("rarity", card.get("rarity"), "rarity")):
        common[column], problem = text_of(value, field_name)
        problems.append(problem)
    return common, prices, [p for p in problems if p]


def _history(card: dict, condition: str) -> tuple[list, str | None]:
    """``priceHistory.conditions[condition].history``, or why it is unreadable."""
    node, path = card.get("priceHistory"), "priceHistory"
    for key in ("conditions", condition, "history"):
        if node is None:
            return [], None
        if not isinstance(node, dict):
            return [], f"{path} is {kind_of(node)}, not an object"
        node, path = node.get(key), f"{path}.{key}"
    if node is None:
        return [], None
    if not isinstance(node, list):
        return [], f"{path} is {kind_of(node)}, not a list"
    return node, None


def card_rows(cards: list, start, end, condition: str = DEFAULT_CONDITION,
              default_variant: str = DEFAULT_VARIANT) -> pd.DataFrame:
    """Long-schema rows of the observations in [start, end] (history, then the current price).

    Never raises on a card's content: a card or history point in an undocumented
    shape becomes a row whose ``malformed`` column says what was wrong.
    """
    lo, hi = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    rows = []
    for position, card in enumerate(cards):
        if not isinstance(card, dict):
            rows.append({"date": hi, "source": "pokemonpricetracker", "currency": "USD",
                         MALFORMED: f"card {position + 1} of the answer is {kind_of(card)}, not an object"})
            continue
        common, prices, problems = _card_common(card, condition, default_variant)
        history, problem = _history(card, condition)
        if problem:
            problems.append(problem)
        if problems:
            rows.append({**common, "date": hi, MALFORMED: "; ".join(problems)})
            continue
        seen = set()
        for point in history:
            if not isinstance(point, dict):
                rows.append({**common, "date": hi, "price_kind": "history",
                             MALFORMED: f"a {condition} history point is {kind_of(point)}, not an object"})
                continue
            day = as_day(point.get("date"))
            if day is None:  # kept: validation counts it as bad_date
                rows.append({**common, "date": point.get("date") if isinstance(point.get("date"), str) else None,
                             "market_price": point.get("market"), "volume": point.get("volume"),
                             "price_kind": "history"})
                continue
            if not lo <= day <= hi or day in seen:
                continue
            seen.add(day)
            rows.append({**common, "date": day, "market_price": point.get("market"),
                         "volume": point.get("volume"), "price_kind": "history"})
        updated = as_day(prices.get("lastUpdated"))
        if updated is not None and lo <= updated <= hi and updated not in seen and "market" in prices:
            rows.append({**common, "date": updated, "market_price": prices.get("market"), "volume": None,
                         "price_kind": "current"})
    frame = pd.DataFrame(rows, columns=_COLUMNS)
    frame["date"] = pd.to_datetime(frame["date"], errors="coerce", format="mixed")
    frame["volume"] = pd.to_numeric(frame["volume"], errors="coerce").astype("Float64")
    frame[MALFORMED] = frame[MALFORMED].astype("string")
    return frame


def history_days(start, today=None) -> int:
    """``days`` to ask for so history reaches back from today to ``start``."""
    today = pd.Timestamp.today().normalize() if today is None else pd.Timestamp(today).normalize()
    return max(1, (today - pd.Timestamp(start).normalize()).days + 1)


class PokemonPriceTrackerSource(PriceSource):
    """PokemonPriceTracker API v2 ``/cards`` with Near Mint price history."""

    name = "pokemonpricetracker"
    remote = True
    OPTIONS = (
        Option("tcgplayer_id", "text", None, "tcgPlayerIds to fetch, comma-separated"),
        Option("set_id", "text", None, "setIds (TCGplayer groupIds) to fetch, comma-separated"),
        Option("limit", "int", MAX_LIMIT, "cards per page of a set or search", minimum=1, maximum=MAX_LIMIT),
        Option("condition", "text", DEFAULT_CONDITION, "the priceHistory condition to read"),
        Option("variant", "text", DEFAULT_VARIANT, "the variant of cards that name none"),
        rate_option(DEFAULT_RATE_PER_MINUTE),
        WATCHLIST_OPTION,
        *HTTP_OPTIONS,
    )

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
        options = self.check_options(request.options)
        selection = selection_from_options(options, self.name)
        raw.put("selection.json", selection.to_json(), kind="selection", ok=True)
        targets = self._targets(options, selection)
        if not targets:
            raise ParameterError(
                "pokemonpricetracker needs a watchlist (--param watchlist=PATH with cards = tcgPlayerIds or "
                "sets = setIds) or --param tcgplayer_id=ID[,ID] / --param set_id=ID; fetching everything "
                "would spend the day's credits"
            )
        limit, rate = options["limit"], options["rate_limit_per_minute"]
        client = HttpClient(self.name, base_url(), settings=HttpSettings.resolve(options, retry_429=False),
                            rate=(rate, 60.0), headers={"Authorization": f"Bearer {key}"}, secrets=[key])
        days = history_days(request.start, max(request.end, pd.Timestamp.today().normalize()))
        report = FetchReport()
        stopped: RateLimitedError | None = None
        unexpected: list[str] = []
        bar = Progress("pokemonpricetracker", len(targets), unit="request")
        for param, value, category in targets:
            bar.update(1, detail=f"{param}={value}")
            offset, pages = 0, 0
            while True:
                pages += 1
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
                problem = envelope_problem(payload, single=param == "tcgPlayerId")
                if problem:
                    report.failures.append({"item": item, "error": f"{response.url}: {problem}",
                                            "url": response.url, "status": response.status})
                    unexpected.append(item)
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
                if pages >= MAX_PAGES:
                    report.notes.append({"kind": "page_limit", "item": item, "detail": f"stopped after {MAX_PAGES} "
                                         "pages: the API kept saying hasMore"})
                    break
                offset += len(cards)  # not += limit: a plan may cap the page below the limit asked
        bar.close()
        if unexpected:
            report.notes.append({"kind": "unexpected_response_shape", "count": len(unexpected),
                                 "items": unexpected[:20], "detail": "answers without the documented 'data'; "
                                 "counted as failed requests, kept in the raw archive"})
            logger.error("pokemonpricetracker: %d answer(s) in an unexpected shape, e.g. %s", len(unexpected),
                         unexpected[0])
        if stopped is not None:
            report.notes.append({"kind": "credits_exhausted", "detail": str(stopped),
                                 "not_fetched": sum(1 for f in report.failures
                                                    if f["error"].startswith("not fetched"))})
        return report

    def parse(self, request: CollectRequest, raw: RawArchive) -> pd.DataFrame:
        """Rows of every good response in ``raw`` within [start, end], categories assigned."""
        options = self.check_options(request.options, files=False)
        condition, variant = options["condition"], options["variant"]
        selection = stored_selection(raw, self.name)
        frames = []
        for entry, payload in fetched_payloads(raw, "cards"):
            if envelope_problem(payload, single=entry.get("param") == "tcgPlayerId"):
                continue  # counted as a failed request when fetched
            frame = card_rows(cards_of(payload), request.start, request.end, condition, variant)
            frame["query_category"] = entry.get("category")
            frames.append(frame)
        frame = pd.concat(frames, ignore_index=True) if frames else card_rows([], request.start, request.end)
        if "query_category" not in frame.columns:
            frame["query_category"] = pd.NA
        repeated = frame.duplicated(["card_id", "variant", "currency", "date"]) & frame["card_id"].notna() \
            & frame[MALFORMED].isna() & frame["date"].notna()
        frame = frame.loc[~repeated]
        frame = selection.assign_categories(frame, frame["query_category"])
        return frame.drop(columns=["query_category"]).reset_index(drop=True)
