"""The ``tcgcsv`` source: TCGplayer market prices of a whole category, no key needed.

Why it is the primary real source: tcgcsv.com mirrors TCGplayer's catalogue and
prices once a day as plain JSON (and as daily archives), for every product, free.

Live (one day, the run date)::

    GET {POKEWATCH_TCGCSV_URL}/tcgplayer/{category}/groups            sets ("groups")
    GET {POKEWATCH_TCGCSV_URL}/tcgplayer/{category}/{groupId}/products names, extendedData
    GET {POKEWATCH_TCGCSV_URL}/tcgplayer/{category}/{groupId}/prices   prices
    GET {POKEWATCH_TCGCSV_URL}/last-updated.txt                        when tcgcsv refreshed

Backfill: ``options["archives"]`` (a folder, a URL prefix or ``tcgcsv``) reads the
daily archives of :mod:`pokewatch.archives` for every day in [start, end].

Mapping to the long schema (one row per price of a product sub-type):

* ``card_id`` = TCGplayer ``productId`` as a string. It is TCGplayer's own stable id,
  the same one PokemonPriceTracker calls ``tcgPlayerId``; a pokemontcg.io-style id
  (``sv3pt5-199``) would need a fuzzy set-and-number match that breaks on promos,
  energies and sealed products, so we do not invent one.
* ``variant`` = ``subTypeName`` (Normal, Holofoil, Reverse Holofoil, 1st Edition ...):
  prices are keyed by (productId, subTypeName).
* ``market_price`` = ``marketPrice``, ``currency`` = USD, ``source`` = tcgcsv. A null
  ``marketPrice`` is kept as a null row, which validation rejects as
  ``missing_price`` (counted in the quality report).
* ``set_id`` = ``groupId``, ``set_name`` = the group's name; ``name``, ``number`` and
  ``rarity`` from the products (``extendedData`` Number / Rarity). Archives hold no
  products, so a backfill leaves those three empty.
* ``low_price``, ``mid_price``, ``high_price``, ``direct_low_price`` and
  ``product_id`` are kept as descriptive columns. ``highPrice`` is unreliable
  (sellers park listings at 999) and must not feed signals.

Products change rarely, so they are cached per group under the data folder
(``cache/tcgcsv/products``) and refetched when the group's ``modifiedOn`` is newer
than the cache, when the cache is older than ``products_max_age_days`` (7), or with
``refresh_products=true``. Cached products are still copied into the run's raw
archive, so a replay never needs the cache.

Options: ``category`` (3 = English Pokémon, 85 = Japanese), ``archives``,
``watchlist``, ``workers`` (parallel requests, 4), ``rate_limit_per_minute`` (300),
``products_max_age_days``, ``refresh_products`` and the ``http_*`` settings of
:mod:`pokewatch.http_client`.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from pokewatch import archives, atomic, config
from pokewatch.errors import ParameterError, SourceError
from pokewatch.http_client import (
    HttpClient,
    HttpError,
    HttpSettings,
    RateLimitedError,
    decode_json,
    map_with_progress,
    progress,
)
from pokewatch.raw_archive import RawArchive
from pokewatch.sources.base import CollectRequest, FetchReport, PriceSource, int_option, stored_selection
from pokewatch.watchlist import Selection, selection_from_options

logger = logging.getLogger(__name__)

DEFAULT_CATEGORY = 3
DEFAULT_WORKERS = 4
DEFAULT_RATE_PER_MINUTE = 300
PRODUCTS_MAX_AGE_DAYS = 7
_PRICE_COLUMNS = {"lowPrice": "low_price", "midPrice": "mid_price", "highPrice": "high_price",
                  "directLowPrice": "direct_low_price"}


def category_option(options: dict) -> int:
    """TCGplayer category id from ``options["category"]`` (3 = English Pokémon, 85 = Japanese)."""
    return int_option(options, "category", DEFAULT_CATEGORY)


def _truthy(value) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def products_cache_dir() -> Path:
    return config.data_dir() / "cache" / "tcgcsv" / "products"


# --------------------------------------------------------------------------- pure parsing

def groups_frame(payload: dict) -> pd.DataFrame:
    """``groupId`` (string), ``name``, ``abbreviation``, ``modifiedOn`` of a groups response."""
    results = payload.get("results") if isinstance(payload, dict) else None
    if not isinstance(results, list):
        raise SourceError("tcgcsv groups response has no 'results' list")
    frame = pd.DataFrame.from_records(results)
    for column in ("groupId", "name", "abbreviation", "modifiedOn"):
        if column not in frame.columns:
            frame[column] = pd.NA
    frame["groupId"] = frame["groupId"].astype("Int64").astype("string")
    return frame


def product_details(payload: dict) -> pd.DataFrame:
    """``product_id``, ``name``, ``number``, ``rarity`` of a products response."""
    rows = []
    for product in payload.get("results") or []:
        extended = {str(e.get("name")): e.get("value") for e in product.get("extendedData") or []
                    if isinstance(e, dict)}
        rows.append({"product_id": product.get("productId"), "name": product.get("name"),
                     "number": extended.get("Number"), "rarity": extended.get("Rarity")})
    frame = pd.DataFrame(rows, columns=["product_id", "name", "number", "rarity"])
    frame["product_id"] = pd.to_numeric(frame["product_id"], errors="coerce").astype("Int64")
    return frame


def price_rows(results_by_group: dict[str, list], date) -> pd.DataFrame:
    """Long-schema rows (before descriptive joins) from price results per groupId."""
    records = []
    for group_id, results in results_by_group.items():
        for result in results:
            if isinstance(result, dict):
                records.append({**result, "groupId": group_id})
    frame = pd.DataFrame.from_records(records)
    for column in ("productId", "subTypeName", "marketPrice", *_PRICE_COLUMNS):
        if column not in frame.columns:
            frame[column] = pd.NA
    if frame.empty:
        frame["groupId"] = pd.Series(dtype="string")
    product_id = pd.to_numeric(frame["productId"], errors="coerce").astype("Int64")
    out = pd.DataFrame({
        "card_id": product_id.astype("string"),
        "variant": frame["subTypeName"].astype("string"),
        "date": pd.Timestamp(date),
        # raw values: validation tells a null (missing_price) from junk (non_numeric_price)
        "market_price": frame["marketPrice"].astype(object),
        "currency": "USD",
        "source": "tcgcsv",
        "set_id": frame["groupId"].astype("string"),
        "product_id": product_id,
    })
    for api_name, column in _PRICE_COLUMNS.items():
        out[column] = pd.to_numeric(frame[api_name], errors="coerce").astype("float64")
    return out


def _results(body: bytes) -> list | None:
    """The ``results`` list of a tcgcsv JSON document, or None when unusable."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("results"), list):
        return None
    return payload["results"]


def _tcgcsv_errors(payload) -> str | None:
    """Why a tcgcsv document is unusable (``success: false``, no results), or None."""
    if not isinstance(payload, dict):
        return "the document is not a JSON object"
    if payload.get("success") is False:
        return f"tcgcsv reported success=false, errors={payload.get('errors')}"
    if not isinstance(payload.get("results"), list):
        return "the document has no 'results' list"
    return None


def resolve_sets(selection: Selection, groups: pd.DataFrame | None) -> tuple[Selection, list[str]]:
    """Map watchlist set values (groupId, name or abbreviation) to groupIds.

    Returns the resolved selection and the values that matched no group.
    """
    if not selection.sets:
        return selection, []
    resolved: dict[str, str | None] = {}
    unknown = []
    lookup: dict[str, str] = {}
    if groups is not None and not groups.empty:
        for row in groups.itertuples(index=False):
            gid = str(row.groupId)
            lookup[gid] = gid
            for label in (getattr(row, "name", None), getattr(row, "abbreviation", None)):
                if isinstance(label, str) and label.strip():
                    lookup.setdefault(label.strip().lower(), gid)
    for value, category in selection.sets.items():
        gid = lookup.get(value) or lookup.get(value.strip().lower())
        if gid is None and groups is None and value.isdigit():
            gid = value  # no group list to check against: trust a numeric id
        if gid is None:
            unknown.append(value)
        elif resolved.get(gid) is None:
            resolved[gid] = category
    return Selection(source=selection.source, sets=resolved, cards=dict(selection.cards),
                     queries=dict(selection.queries)), unknown


# --------------------------------------------------------------------------- the source

class TcgcsvSource(PriceSource):
    """TCGplayer prices per (productId, subTypeName) from tcgcsv.com or its archives."""

    name = "tcgcsv"
    remote = True

    def can_backfill(self, options: dict) -> bool:
        """A folder or URL of daily archives can produce past days; the live API cannot."""
        return options.get("archives") not in (None, "")

    def _client(self, options: dict) -> HttpClient:
        rate = int_option(options, "rate_limit_per_minute", DEFAULT_RATE_PER_MINUTE)
        return HttpClient(self.name, archives.tcgcsv_base_url(), settings=HttpSettings.resolve(options),
                          rate=(rate, 60.0))

    # ----------------------------------------------------------------- fetch
    def fetch(self, request: CollectRequest, raw: RawArchive) -> FetchReport:
        """Download groups, products and prices (live) or read archives (backfill) into ``raw``.

        Raises:
            ParameterError: a multi-day range without ``archives``, a bad option, or a
                watchlist whose sets match no group.
            SourceError: the archive URL refuses downloads (403).
        """
        options = request.options
        category = category_option(options)
        selection = selection_from_options(options, self.name)
        if selection.queries:
            logger.warning("tcgcsv ignores watchlist queries %s; list sets or cards instead",
                           list(selection.queries))
        if options.get("archives") not in (None, ""):
            return self._fetch_archives(request, raw, category, selection)
        if request.start != request.end:
            raise ParameterError(
                f"tcgcsv serves only the current day's prices; to backfill {request.start:%Y-%m-%d}.."
                f"{request.end:%Y-%m-%d} pass --archives DIR (a folder of prices-YYYY-MM-DD.ppmd.7z)"
            )
        return self._fetch_live(request, raw, category, selection)

    def _ignored_queries_note(self, report: FetchReport, selection: Selection) -> None:
        if selection.queries:
            report.notes.append({"kind": "watchlist_queries_ignored", "queries": sorted(selection.queries),
                                 "detail": "tcgcsv cannot search; list sets (groupId or name) or cards "
                                           "(productId) instead"})

    def _select_groups(self, report: FetchReport, raw: RawArchive, selection: Selection,
                       groups: pd.DataFrame | None, category: int) -> Selection:
        resolved, unknown = resolve_sets(selection, groups)
        if unknown:
            known = [] if groups is None else groups["name"].dropna().astype(str).head(5).tolist()
            report.notes.append({"kind": "watchlist_sets_not_found", "sets": unknown,
                                 "detail": f"no group of category {category} has this groupId, name or "
                                           f"abbreviation; e.g. {known}"})
            if not resolved.sets and not resolved.cards:
                raise ParameterError(
                    f"none of the watchlist sets {unknown} is a tcgcsv group of category {category}; "
                    f"use groupIds or exact group names such as {known}"
                )
        raw.put("selection.json", resolved.to_json(), kind="selection", ok=True)
        self._ignored_queries_note(report, resolved)
        return resolved

    def _fetch_live(self, request: CollectRequest, raw: RawArchive, category: int,
                    selection: Selection) -> FetchReport:
        options = request.options
        client = self._client(options)
        report = FetchReport(expected=1)
        try:
            response = client.fetch(raw, f"groups-{category}.json", f"/tcgplayer/{category}/groups",
                                    meta={"kind": "groups", "category": category})
            payload = response.json()
            problem = _tcgcsv_errors(payload)
            if problem:
                raise SourceError(f"tcgcsv groups of category {category}: {problem}")
            groups = groups_frame(payload)
        except (HttpError, SourceError) as exc:
            report.failures.append({"item": f"groups of category {category}", "error": str(exc)})
            return report
        self._note_last_updated(client, raw, report, request.end)
        selection = self._select_groups(report, raw, selection, groups, category)
        if selection.sets and not selection.cards:
            groups = groups[groups["groupId"].isin(list(selection.sets))]
        modified = dict(zip(groups["groupId"], _naive_utc(groups["modifiedOn"])))
        workers = int_option(options, "workers", DEFAULT_WORKERS)
        max_age = int_option(options, "products_max_age_days", PRODUCTS_MAX_AGE_DAYS, minimum=0)
        refresh = _truthy(options.get("refresh_products", False))
        stop = threading.Event()
        cache_hits = []

        def fetch_group(group_id: str) -> list[dict]:
            failures = []
            for kind in ("products", "prices"):
                item = f"group {group_id} {kind}"
                if stop.is_set():
                    failures.append({"item": item, "error": "not fetched: stopped after an HTTP 429"})
                    continue
                try:
                    if kind == "products" and self._cached_products(raw, category, group_id,
                                                                    modified.get(group_id), max_age, refresh):
                        cache_hits.append(group_id)
                        continue
                    response = client.fetch(raw, f"{kind}-{category}-{group_id}.json",
                                            f"/tcgplayer/{category}/{group_id}/{kind}",
                                            meta={"kind": kind, "category": category, "group_id": group_id,
                                                  "date": f"{request.end:%Y-%m-%d}"})
                    problem = _tcgcsv_errors(response.json())
                    if problem:
                        failures.append({"item": item, "error": f"{response.url}: {problem}"})
                    elif kind == "products":
                        self._store_products_cache(category, group_id, response.body)
                except RateLimitedError as exc:
                    stop.set()
                    failures.append(exc.as_failure(item))
                except HttpError as exc:
                    failures.append(exc.as_failure(item))
            return failures

        group_ids = groups["groupId"].dropna().astype(str).tolist()
        report.expected += 2 * len(group_ids)
        for group_id, failures, error in map_with_progress(fetch_group, group_ids, workers=workers,
                                                           desc=f"tcgcsv category {category}", unit="group"):
            if error is not None:
                report.failures.append({"item": f"group {group_id}", "error": f"{type(error).__name__}: {error}"})
            else:
                report.failures.extend(failures)
        report.notes.append({"kind": "products_cache", "groups_from_cache": len(cache_hits),
                             "groups": len(group_ids), "folder": str(products_cache_dir() / str(category))})
        logger.info("tcgcsv: %d request(s), %d group(s), %d failure(s)", client.requests_made, len(group_ids),
                    len(report.failures))
        return report

    def _note_last_updated(self, client: HttpClient, raw: RawArchive, report: FetchReport, day) -> None:
        try:
            response = client.fetch(raw, "last-updated.txt", "/last-updated.txt", expect_json=False,
                                    meta={"kind": "last_updated"})
        except HttpError as exc:
            report.notes.append({"kind": "last_updated_unknown", "detail": str(exc)})
            return
        text = response.body.decode("utf-8", "replace").strip()
        try:
            updated = pd.Timestamp(text)
        except (ValueError, TypeError):
            report.notes.append({"kind": "last_updated_unknown", "detail": f"unreadable: {text[:80]!r}"})
            return
        updated_day = (updated.tz_convert("UTC").tz_localize(None) if updated.tzinfo else updated).normalize()
        note = {"kind": "prices_as_of", "last_updated": text, "stored_as": f"{day:%Y-%m-%d}"}
        if abs((updated_day - day).days) > 1:
            note["kind"] = "prices_date_mismatch"
            note["detail"] = ("tcgcsv serves only its latest prices; they are stored under the run date. "
                              "Use --archives to collect a past day.")
            logger.warning("tcgcsv prices were updated %s but are stored as %s", text, f"{day:%Y-%m-%d}")
        report.notes.append(note)

    def _cached_products(self, raw: RawArchive, category: int, group_id: str, modified_on, max_age: int,
                         refresh: bool) -> bool:
        path = products_cache_dir() / str(category) / f"{group_id}.json"
        if refresh or not path.is_file():
            return False
        cached_at = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC).replace(tzinfo=None)
        if (datetime.now(UTC).replace(tzinfo=None) - cached_at).days >= max_age:
            return False
        if modified_on is not None and not pd.isna(modified_on) and pd.Timestamp(modified_on) > cached_at:
            return False
        body = path.read_bytes()
        if _tcgcsv_errors(_safe_json(body)):
            return False
        raw.put(f"products-{category}-{group_id}.json", body, kind="products", category=category,
                group_id=group_id, ok=True, from_cache=True, cache_path=str(path),
                cached_at=cached_at.isoformat(timespec="seconds"))
        return True

    def _store_products_cache(self, category: int, group_id: str, body: bytes) -> None:
        try:
            atomic.write_bytes(products_cache_dir() / str(category) / f"{group_id}.json", body)
        except OSError as exc:  # a cache is an optimisation, never a failure
            logger.warning("could not cache tcgcsv products of group %s: %s", group_id, exc)

    def _fetch_archives(self, request: CollectRequest, raw: RawArchive, category: int,
                        selection: Selection) -> FetchReport:
        options = request.options
        location = archives.ArchiveLocation.parse(options["archives"])
        report = FetchReport()
        groups = None
        csv_path = location.groups_csv(category)
        client = self._client(options)
        if csv_path is not None:
            data = csv_path.read_bytes()
            raw.put(f"groups-{category}.csv", data, kind="groups_csv", category=category, path=str(csv_path),
                    ok=True)
            groups = archives.parse_groups_csv(data)
        elif location.is_remote:
            try:
                response = client.fetch(raw, f"groups-{category}.json", f"/tcgplayer/{category}/groups",
                                        meta={"kind": "groups", "category": category})
                groups = groups_frame(response.json())
            except SourceError as exc:
                report.notes.append({"kind": "set_names_unavailable", "detail": str(exc)})
        else:
            report.notes.append({"kind": "set_names_unavailable",
                                 "detail": f"no groups-category-{category}.csv in {location.folder}; "
                                           "set_name stays empty"})
        selection = self._select_groups(report, raw, selection, groups, category)
        only_groups = set(selection.sets) if selection.sets and not selection.cards else None
        started = time.perf_counter()
        rows = 0
        skipped: list[str] = []
        days = list(request.days)
        # PPMd decoding releases the GIL: read a few days at once, in bounded chunks
        workers = min(int_option(options, "workers", DEFAULT_WORKERS), len(days), os.cpu_count() or 1)

        def read_day(day):
            path = None
            try:
                path = archives.locate(location, day, client)
                return path, archives.read_category(path, category, day)
            except SourceError as exc:  # HttpError included
                if location.is_remote and path is not None and "could not be read" in str(exc):
                    path.unlink(missing_ok=True)  # a bad download: fetch it again next time
                return None, exc

        with progress(total=len(days), desc=f"tcgcsv archives {location.describe()}", unit="day") as bar, \
                ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for chunk_start in range(0, len(days), max(1, workers) * 2):
                chunk = days[chunk_start:chunk_start + max(1, workers) * 2]
                for day, (path, files) in zip(chunk, pool.map(read_day, chunk)):
                    bar.update(1)
                    report.expected += 1
                    item = f"archive {day:%Y-%m-%d}"
                    if isinstance(files, HttpError):
                        report.failures.append(files.as_failure(item))
                        continue
                    if isinstance(files, SourceError):
                        if archives.UNAVAILABLE in str(files):
                            raise files
                        report.failures.append({"item": item, "error": str(files)})
                        continue
                    if only_groups is not None:
                        files = {gid: body for gid, body in files.items() if gid in only_groups}
                    texts = {}
                    for group_id, body in sorted(files.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else 0):
                        results = _results(body)
                        if results is None:
                            skipped.append(f"{day:%Y-%m-%d}/{category}/{group_id}/prices")
                        else:
                            rows += len(results)
                        texts[group_id] = body.decode("utf-8", "replace")
                    payload = {"archive": path.name, "date": f"{day:%Y-%m-%d}", "category": category,
                               "files": texts}
                    raw.put(f"archive-{category}-{day:%Y-%m-%d}.json", json.dumps(payload).encode(),
                            kind="archive_day", date=f"{day:%Y-%m-%d}", archive=path.name,
                            location=location.describe(), groups=len(texts), ok=True)
        if skipped:
            report.notes.append({"kind": "archive_files_unreadable", "count": len(skipped), "files": skipped[:20],
                                 "detail": "not valid tcgcsv JSON; kept in the raw archive, not parsed"})
        report.notes.append({"kind": "archives_read", "location": location.describe(),
                             "days": report.expected - len(report.failures), "price_rows": rows,
                             "seconds": round(time.perf_counter() - started, 2)})
        return report

    # ----------------------------------------------------------------- parse
    def parse(self, request: CollectRequest, raw: RawArchive) -> pd.DataFrame:
        """Long-schema rows from the groups, products and prices (or archive days) in ``raw``."""
        entries = [e for e in raw.entries() if e.get("ok", True)]
        selection = stored_selection(raw, self.name)
        set_names = self._set_names(raw, entries)
        frames = []
        for entry in entries:
            if entry.get("kind") == "archive_day":
                payload = json.loads(raw.get(entry["name"]))
                by_group = {}
                for group_id, text in payload["files"].items():
                    results = _results(text.encode("utf-8"))
                    if results is not None:
                        by_group[group_id] = results
                frames.append(price_rows(by_group, payload["date"]))
        prices = [e for e in entries if e.get("kind") == "prices"]
        if prices:
            by_group = {}
            for entry in prices:
                results = _results(raw.get(entry["name"]))
                if results is not None:
                    by_group[str(entry["group_id"])] = results
            frames.append(price_rows(by_group, request.end))
        frame = pd.concat(frames, ignore_index=True) if frames else price_rows({}, request.end)
        frame["set_name"] = frame["set_id"].map(set_names).astype("string")
        details = self._product_details(raw, entries)
        if not details.empty:
            frame = frame.merge(details, on="product_id", how="left", validate="m:1")
        else:
            for column in ("name", "number", "rarity"):
                frame[column] = pd.NA
        frame = selection.restrict(frame)
        return selection.assign_categories(frame).reset_index(drop=True)

    def _set_names(self, raw: RawArchive, entries: list[dict]) -> dict[str, str]:
        names: dict[str, str] = {}
        for entry in entries:
            if entry.get("kind") == "groups_csv":
                groups = archives.parse_groups_csv(raw.get(entry["name"]))
            elif entry.get("kind") == "groups":
                try:
                    groups = groups_frame(_safe_json(raw.get(entry["name"])))
                except SourceError:
                    continue
            else:
                continue
            names.update(dict(zip(groups["groupId"].astype(str), groups["name"].astype(str))))
        return names

    def _product_details(self, raw: RawArchive, entries: list[dict]) -> pd.DataFrame:
        frames = []
        for entry in entries:
            if entry.get("kind") == "products":
                payload = _safe_json(raw.get(entry["name"]))
                if isinstance(payload, dict) and not _tcgcsv_errors(payload):
                    frames.append(product_details(payload))
        if not frames:
            return pd.DataFrame()
        details = pd.concat(frames, ignore_index=True).dropna(subset=["product_id"])
        details = details.drop_duplicates("product_id", keep="last")
        for column in ("name", "number", "rarity"):
            details[column] = details[column].astype("string")
        return details


def _naive_utc(values: pd.Series) -> pd.Series:
    """Timestamps as naive UTC (tcgcsv writes them without a zone; tolerate one)."""
    parsed = pd.to_datetime(values, errors="coerce", utc=True)
    return parsed.dt.tz_localize(None)


def _safe_json(body: bytes):
    try:
        return decode_json(body, url="")
    except HttpError:
        return None
