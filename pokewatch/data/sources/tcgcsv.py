"""The ``tcgcsv`` source: TCGplayer market prices of a whole category, no key needed.

Why it is the primary real source: tcgcsv.com mirrors TCGplayer's catalogue and
prices once a day as plain JSON (and as daily archives), for every product, free.

Live (one day, the run date)::

    GET {POKEWATCH_TCGCSV_URL}/tcgplayer/{category}/groups            sets ("groups")
    GET {POKEWATCH_TCGCSV_URL}/tcgplayer/{category}/{groupId}/products names, extendedData
    GET {POKEWATCH_TCGCSV_URL}/tcgplayer/{category}/{groupId}/prices   prices
    GET {POKEWATCH_TCGCSV_URL}/last-updated.txt                        when tcgcsv refreshed

Backfill: ``options["archives"]`` (a folder, a URL prefix or ``tcgcsv``) reads the
daily archives of :mod:`pokewatch.data.archives` for every day in [start, end].

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
  products: a backfill takes them from the product catalogue of
  :mod:`pokewatch.data.catalogue` (below).
* A price result in an undocumented shape (not an object, a ``productId`` that is a
  list, a key given twice ...) becomes a row marked malformed, which validation
  rejects as ``malformed_record``.
* ``low_price``, ``mid_price``, ``high_price``, ``direct_low_price`` and
  ``product_id`` are kept as descriptive columns. ``highPrice`` is unreliable
  (sellers park listings at 999) and must not feed signals.

Products change rarely, so they are cached per group under the data folder
(``cache/tcgcsv/products``) and refetched when the group's ``modifiedOn`` is newer
than the cache, when the cache is older than ``products_max_age_days`` (7), or with
``refresh_products=true``. Cached products are still copied into the run's raw
archive, so a replay never needs the cache. Every live collect also merges what it
fetched into the product catalogue (``data/catalogue/tcgcsv/category-N``).

Names on archive data: a backfill reads set names from ``groups-category-N.csv``
beside the archives, else from the catalogue, else from the live groups. Card
names, numbers and rarities come from the catalogue. With ``catalogue=auto`` (the
default) groups whose products the catalogue lacks are fetched from the live API
once, when the network allows (about 200 requests for all of category 3; a failed
attempt is not retried for :data:`CATALOGUE_RETRY_HOURS` hours);
``catalogue=refresh`` refetches every group of the archives, ``catalogue=off``
never touches the network. The products used are copied into the run's raw
archive, so a replay gives the same names. A catalogue problem is a note in the
quality report, never a failed collect.

Progress of a long collect goes to the ``pokewatch.progress`` log: one line per
archive day, or per tenth of the groups.

Options: ``category`` (3 = English Pokémon, 85 = Japanese), ``archives``,
``watchlist``, ``workers`` (parallel requests and decoding processes, 4),
``rate_limit_per_minute`` (300), ``products_max_age_days``, ``refresh_products``,
``catalogue`` and the ``http_*`` settings of :mod:`pokewatch.data.http_client`.
"""
from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from pokewatch.data import archives, catalogue
from pokewatch import atomic, config
from pokewatch.errors import ParameterError, SourceError
from pokewatch.data.http_client import (
    HTTP_OPTIONS,
    HttpClient,
    HttpError,
    HttpSettings,
    Progress,
    RateLimitedError,
    map_with_progress,
)
from pokewatch.data.raw_archive import RawArchive
from pokewatch.core.schema import MALFORMED
from pokewatch.data.sources.base import (
    WATCHLIST_OPTION,
    CollectRequest,
    DuplicateKeyObject,
    FetchReport,
    PriceSource,
    kind_of,
    loads_json,
    rate_option,
    source_ids,
    stored_selection,
    text_of,
)
from pokewatch.data.sources.options import Option
from pokewatch.data.watchlist import Selection, selection_from_options

logger = logging.getLogger(__name__)

DEFAULT_CATEGORY = 3
DEFAULT_WORKERS = 4
DEFAULT_RATE_PER_MINUTE = 300
PRODUCTS_MAX_AGE_DAYS = 7
#: After a failed attempt to reach tcgcsv for the catalogue, wait this long before trying again.
CATALOGUE_RETRY_HOURS = 6
CATALOGUE_MODES = ("auto", "refresh", "off")
_PRICE_COLUMNS = {"lowPrice": "low_price", "midPrice": "mid_price", "highPrice": "high_price",
                  "directLowPrice": "direct_low_price"}


def _check_archives(value, files: bool = True) -> str:
    """The ``archives`` option: a folder, an http(s) URL prefix or ``tcgcsv``."""
    if isinstance(value, bool) or not isinstance(value, (str, Path)):
        raise ParameterError(f"option archives must be a folder or an http(s) URL, got {value!r}")
    text = str(value).strip()
    if files:
        archives.ArchiveLocation.parse(text)
    return text


def products_cache_dir() -> Path:
    return config.data_dir() / "cache" / "tcgcsv" / "products"


# --------------------------------------------------------------------------- pure parsing

def groups_frame(payload: dict) -> pd.DataFrame:
    """``groupId`` (string), ``name``, ``abbreviation``, ``modifiedOn`` of a groups response.

    Entries that are not objects or have no usable ``groupId`` are skipped.

    Raises:
        SourceError: the response has no ``results`` list.
    """
    results = payload.get("results") if isinstance(payload, dict) else None
    if not isinstance(results, list):
        raise SourceError("tcgcsv groups response has no 'results' list")
    records = [r for r in results if isinstance(r, dict)]
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    for column in ("groupId", "name", "abbreviation", "modifiedOn"):
        if column not in frame.columns:
            frame[column] = pd.Series(pd.NA, index=frame.index, dtype=object)
    ids, problems = source_ids(frame["groupId"], "groupId")
    frame["groupId"] = ids
    frame = frame[ids.notna() & problems.isna()].copy()
    for column in ("name", "abbreviation"):
        frame[column] = frame[column].map(lambda v, field=column: text_of(v, field)[0]).astype("string")
    return frame.reset_index(drop=True)


def product_details(payload: dict) -> pd.DataFrame:
    """``product_id``, ``name``, ``number``, ``rarity`` of a products response (unreadable products skipped)."""
    rows = []
    results = payload.get("results") if isinstance(payload, dict) else None
    for product in results if isinstance(results, list) else []:
        if not isinstance(product, dict):
            continue
        extended_data = product.get("extendedData")
        extended = {str(e.get("name")): e.get("value") for e in extended_data
                    if isinstance(e, dict)} if isinstance(extended_data, list) else {}
        rows.append({"product_id": product.get("productId"), "name": text_of(product.get("name"), "name")[0],
                     "number": text_of(extended.get("Number"), "Number")[0],
                     "rarity": text_of(extended.get("Rarity"), "Rarity")[0]})
    frame = pd.DataFrame(rows, columns=["product_id", "name", "number", "rarity"])
    ids, problems = source_ids(frame["product_id"].astype(object), "productId")
    frame["product_id"] = pd.to_numeric(ids.where(problems.isna()), errors="coerce").astype("Int64")
    return frame


def _scalar_text_problems(values: pd.Series, field_name: str) -> pd.Series:
    """Why each value is not text (NA where it is text or missing)."""
    if values.dtype != object or pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        return pd.Series(pd.NA, index=values.index, dtype="string")
    bad = values.map(lambda v: not (v is None or isinstance(v, str) or (isinstance(v, float) and v != v)))
    return pd.Series(f"{field_name} is not text", index=values.index, dtype="string").where(bad.astype(bool))


def _numbers(values: pd.Series) -> pd.Series:
    """Numbers as float64; text, lists and true/false become NaN (checked only for mixed columns)."""
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) not in ("floating", "integer",
                                                                                          "mixed-integer-float"):
        values = values.where(~values.map(lambda v: isinstance(v, bool)).astype(bool), None)
    return pd.to_numeric(values, errors="coerce").astype("float64")


def _parsed_cache_path(data: bytes, entry: dict) -> Path:
    """Where the rows parsed from one archive day's ``data`` are kept (under the decoded archives' cache).

    Keyed on the day, the category, a digest of the bytes and a digest of the code that
    parses them (this module and :mod:`pokewatch.data.sources.base`), so changed bytes
    or a changed parser parse again; a day's older entries are removed when it is written.
    """
    digest = hashlib.sha256(data).hexdigest()[:24]
    key = f"{entry.get('date')}-c{entry.get('category')}"
    return archives.decoded_cache_folder().parent / "tcgcsv-parsed" / f"{key}.{digest}.{_parser_digest()}.pkl"


@functools.cache
def _parser_digest() -> str:
    from pokewatch.data.sources import base  # noqa: PLC0415 - only its file is read

    code = b"".join(Path(m.__file__).read_bytes() for m in (sys.modules[__name__], base))
    return hashlib.sha256(code).hexdigest()[:12]


def price_rows(results_by_group: dict[str, list], date) -> pd.DataFrame:
    """Long-schema rows (before descriptive joins) from price results per groupId.

    A result that is not an object, has a ``productId`` that is not an id, a
    ``subTypeName`` that is not text or a key given twice becomes a row whose
    ``malformed`` column says so.
    """
    records, problems = [], []
    for group_id, results in results_by_group.items():
        for position, result in enumerate(results):
            if isinstance(result, dict):
                records.append({**result, "groupId": group_id})
                problems.append(f"price result {position + 1} of group {group_id} gives the key(s) "
                                f"{result.duplicates} twice" if isinstance(result, DuplicateKeyObject) else None)
            else:
                records.append({"groupId": group_id})
                problems.append(f"price result {position + 1} of group {group_id} is {kind_of(result)}, "
                                "not an object")
    frame = pd.DataFrame.from_records(records)
    for column in ("productId", "subTypeName", "marketPrice", *_PRICE_COLUMNS):
        if column not in frame.columns:
            frame[column] = pd.Series(pd.NA, index=frame.index, dtype=object)
    if frame.empty:
        frame["groupId"] = pd.Series(dtype="string")
    problem = pd.Series(problems, index=frame.index, dtype="string")
    card_ids, id_problems = source_ids(frame["productId"], "productId")
    text_problems = _scalar_text_problems(frame["subTypeName"], "subTypeName")
    problem = problem.fillna(id_problems).fillna(text_problems)
    variant = frame["subTypeName"].where(text_problems.isna(), None)
    out = pd.DataFrame({
        "card_id": card_ids,
        "variant": variant.astype("string"),
        "date": pd.Timestamp(date),
        # raw values: validation tells a null (missing_price) from junk (non_numeric_price)
        "market_price": frame["marketPrice"].astype(object),
        "currency": "USD",
        "source": "tcgcsv",
        "set_id": frame["groupId"].astype("string"),
        "product_id": pd.to_numeric(card_ids.where(problem.isna()), errors="coerce").astype("Int64"),
    }, index=frame.index)
    for api_name, column in _PRICE_COLUMNS.items():
        out[column] = _numbers(frame[api_name])
    out[MALFORMED] = problem
    return out


def _results(body: bytes, *, strict: bool = True) -> list | None:
    """The ``results`` list of a tcgcsv JSON document, or None when unusable.

    ``strict`` keeps objects with a repeated key visible (for parsing); fetch only
    counts results and uses the faster plain decoder.
    """
    try:
        payload = loads_json(body) if strict else json.loads(body)
    except ValueError:
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
    OPTIONS = (
        Option("category", "int", DEFAULT_CATEGORY, "TCGplayer category (3 English Pokémon, 85 Japanese)",
               minimum=1, maximum=1_000_000),
        Option("archives", "custom", None, "folder or URL of daily prices-YYYY-MM-DD.ppmd.7z archives, or tcgcsv",
               parse=_check_archives),
        WATCHLIST_OPTION,
        Option("workers", "int", DEFAULT_WORKERS, "parallel requests, and processes decoding archives",
               minimum=1, maximum=64),
        rate_option(DEFAULT_RATE_PER_MINUTE),
        Option("products_max_age_days", "int", PRODUCTS_MAX_AGE_DAYS, "refetch cached products older than this",
               minimum=0, maximum=3650),
        Option("refresh_products", "bool", False, "refetch every group's products on a live collect"),
        Option("catalogue", "choice", "auto", "product names for archive backfills: auto, refresh or off",
               choices=CATALOGUE_MODES),
        *HTTP_OPTIONS,
    )

    def can_backfill(self, options: dict) -> bool:
        """A folder or URL of daily archives can produce past days; the live API cannot."""
        return options.get("archives") not in (None, "")

    def _client(self, options: dict, settings: HttpSettings) -> HttpClient:
        return HttpClient(self.name, archives.tcgcsv_base_url(), settings=settings,
                          rate=(options["rate_limit_per_minute"], 60.0))

    # ----------------------------------------------------------------- fetch
    def fetch(self, request: CollectRequest, raw: RawArchive) -> FetchReport:
        """Download groups, products and prices (live) or read archives (backfill) into ``raw``.

        Raises:
            ParameterError: a multi-day range without ``archives``, a bad option, or a
                watchlist whose sets match no group.
            SourceError: the archive URL refuses downloads (403).
        """
        options = self.check_options(request.options)
        selection = selection_from_options(options, self.name)
        if selection.queries:
            logger.warning("tcgcsv ignores watchlist queries %s; list sets or cards instead",
                           list(selection.queries))
        settings = HttpSettings.resolve(options)
        if options["archives"] is not None:
            return self._fetch_archives(request, raw, options, settings, selection)
        if request.start != request.end:
            raise ParameterError(
                f"tcgcsv serves only the current day's prices; to backfill {request.start:%Y-%m-%d}.."
                f"{request.end:%Y-%m-%d} pass --archives DIR (a folder of prices-YYYY-MM-DD.ppmd.7z)"
            )
        return self._fetch_live(request, raw, options, settings, selection)

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

    def _fetch_live(self, request: CollectRequest, raw: RawArchive, options: dict, settings: HttpSettings,
                    selection: Selection) -> FetchReport:
        category = options["category"]
        client = self._client(options, settings)
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
        max_age, refresh = options["products_max_age_days"], options["refresh_products"]
        stop = threading.Event()
        cache_hits = []
        products_bodies: dict[str, bytes] = {}

        def fetch_group(group_id: str) -> list[dict]:
            failures = []
            for kind in ("products", "prices"):
                item = f"group {group_id} {kind}"
                if stop.is_set():
                    failures.append({"item": item, "error": "not fetched: stopped after an HTTP 429"})
                    continue
                try:
                    if kind == "products":
                        body = self._cached_products(raw, category, group_id, modified.get(group_id), max_age,
                                                     refresh)
                        if body is not None:
                            cache_hits.append(group_id)
                            products_bodies[group_id] = body
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
                        products_bodies[group_id] = response.body
                except RateLimitedError as exc:
                    stop.set()
                    failures.append(exc.as_failure(item))
                except HttpError as exc:
                    failures.append(exc.as_failure(item))
            return failures

        group_ids = groups["groupId"].dropna().astype(str).tolist()
        report.expected += 2 * len(group_ids)
        for group_id, failures, error in map_with_progress(fetch_group, group_ids, workers=options["workers"],
                                                           desc=f"tcgcsv category {category}", unit="group"):
            if error is not None:
                report.failures.append({"item": f"group {group_id}", "error": f"{type(error).__name__}: {error}"})
            else:
                report.failures.extend(failures)
        report.notes.append({"kind": "products_cache", "groups_from_cache": len(cache_hits),
                             "groups": len(group_ids), "folder": str(products_cache_dir() / str(category))})
        self._remember_catalogue(category, groups, products_bodies, report)
        logger.info("tcgcsv: %d request(s), %d group(s), %d failure(s)", client.requests_made, len(group_ids),
                    len(report.failures))
        return report

    def _remember_catalogue(self, category: int, groups: pd.DataFrame, products_bodies: dict[str, bytes],
                            report: FetchReport) -> None:
        """Merge a live collect's groups and products into the catalogue (never fails the collect)."""
        try:
            frames = []
            for group_id, body in products_bodies.items():
                details = product_details(_safe_json(body))
                details["set_id"] = group_id
                frames.append(details)
            set_names = dict(zip(groups["groupId"], groups["name"]))
            if frames:
                products = pd.concat(frames, ignore_index=True)
                products["set_name"] = products["set_id"].map(set_names)
                catalogue.save_products(category, products)
            now = pd.Timestamp.now(tz="UTC").tz_localize(None)
            catalogue.save_groups(category, pd.DataFrame({
                "set_id": groups["groupId"], "set_name": groups["name"], "abbreviation": groups["abbreviation"],
                "modified_on": _naive_utc(groups["modifiedOn"]),
                "products_fetched_at": [now if g in products_bodies else pd.NaT for g in groups["groupId"]]}))
        except (OSError, ValueError) as exc:
            report.notes.append({"kind": "catalogue_not_saved", "detail": f"{type(exc).__name__}: {exc}"})
            logger.warning("could not update the tcgcsv catalogue: %s", exc)

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
            updated = pd.NaT
        if pd.isna(updated):
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
                         refresh: bool) -> bytes | None:
        """The cached products body of a group, copied into ``raw``, or None when it must be fetched."""
        path = products_cache_dir() / str(category) / f"{group_id}.json"
        if refresh or not path.is_file():
            return None
        cached_at = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC).replace(tzinfo=None)
        if (datetime.now(UTC).replace(tzinfo=None) - cached_at).days >= max_age:
            return None
        if modified_on is not None and not pd.isna(modified_on) and pd.Timestamp(modified_on) > cached_at:
            return None
        body = path.read_bytes()
        if _tcgcsv_errors(_safe_json(body)):
            return None
        raw.put(f"products-{category}-{group_id}.json", body, kind="products", category=category,
                group_id=group_id, ok=True, from_cache=True, cache_path=str(path),
                cached_at=cached_at.isoformat(timespec="seconds"))
        return body

    def _store_products_cache(self, category: int, group_id: str, body: bytes) -> None:
        try:
            atomic.write_bytes(products_cache_dir() / str(category) / f"{group_id}.json", body)
        except OSError as exc:  # a cache is an optimisation, never a failure
            logger.warning("could not cache tcgcsv products of group %s: %s", group_id, exc)

    # ----------------------------------------------------------------- archives
    def _archive_groups(self, raw: RawArchive, report: FetchReport, location: archives.ArchiveLocation,
                        client: HttpClient, category: int) -> pd.DataFrame | None:
        """The groups (set names) of an archive backfill: beside the archives, the catalogue or live."""
        csv_path = location.groups_csv(category)
        if csv_path is not None:
            data = csv_path.read_bytes()
            raw.put(f"groups-{category}.csv", data, kind="groups_csv", category=category, path=str(csv_path),
                    ok=True)
            groups = archives.parse_groups_csv(data)
            try:
                catalogue.save_groups(category, pd.DataFrame({"set_id": groups["groupId"], "set_name": groups["name"],
                                                              "abbreviation": groups.get("abbreviation"),
                                                              "modified_on": groups.get("modifiedOn")}))
            except (OSError, ValueError) as exc:
                logger.warning("could not update the tcgcsv catalogue's groups: %s", exc)
            return groups
        stored = catalogue.load_groups(category)
        if not stored.empty:
            raw.put(f"groups-{category}-catalogue.parquet", _parquet_bytes(stored), kind="groups_catalogue",
                    category=category, path=str(catalogue.groups_path(category)), ok=True)
            return pd.DataFrame({"groupId": stored["set_id"], "name": stored["set_name"],
                                 "abbreviation": stored["abbreviation"]})
        if location.is_remote:
            try:
                response = client.fetch(raw, f"groups-{category}.json", f"/tcgplayer/{category}/groups",
                                        meta={"kind": "groups", "category": category})
                return groups_frame(response.json())
            except SourceError as exc:
                report.notes.append({"kind": "set_names_unavailable", "detail": str(exc)})
                return None
        report.notes.append({"kind": "set_names_unavailable",
                             "detail": f"no groups-category-{category}.csv in {location.folder} and no catalogue "
                                       "yet; set names come from tcgcsv when it can be reached"})
        return None

    def _fetch_archives(self, request: CollectRequest, raw: RawArchive, options: dict, settings: HttpSettings,
                        selection: Selection) -> FetchReport:
        category = options["category"]
        location = archives.ArchiveLocation.parse(options["archives"])
        report = FetchReport()
        client = self._client(options, settings)
        groups = self._archive_groups(raw, report, location, client, category)
        selection = self._select_groups(report, raw, selection, groups, category)
        only_groups = set(selection.sets) if selection.sets and not selection.cards else None
        started = time.perf_counter()
        days = list(request.days)
        paths, located_errors = self._locate_days(location, days, client, options["workers"])
        from_cache = 0
        seen_groups: set[str] = set()
        bar = Progress(f"tcgcsv archives {location.describe()}", len(days), unit="day", every=1)
        decoded = archives.read_days(paths, category, workers=options["workers"])
        for day in days:
            report.expected += 1
            item = f"archive {day:%Y-%m-%d}"
            if day in located_errors:
                error = located_errors[day]
                bar.update(1, detail=f"{day:%Y-%m-%d}: not available")
                if isinstance(error, HttpError):
                    report.failures.append(error.as_failure(item))
                elif archives.UNAVAILABLE in str(error):
                    raise error
                else:
                    report.failures.append({"item": item, "error": str(error)})
                continue
            _, data, cached = next(decoded)
            path = paths[day]
            if isinstance(data, SourceError):
                if location.is_remote and "could not be read" in str(data):
                    path.unlink(missing_ok=True)  # a bad download: fetch it again next time
                report.failures.append({"item": item, "error": str(data)})
                bar.update(1, detail=f"{day:%Y-%m-%d}: unreadable")
                continue
            from_cache += int(cached)
            if only_groups is not None:
                data = archives.bundle({g: b for g, b in archives.unbundle(data).items() if g in only_groups})
            group_ids = archives.bundle_names(data)
            seen_groups.update(group_ids)
            # the decoded bundle itself goes into the run: small, and parsed without PPMd on a replay
            raw.put(f"archive-{category}-{day:%Y-%m-%d}.zip", data, packed=True, kind="archive_day", format="zip",
                    date=f"{day:%Y-%m-%d}", category=category, archive=path.name, location=location.describe(),
                    groups=len(group_ids), ok=True, decoded_from_cache=cached)
            bar.update(1, detail=f"{day:%Y-%m-%d}: {len(group_ids)} groups"
                                 f"{' (decoded before)' if cached else ''}")
        bar.close()
        decoded.close()
        report.notes.append({"kind": "archives_read", "location": location.describe(),
                             "days": report.expected - len(report.failures), "groups": len(seen_groups),
                             "days_decoded_before": from_cache, "seconds": round(time.perf_counter() - started, 2)})
        self._archive_catalogue(raw, report, options, settings, sorted(seen_groups))
        return report

    def _locate_days(self, location: archives.ArchiveLocation, days: list, client: HttpClient,
                     workers: int) -> tuple[dict, dict]:
        """Local paths of each day's archive (downloading remote ones, a few at once), and errors by day."""
        paths, errors = {}, {}

        def locate(day):
            try:
                return day, archives.locate(location, day, client)
            except SourceError as exc:  # HttpError included
                return day, exc

        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(days))) if location.is_remote else 1) as pool:
            for day, found in pool.map(locate, days):
                (errors if isinstance(found, SourceError) else paths)[day] = found
        return paths, errors

    def _archive_catalogue(self, raw: RawArchive, report: FetchReport, options: dict, settings: HttpSettings,
                           group_ids: list[str]) -> None:
        """Complete the catalogue for the archives' groups (network allowing); copy what is used into ``raw``."""
        category, mode = options["category"], options["catalogue"]
        stored = catalogue.load_groups(category)
        fetched = set(stored.loc[stored["products_fetched_at"].notna(), "set_id"])
        missing = list(group_ids) if mode == "refresh" else [g for g in group_ids if g not in fetched]
        if missing and mode != "off":
            self._fetch_catalogue(report, options, settings, missing, force=mode == "refresh")
        elif missing:
            report.notes.append({"kind": "catalogue_incomplete", "groups_without_products": len(missing),
                                 "detail": "catalogue=off: names of these groups' cards stay empty"})
        products = catalogue.load_products(category)
        used = products[products["set_id"].isin(group_ids)]
        if not used.empty:
            raw.put(f"catalogue-{category}.parquet", _parquet_bytes(used), kind="catalogue", category=category,
                    path=str(catalogue.products_path(category)), products=len(used), ok=True)
        named = set(used["set_id"])
        report.notes.append({"kind": "catalogue", "mode": mode, "products": int(len(used)),
                             "groups_named": len(named), "groups_in_archives": len(group_ids),
                             "folder": str(catalogue.catalogue_dir(category))})

    def _fetch_catalogue(self, report: FetchReport, options: dict, settings: HttpSettings, group_ids: list[str],
                         *, force: bool) -> None:
        """Fetch tcgcsv's groups and the products of ``group_ids`` into the catalogue, once.

        Offline (or tcgcsv down) the first request fails fast (no retries, a 10 s
        timeout) and is not tried again for :data:`CATALOGUE_RETRY_HOURS` unless
        ``force``. Problems are notes, never failures.
        """
        category = options["category"]
        since = catalogue.hours_since_failure(category)
        if not force and since is not None and since < CATALOGUE_RETRY_HOURS:
            failure = catalogue.last_failure(category) or {}
            report.notes.append({"kind": "catalogue_unavailable", "groups_without_products": len(group_ids),
                                 "detail": f"tcgcsv could not be reached {since:.1f} h ago ({failure.get('error')}); "
                                           f"trying again after {CATALOGUE_RETRY_HOURS} h, or pass "
                                           "--param source_options=catalogue:refresh"})
            return
        probe = HttpClient(self.name, archives.tcgcsv_base_url(), rate=(options["rate_limit_per_minute"], 60.0),
                           settings=replace(settings, retries=0, timeout=min(settings.timeout, 10.0)))
        discard = RawArchive(config.data_dir() / "cache" / "tcgcsv" / "catalogue-responses")
        try:
            groups = groups_frame(probe.fetch(discard, f"groups-{category}.json",
                                              f"/tcgplayer/{category}/groups").json())
        except SourceError as exc:  # HttpError included
            catalogue.record_failure(category, str(exc))
            report.notes.append({"kind": "catalogue_unavailable", "groups_without_products": len(group_ids),
                                 "detail": f"tcgcsv's groups could not be fetched ({exc}); card names of these "
                                           "groups stay empty until it can be reached"})
            logger.warning("tcgcsv catalogue unavailable: %s", exc)
            return
        client = HttpClient(self.name, archives.tcgcsv_base_url(), settings=settings,
                            rate=(options["rate_limit_per_minute"], 60.0))
        live = set(groups["groupId"])
        wanted = [g for g in group_ids if g in live]

        def fetch_products(group_id: str) -> pd.DataFrame:
            response = client.fetch(discard, f"products-{category}-{group_id}.json",
                                    f"/tcgplayer/{category}/{group_id}/products")
            self._store_products_cache(category, group_id, response.body)
            details = product_details(response.json())
            details["set_id"] = group_id
            return details

        frames, failed = [], []
        for group_id, details, error in map_with_progress(fetch_products, wanted, workers=options["workers"],
                                                          desc=f"tcgcsv catalogue of category {category}",
                                                          unit="group"):
            (failed.append(group_id) if error is not None else frames.append(details))
        set_names = dict(zip(groups["groupId"], groups["name"]))
        done = {f["set_id"].iloc[0] for f in frames if len(f)} | {g for g, f in zip(wanted, frames) if f.empty}
        now = pd.Timestamp.now(tz="UTC").tz_localize(None)
        try:
            if frames:
                products = pd.concat(frames, ignore_index=True)
                products["set_name"] = products["set_id"].map(set_names)
                catalogue.save_products(category, products)
            catalogue.save_groups(category, pd.DataFrame({
                "set_id": groups["groupId"], "set_name": groups["name"], "abbreviation": groups["abbreviation"],
                "modified_on": _naive_utc(groups["modifiedOn"]),
                "products_fetched_at": [now if g in done else pd.NaT for g in groups["groupId"]]}))
            catalogue.clear_failure(category)
        except (OSError, ValueError) as exc:
            report.notes.append({"kind": "catalogue_not_saved", "detail": f"{type(exc).__name__}: {exc}"})
            return
        report.notes.append({"kind": "catalogue_fetched", "groups": len(frames), "failed_groups": failed[:20],
                             "not_on_tcgcsv": sorted(set(group_ids) - live)[:20],
                             "products": int(sum(len(f) for f in frames))})

    # ----------------------------------------------------------------- parse
    def parse(self, request: CollectRequest, raw: RawArchive) -> pd.DataFrame:
        """Long-schema rows from the groups, products and prices (or archive days) in ``raw``."""
        entries = [e for e in raw.entries() if e.get("ok", True)]
        selection = stored_selection(raw, self.name)
        set_names = self._set_names(raw, entries)
        frames = []
        for entry in entries:
            if entry.get("kind") == "archive_day":
                frames.append(self._archive_day_rows(raw, entry))
        prices = [e for e in entries if e.get("kind") == "prices"]
        if prices:
            by_group = {}
            for entry in prices:
                results = _results(raw.get(entry["name"]))
                if results is not None:
                    by_group[str(entry["group_id"])] = results
            frames.append(price_rows(by_group, request.end))
        frame = pd.concat(frames, ignore_index=True) if frames else price_rows({}, request.end)
        groups, group_ids = pd.factorize(frame["set_id"])  # a few hundred sets over ~40,000 rows a day
        frame["set_name"] = pd.array(pd.Series(group_ids).map(set_names), dtype="string").take(groups, allow_fill=True)
        details = self._product_details(raw, entries)
        if not details.empty:
            frame = frame.merge(details, on="product_id", how="left", validate="m:1")
        else:
            for column in ("name", "number", "rarity"):
                frame[column] = pd.Series(pd.NA, index=frame.index, dtype="string")
        stored_catalogue = self._catalogue(raw, entries)
        if not stored_catalogue.empty:
            frame = catalogue.fill_descriptions(frame, stored_catalogue)
        frame = selection.restrict(frame)
        return selection.assign_categories(frame).reset_index(drop=True)

    @staticmethod
    def _archive_day_rows(raw: RawArchive, entry: dict) -> pd.DataFrame:
        """Rows of one archive day in ``raw``; a group file that is not tcgcsv JSON is one malformed row.

        Parsed once per content: a backfill run again over the same archives reads the
        rows back (see :func:`_parsed_cache_path`) instead of parsing 7 MB of JSON a day.
        """
        data = raw.get(entry["name"])
        cache = _parsed_cache_path(data, entry)
        try:
            return pd.read_pickle(cache)
        except FileNotFoundError:
            pass
        except Exception as exc:  # noqa: BLE001 - a cache entry that can't be read is parsed again
            logger.warning("parsed archive day %s is unreadable (%s); parsing it again", cache.name, exc)
        rows = TcgcsvSource._parse_archive_day(data, entry)
        atomic.keep_cache_entry(cache, rows.to_pickle, f"{cache.name.split('.')[0]}.*")
        return rows

    @staticmethod
    def _parse_archive_day(data: bytes, entry: dict) -> pd.DataFrame:
        if entry.get("format") == "zip":
            files, day, category = archives.unbundle(data), entry["date"], entry.get("category")
        else:  # runs written before archives were kept as bundles: {"date", "category", "files": {gid: text}}
            payload = json.loads(data)
            files = {g: t.encode("utf-8") for g, t in payload["files"].items()}
            day, category = payload["date"], payload.get("category")
        by_group, unreadable = {}, []
        for group_id, body in files.items():
            results = _results(body)
            if results is None:
                unreadable.append(group_id)
            else:
                by_group[group_id] = results
        rows = price_rows(by_group, day)
        if not unreadable:
            return rows
        broken = pd.DataFrame({"set_id": pd.Series(unreadable, dtype="string"), "date": pd.Timestamp(day),
                               "source": "tcgcsv", "currency": "USD",
                               MALFORMED: [f"archive file {day}/{category}/{g}/prices is not tcgcsv JSON with a "
                                           "results list (kept in the raw archive)" for g in unreadable]})
        return pd.concat([rows, broken.astype({MALFORMED: "string"})], ignore_index=True)

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
            elif entry.get("kind") == "groups_catalogue":
                stored = pd.read_parquet(io.BytesIO(raw.get(entry["name"])))
                groups = pd.DataFrame({"groupId": stored["set_id"], "name": stored["set_name"]})
            else:
                continue
            known = groups[groups["name"].notna()]
            names.update(dict(zip(known["groupId"].astype(str), known["name"].astype(str))))
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

    def _catalogue(self, raw: RawArchive, entries: list[dict]) -> pd.DataFrame:
        """The catalogue products a backfill copied into ``raw`` (empty when none)."""
        frames = [pd.read_parquet(io.BytesIO(raw.get(e["name"]))) for e in entries if e.get("kind") == "catalogue"]
        return catalogue.as_products(pd.concat(frames, ignore_index=True)) if frames else catalogue.empty_products()


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _naive_utc(values: pd.Series) -> pd.Series:
    """Timestamps as naive UTC (tcgcsv writes them without a zone; tolerate one)."""
    parsed = pd.to_datetime(values, errors="coerce", utc=True)
    return parsed.dt.tz_localize(None)


def _safe_json(body: bytes):
    """Decoded JSON (duplicate keys visible), or None when the body is not JSON."""
    try:
        return loads_json(body)
    except ValueError:
        return None
