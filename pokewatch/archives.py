"""Read tcgcsv's daily price archives, so a new user can backfill history on day one.

tcgcsv publishes one archive per day, ``prices-YYYY-MM-DD.ppmd.7z``: a solid 7z
compressed with PPMd (py7zr reads it through pyppmd) holding every TCGplayer
category's prices as ``{date}/{category}/{groupId}/prices``, each file the JSON
the live ``/tcgplayer/{category}/{groupId}/prices`` endpoint answered that day.
Archives hold prices only: no products (names, numbers, rarities). Set names come
from ``groups-category-{category}.csv`` when it sits beside the archives (columns
``groupId,name,categoryId,abbreviation,modifiedOn``, with or without a header).

Reading one day of category 3 (about 208 groups, 42,600 prices, 6.5 MB of JSON)
takes about 1.7 s: the archive is one solid block, so everything before the last
wanted file is decompressed.

A location is a local folder or an ``http(s)://`` URL prefix; ``tcgcsv`` is short
for tcgcsv's own archive URL. Remote archives are downloaded once into a cache
folder. tcgcsv's archive URL has answered 403 since September 2026; that is
reported as "archive not available from tcgcsv; pass a local folder of archives".
"""
from __future__ import annotations

import csv
import io
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import py7zr
from py7zr.io import BytesIOFactory

from pokewatch import config
from pokewatch.errors import ParameterError, SourceError
from pokewatch.http_client import HttpClient, HttpError

logger = logging.getLogger(__name__)

DEFAULT_TCGCSV_URL = "https://tcgcsv.com"
ARCHIVE_PATH = "archive/tcgplayer"
#: Refuse to decompress more than this from one archive (a corrupt or hostile file).
MAX_EXTRACT_BYTES = 4 << 30
UNAVAILABLE = "archive not available from tcgcsv; pass a local folder of archives"


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
            factory = BytesIOFactory(limit=MAX_EXTRACT_BYTES)
            archive.extract(targets=list(wanted), factory=factory)
    except SourceError:
        raise
    except (py7zr.exceptions.ArchiveError, py7zr.exceptions.PasswordRequired, EOFError,
            OSError, ValueError, KeyError) as exc:
        raise SourceError(f"archive {path.name} could not be read ({type(exc).__name__}: {exc}); "
                          "it may be truncated or corrupt: download it again") from None
    files = {}
    for member, group_id in wanted.items():
        product = factory.get(member)
        product.seek(0)
        files[group_id] = product.read()
    return files


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
