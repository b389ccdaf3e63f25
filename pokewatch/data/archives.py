"""Read tcgcsv's daily price archives, so a new user can backfill history on day one.

tcgcsv publishes one archive per day, ``prices-YYYY-MM-DD.ppmd.7z``: a solid 7z
compressed with PPMd (py7zr reads it through pyppmd) holding every TCGplayer
category's prices as ``{date}/{category}/{groupId}/prices``, each file the JSON
the live ``/tcgplayer/{category}/{groupId}/prices`` endpoint answered that day.
Archives hold prices only: no products (names, numbers, rarities). Set names come
from ``groups-category-{category}.csv`` when it sits beside the archives (columns
``groupId,name,categoryId,abbreviation,modifiedOn``, with or without a header).

Reading one day of category 3 (about 208 groups, 42,600 prices, 6.5 MB of JSON)
takes about 1.3 s: the archive is one solid block, so everything before the last
wanted file is decompressed (about 38 of 72 MB), and PPMd decoding is CPU-bound.
py7zr parses the header; the stream itself is decoded by pyppmd in one call
(:func:`_decode_stream`), which halves the time py7zr's own extraction takes. So each archive is
decoded once: its category's files are cached under the data folder as a zip behind its SHA-256
(:func:`bundle`; ``cache/tcgcsv-decoded``, about 0.9 MB a day, keyed on the archive's name, size,
modification time and the category; safe to delete), and a re-run of a backfill
skips PPMd entirely. The first decode of several days runs in a process pool, one
process per core (:func:`read_days`).

A location is a local folder or an ``http(s)://`` URL prefix; ``tcgcsv`` is short
for tcgcsv's own archive URL. Remote archives are downloaded once into a cache
folder. tcgcsv's archive URL has answered 403 since September 2026; that is
reported as "archive not available from tcgcsv; pass a local folder of archives".
"""
from __future__ import annotations

import csv
import hashlib
import io
import logging
import multiprocessing
import os
import re
import zipfile
import zlib
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import py7zr
import pyppmd
from py7zr.io import BytesIOFactory

from pokewatch import atomic, config
from pokewatch.errors import ParameterError, SourceError
from pokewatch.data.http_client import HttpClient, HttpError

logger = logging.getLogger(__name__)

DEFAULT_TCGCSV_URL = "https://tcgcsv.com"
ARCHIVE_PATH = "archive/tcgplayer"
#: Refuse to decompress more than this from one archive (a corrupt or hostile file).
MAX_EXTRACT_BYTES = 4 << 30
UNAVAILABLE = "archive not available from tcgcsv; pass a local folder of archives"
#: Bump when the decoded cache's layout or content changes: older entries are then ignored.
DECODED_CACHE_VERSION = 2


def archive_name(date) -> str:
    """File name of the archive of ``date``: ``prices-YYYY-MM-DD.ppmd.7z``."""
    return f"prices-{pd.Timestamp(date):%Y-%m-%d}.ppmd.7z"


def tcgcsv_base_url() -> str:
    """tcgcsv's base URL: ``POKEWATCH_TCGCSV_URL`` or https://tcgcsv.com."""
    return os.environ.get("POKEWATCH_TCGCSV_URL", DEFAULT_TCGCSV_URL).rstrip("/")


@dataclass(frozen=True)
class ArchiveLocation:
    """Where daily archives live: a local ``folder`` or a remote ``url`` prefix."""

    folder: Path | None = None
    url: str | None = None

    @classmethod
    def parse(cls, value: str | os.PathLike) -> ArchiveLocation:
        """A folder, an ``http(s)://`` prefix, or ``tcgcsv`` (tcgcsv's archive URL).

        Raises:
            ParameterError: a local path that is not an existing folder.
        """
        text = str(value).strip()
        if text.lower() == "tcgcsv":
            return cls(url=f"{tcgcsv_base_url()}/{ARCHIVE_PATH}")
        if re.match(r"(?i)^https?://", text):
            return cls(url=text.rstrip("/"))
        folder = Path(text).expanduser()
        if not folder.is_dir():
            raise ParameterError(
                f"archives {text!r} is neither an existing folder nor an http(s) URL; pass the folder "
                "that holds prices-YYYY-MM-DD.ppmd.7z files"
            )
        return cls(folder=folder.resolve())

    @property
    def is_remote(self) -> bool:
        return self.url is not None

    def describe(self) -> str:
        return self.url if self.url else str(self.folder)

    def available_dates(self) -> list[pd.Timestamp]:
        """Dates of the archives in a local folder (empty for a URL)."""
        if self.folder is None:
            return []
        dates = []
        for path in self.folder.glob("prices-*.ppmd.7z"):
            match = re.fullmatch(r"prices-(\d{4}-\d{2}-\d{2})\.ppmd\.7z", path.name)
            if match:
                dates.append(pd.Timestamp(match.group(1)))
        return sorted(dates)

    def groups_csv(self, category: int) -> Path | None:
        """``groups-category-{category}.csv`` beside local archives, if present."""
        if self.folder is None:
            return None
        path = self.folder / f"groups-category-{category}.csv"
        return path if path.is_file() else None


def cache_folder() -> Path:
    """Where downloaded archives are kept (under the data folder; safe to delete)."""
    return config.data_dir() / "cache" / "tcgcsv-archives"


def locate(location: ArchiveLocation, date, client: HttpClient | None = None) -> Path:
    """The local path of ``date``'s archive, downloading it first for a URL location.

    Raises:
        SourceError: the archive is missing locally (listing the dates that exist),
            the server answered 403 (:data:`UNAVAILABLE`) or the download failed.
    """
    name = archive_name(date)
    if location.folder is not None:
        path = location.folder / name
        if path.is_file():
            return path
        dates = location.available_dates()
        span = f"it has {len(dates)} archive(s), {dates[0]:%Y-%m-%d}..{dates[-1]:%Y-%m-%d}" if dates \
            else "it has no prices-YYYY-MM-DD.ppmd.7z files"
        raise SourceError(f"no archive {name} in {location.folder}; {span}")
    cached = cache_folder() / name
    if cached.is_file():
        return cached
    url = f"{location.url}/{name}"
    client = client or HttpClient("tcgcsv-archives")
    try:
        client.download(url, cached)
    except HttpError as exc:
        if exc.status in (401, 403):
            raise SourceError(f"{UNAVAILABLE} (--archives DIR). {exc.url} answered HTTP {exc.status}; "
                              "tcgcsv has refused archive downloads since September 2026.") from None
        if exc.status == 404:
            raise SourceError(f"no archive for {pd.Timestamp(date):%Y-%m-%d} at {exc.url} (HTTP 404)") from None
        raise
    logger.info("downloaded %s to %s", url, cached)
    return cached


def read_category(path: str | os.PathLike, category: int, date=None) -> dict[str, bytes]:
    """The raw ``prices`` files of one category in one archive, keyed by groupId.

    Args:
        path: a ``prices-YYYY-MM-DD.ppmd.7z`` file.
        category: TCGplayer category id (3 = English Pokémon, 85 = Japanese).
        date: the expected day; files of another day are an error (a renamed file).

    Raises:
        SourceError: not a readable 7z, another day's archive, or no file of the category.
    """
    path = Path(path)
    expected_day = f"{pd.Timestamp(date):%Y-%m-%d}" if date is not None else None
    try:
        with py7zr.SevenZipFile(path, mode="r", max_extract_size=MAX_EXTRACT_BYTES) as archive:
            names = archive.getnames()
            wanted = {}
            days = set()
            for member in names:
                parts = member.split("/")
                if len(parts) == 4 and parts[3] == "prices":
                    days.add(parts[0])
                    if parts[1] == str(category):
                        wanted[member] = parts[2]
            if expected_day and days and expected_day not in days:
                raise SourceError(f"archive {path.name} holds the day(s) {sorted(days)}, not {expected_day}; "
                                  "was it renamed?")
            if not wanted:
                raise SourceError(f"archive {path.name} has no files for category {category} "
                                  f"(layout {{date}}/{{category}}/{{groupId}}/prices); it has "
                                  f"{len(names)} file(s)")
            stream = _single_ppmd_stream(archive)
            if stream is not None:
                return _decode_stream(path, stream, wanted)
            factory = BytesIOFactory(limit=MAX_EXTRACT_BYTES)
            archive.extract(targets=list(wanted), factory=factory)
    except SourceError:
        raise
    except (py7zr.exceptions.ArchiveError, py7zr.exceptions.PasswordRequired, EOFError,
            OSError, ValueError, KeyError) as exc:
        raise _unreadable(path, exc) from None
    files = {}
    for member, group_id in wanted.items():
        product = factory.get(member)
        product.seek(0)
        files[group_id] = product.read()
    return files


def _unreadable(path: Path, exc: Exception) -> SourceError:
    return SourceError(f"archive {path.name} could not be read ({type(exc).__name__}: {exc}); "
                       "it may be truncated or corrupt: download it again")


PPMD_METHOD = b"\x03\x04\x01"


@dataclass(frozen=True)
class _PpmdStream:
    """One solid PPMd stream of a 7z file: where it sits, its model, and its files in stream order."""

    offset: int
    packed: int
    order: int
    memory: int
    members: tuple[tuple[str, int, int | None], ...]  # name, size, CRC-32 (None: not recorded)


def _single_ppmd_stream(archive: py7zr.SevenZipFile) -> _PpmdStream | None:
    """The archive's stream, when it is tcgcsv's layout: one folder, one PPMd coder, no encryption.

    Anything else (several folders, filters, AES) returns None and goes through
    py7zr's general extraction.
    """
    try:
        streams = archive.header.main_streams
        folders = streams.unpackinfo.folders
        if len(folders) != 1 or len(streams.packinfo.packsizes) != 1:
            return None
        coders = folders[0].coders
        if len(coders) != 1 or coders[0]["method"] != PPMD_METHOD or coders[0].get("numinstreams", 1) != 1:
            return None
        properties = coders[0]["properties"]
        if len(properties) not in (5, 7):
            return None
        members = tuple((f.filename, int(f.uncompressed), f.crc32) for f in archive.files if not f.emptystream)
        if sum(size for _, size, _ in members) != folders[0].unpacksizes[-1]:
            return None
        return _PpmdStream(offset=archive.afterheader + streams.packinfo.packpos,
                           packed=streams.packinfo.packsizes[0], order=properties[0],
                           memory=int.from_bytes(properties[1:5], "little"), members=members)
    except (AttributeError, IndexError, KeyError, TypeError):
        return None


def _decode_stream(path: Path, stream: _PpmdStream, wanted: dict[str, str]) -> dict[str, bytes]:
    """Decode the stream up to its last wanted file in one call, checking each wanted file's CRC.

    py7zr feeds pyppmd a few kilobytes per call and checks free memory on each,
    which costs more than the decoding itself: one call decodes a day of category
    3 in about 1.1 s, against 2.6 s through py7zr.extract.
    """
    starts, end, need = {}, 0, 0
    for name, size, _ in stream.members:
        starts[name] = end
        end += size
        if name in wanted:
            need = end
    if need > MAX_EXTRACT_BYTES:
        raise SourceError(f"archive {path.name} would decompress to {need:,} bytes, more than the "
                          f"{MAX_EXTRACT_BYTES:,} allowed")
    with path.open("rb") as handle:
        handle.seek(stream.offset)
        packed = handle.read(stream.packed)
    decoder = pyppmd.Ppmd7Decoder(stream.order, stream.memory)
    data = decoder.decode(packed, need)
    if len(data) < need and decoder.needs_input:
        data += decoder.decode(b"\0", need - len(data))  # 7-Zip's range decoder may read one byte past the end
    if len(packed) < stream.packed or len(data) < need:
        raise _unreadable(path, EOFError(f"the stream ends after {len(data):,} of {need:,} bytes"))
    view = memoryview(data)
    files = {}
    for name, size, crc in stream.members:
        if name not in wanted:
            continue
        body = view[starts[name]:starts[name] + size]
        if crc is not None and zlib.crc32(body) != crc:
            raise _unreadable(path, ValueError(f"{name} fails its CRC check"))
        files[wanted[name]] = bytes(body)
    return files


# --------------------------------------------------------------------------- decode once

def decoded_cache_folder() -> Path:
    """Where decoded categories of archives are kept (under the data folder; safe to delete)."""
    return config.data_dir() / "cache" / "tcgcsv-decoded"


def decoded_cache_path(path: str | os.PathLike, category: int) -> Path:
    """The cache file of ``category`` decoded from the archive ``path``.

    Keyed on the archive's name, size and modification time (nanoseconds), the
    category and :data:`DECODED_CACHE_VERSION`: a replaced or touched archive is
    decoded again.
    """
    path = Path(path)
    stat = path.stat()
    return decoded_cache_folder() / (f"{path.name}.c{int(category)}.{stat.st_size}-{stat.st_mtime_ns}"
                                     f".v{DECODED_CACHE_VERSION}.zip")


def bundle(files: dict[str, bytes]) -> bytes:
    """The files of one archive's category as a zip (deflate level 1): the decoded-cache format.

    A bundle is small (about 0.9 MB for a day of category 3, against 7 MB of JSON)
    and quick to read, so it is also what the tcgcsv source keeps in a run's raw archive.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for group_id, body in files.items():
            archive.writestr(group_id, body)
    return buffer.getvalue()


def unbundle(data: bytes) -> dict[str, bytes]:
    """The files of a :func:`bundle`, keyed by groupId.

    Raises:
        zipfile.BadZipFile: not a bundle.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def bundle_names(data: bytes) -> list[str]:
    """The groupIds in a :func:`bundle`, without reading their files."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.namelist()


#: Bytes of the SHA-256 that heads each decoded-cache entry.
_DIGEST_BYTES = 32


def _read_bundle(cache: Path) -> bytes | None:
    """A cache entry's bundle, or None (and the entry removed) when it is not what was written.

    An entry is the bundle behind its SHA-256: checking that costs about 2 ms a day,
    where checking every member's CRC (``ZipFile.testzip``, which inflates them all)
    cost 17 ms, a third of a second on an 18-day backfill whose rows were already parsed.
    """
    try:
        stored = cache.read_bytes()
    except OSError as exc:
        logger.warning("decoded archive cache %s is unreadable (%s); decoding the archive again", cache.name, exc)
        cache.unlink(missing_ok=True)
        return None
    data = stored[_DIGEST_BYTES:]
    if len(stored) < _DIGEST_BYTES or hashlib.sha256(data).digest() != stored[:_DIGEST_BYTES]:
        logger.warning("decoded archive cache %s is unreadable (its SHA-256 does not match); decoding the "
                       "archive again", cache.name)
        cache.unlink(missing_ok=True)
        return None
    return data


def _write_bundle(cache: Path, data: bytes, stale_prefix: str) -> None:
    """Write the cache entry (SHA-256, then the bundle), then remove older entries of the same archive and category."""
    atomic.keep_cache_entry(cache, lambda tmp: tmp.write_bytes(hashlib.sha256(data).digest() + data),
                            f"{stale_prefix}*")


def read_bundle_cached(path: str | os.PathLike, category: int, date=None) -> tuple[bytes, bool]:
    """The :func:`bundle` of ``category`` in the archive ``path``, decoding PPMd only the first time.

    Returns:
        The bundle, and whether it came from the decoded cache.

    Raises:
        SourceError: as :func:`read_category`, when the archive must be decoded.
    """
    cache = decoded_cache_path(path, category)
    if cache.is_file():
        data = _read_bundle(cache)
        if data is not None:
            return data, True
    data = bundle(read_category(path, category, date))
    _write_bundle(cache, data, stale_prefix=f"{Path(path).name}.c{int(category)}.")
    return data, False


def read_category_cached(path: str | os.PathLike, category: int, date=None) -> tuple[dict[str, bytes], bool]:
    """:func:`read_category`, from the decoded cache when the archive was decoded before.

    Returns:
        The files keyed by groupId, and whether they came from the cache.

    Raises:
        SourceError: as :func:`read_category`, when the archive must be decoded.
    """
    data, cached = read_bundle_cached(path, category, date)
    return unbundle(data), cached


def _decode_worker(path: str, category: int, date) -> bytes:
    """Decode one archive in a worker process and cache it (module level, so it pickles)."""
    return read_bundle_cached(path, category, date)[0]


def _pool_context():
    """Fork where the platform has it (no re-import in the workers), else the platform's default."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork") if "fork" in methods else multiprocessing.get_context()


def cpu_count() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def read_days(paths: dict, category: int, *, workers: int = 2) -> Iterator[tuple[object, bytes | SourceError, bool]]:
    """Decode the category of several archives, each at most once ever, in day order.

    Days already in the decoded cache are read from it; the others are decoded in
    a pool of ``min(workers, cores, days)`` processes (PPMd is CPU-bound), a few days
    ahead of the one being yielded, so memory stays bounded.

    Args:
        paths: day -> archive path, in the order to yield.
        category: TCGplayer category id.
        workers: the most processes to use.

    Yields:
        ``(day, bundle, from_cache)``: the day's :func:`bundle` (open it with
        :func:`unbundle`), or the :class:`SourceError` that day raised (a corrupt
        archive, another day's archive), so one bad day never stops the others.
    """
    days = list(paths)
    todo = [d for d in days if not decoded_cache_path(paths[d], category).is_file()]
    processes = max(1, min(workers, cpu_count(), len(todo)))
    if processes == 1:
        for day in days:
            try:
                data, cached = read_bundle_cached(paths[day], category, day)
                yield day, data, cached
            except SourceError as exc:
                yield day, exc, False
        return
    logger.info("decoding %d archive(s) of category %d with %d processes", len(todo), category, processes)
    waiting = set(todo)
    with ProcessPoolExecutor(max_workers=processes, mp_context=_pool_context()) as pool:
        futures: dict[object, Future] = {}
        queue = list(todo)

        def top_up() -> None:
            while queue and len(futures) < processes * 2:
                day = queue.pop(0)
                futures[day] = pool.submit(_decode_worker, str(paths[day]), category, day)

        top_up()
        for day in days:
            if day not in waiting:
                try:
                    data, cached = read_bundle_cached(paths[day], category, day)
                    yield day, data, cached
                except SourceError as exc:
                    yield day, exc, False
                continue
            future = futures.pop(day)
            top_up()
            try:
                yield day, future.result(), False
            except SourceError as exc:
                yield day, exc, False


def parse_groups_csv(data: bytes) -> pd.DataFrame:
    """``groupId`` and ``name`` (plus whatever else) from a tcgcsv groups CSV.

    Accepts the headerless ``groupId,name,categoryId,abbreviation,modifiedOn`` export
    and CSVs with a header row naming ``groupId`` and ``name``.
    """
    text = data.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return pd.DataFrame({"groupId": pd.Series(dtype="string"), "name": pd.Series(dtype="string")})
    header = [c.strip() for c in rows[0]]
    if "groupId" in header and "name" in header:
        frame = pd.DataFrame(rows[1:], columns=header)
    else:
        names = ["groupId", "name", "categoryId", "abbreviation", "modifiedOn"]
        width = max(len(r) for r in rows)
        names = (names + [f"column{i}" for i in range(len(names), width)])[:width]
        frame = pd.DataFrame([r + [""] * (width - len(r)) for r in rows], columns=names)
    frame["groupId"] = frame["groupId"].astype("string").str.strip()
    return frame
