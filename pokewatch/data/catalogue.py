"""The product catalogue: what each TCGplayer product is, kept in the data folder.

Why: tcgcsv's daily price archives hold prices only, keyed by productId. Without a
catalogue an archive backfill stores no card names, numbers or rarities, every
report shows bare ids, and ``pokewatch card charizard`` finds nothing. tcgcsv
serves the catalogue (groups and products) on its live API; the tcgcsv source
fetches it once when the network allows, and every live collect refreshes it, so a
later backfill, even offline, has names. This module only stores and reads it; the
fetching is in :mod:`pokewatch.data.sources.tcgcsv`.

Layout, per TCGplayer category (3 = English Pokémon), under the data folder::

    data/catalogue/tcgcsv/category-3/products.parquet   product_id, name, number, rarity, set_id, set_name
    data/catalogue/tcgcsv/category-3/groups.parquet     set_id, set_name, abbreviation, modified_on,
                                                        products_fetched_at
    data/catalogue/tcgcsv/category-3/fetch-state.json   the last failed attempt to reach tcgcsv

``product_id`` and ``set_id`` are strings, like ``card_id`` and ``set_id`` in the
price schema (a tcgcsv ``card_id`` *is* the productId). Writes are atomic and
merge: a product or group seen again replaces its old row, others stay. The
catalogue is a cache: deleting the folder costs one refetch.
"""
from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from pokewatch import atomic, config

logger = logging.getLogger(__name__)

PRODUCT_COLUMNS = ["product_id", "name", "number", "rarity", "set_id", "set_name"]
GROUP_COLUMNS = ["set_id", "set_name", "abbreviation", "modified_on", "products_fetched_at"]
#: Descriptive price columns the catalogue can fill.
FILLED_COLUMNS = ("name", "number", "rarity", "set_name")


def catalogue_dir(category: int, source: str = "tcgcsv") -> Path:
    """``data/catalogue/<source>/category-<category>``."""
    return config.data_dir() / "catalogue" / source / f"category-{int(category)}"


def products_path(category: int) -> Path:
    return catalogue_dir(category) / "products.parquet"


def groups_path(category: int) -> Path:
    return catalogue_dir(category) / "groups.parquet"


def empty_products() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="string") for c in PRODUCT_COLUMNS})


def empty_groups() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="string") for c in GROUP_COLUMNS})
    for column in ("modified_on", "products_fetched_at"):
        frame[column] = pd.Series(dtype="datetime64[ns]")
    return frame


def as_products(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with exactly :data:`PRODUCT_COLUMNS`, string-typed, one row per product (the last wins)."""
    out = pd.DataFrame({c: (frame[c] if c in frame.columns else pd.Series(pd.NA, index=frame.index))
                        .astype("string") for c in PRODUCT_COLUMNS})
    out["product_id"] = out["product_id"].str.strip()
    out = out[out["product_id"].notna() & out["product_id"].ne("")]
    return out.drop_duplicates("product_id", keep="last").reset_index(drop=True)


def as_groups(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with exactly :data:`GROUP_COLUMNS`, typed, one row per group (the last wins)."""
    out = empty_groups()
    if frame.empty:
        return out
    out = pd.DataFrame(index=frame.index)
    for column in ("set_id", "set_name", "abbreviation"):
        out[column] = (frame[column] if column in frame.columns else pd.Series(pd.NA, index=frame.index)) \
            .astype("string")
    for column in ("modified_on", "products_fetched_at"):
        values = frame[column] if column in frame.columns else pd.Series(pd.NaT, index=frame.index)
        out[column] = pd.to_datetime(values, errors="coerce", utc=True).dt.tz_localize(None) \
            .astype("datetime64[ns]")
    out["set_id"] = out["set_id"].str.strip()
    out = out[out["set_id"].notna() & out["set_id"].ne("")]
    return out.drop_duplicates("set_id", keep="last").reset_index(drop=True)


def _read(path: Path, empty: pd.DataFrame) -> pd.DataFrame:
    if not path.is_file():
        return empty
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as exc:  # a damaged cache: refetch rather than fail
        logger.warning("catalogue %s is unreadable (%s); it will be rebuilt", path, exc)
        return empty


def load_products(category: int) -> pd.DataFrame:
    """The stored products of ``category`` (empty when there are none yet or the file is damaged)."""
    return as_products(_read(products_path(category), empty_products()))


def load_groups(category: int) -> pd.DataFrame:
    """The stored groups (sets) of ``category`` (empty when there are none yet)."""
    return as_groups(_read(groups_path(category), empty_groups()))


def save_products(category: int, products: pd.DataFrame) -> pd.DataFrame:
    """Merge ``products`` into the stored catalogue (new rows replace old ones); return the result.

    Raises:
        OSError: the data folder is not writable (callers treat the catalogue as optional).
    """
    merged = as_products(pd.concat([load_products(category), as_products(products)], ignore_index=True))
    atomic.write_parquet(products_path(category), merged)
    return merged


def save_groups(category: int, groups: pd.DataFrame) -> pd.DataFrame:
    """Merge ``groups`` into the stored groups, keeping a known ``products_fetched_at``; return the result.

    Raises:
        OSError: the data folder is not writable.
    """
    old = load_groups(category)
    new = as_groups(groups)
    if not old.empty:
        known = old.set_index("set_id")["products_fetched_at"]
        new["products_fetched_at"] = new["products_fetched_at"].fillna(
            new["set_id"].map(known).astype("datetime64[ns]"))
    merged = as_groups(pd.concat([old, new], ignore_index=True))
    atomic.write_parquet(groups_path(category), merged)
    return merged


def fill_descriptions(frame: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    """Fill empty ``name``, ``number``, ``rarity`` and ``set_name`` of price rows from ``products``.

    Rows are matched on ``card_id`` == ``product_id``; values already present are
    kept. A pure function: the caller decides which catalogue to use.

    Args:
        frame: price rows with a ``card_id`` column.
        products: a catalogue in :data:`PRODUCT_COLUMNS` (see :func:`as_products`).

    Returns:
        A copy of ``frame`` with the four columns present (string dtype) and filled.
    """
    out = frame.copy()
    lookup = as_products(products).set_index("product_id")
    keys = out["card_id"].astype("string")
    for column in FILLED_COLUMNS:
        current = out[column].astype("string") if column in out.columns else pd.Series(pd.NA, index=out.index,
                                                                                        dtype="string")
        current = current.where(current.str.strip().ne("").fillna(False).astype(bool), pd.NA)
        out[column] = current.fillna(keys.map(lookup[column]) if not lookup.empty else current).astype("string")
    return out


# --------------------------------------------------------------------------- the fetch state

def _state_path(category: int) -> Path:
    return catalogue_dir(category) / "fetch-state.json"


def last_failure(category: int) -> dict | None:
    """``{"at": iso time, "error": ...}`` of the last failed attempt to fetch the catalogue, or None."""
    path = _state_path(category)
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and state.get("at") else None


def hours_since_failure(category: int, now: datetime | None = None) -> float | None:
    """Hours since the last failed fetch, or None when the last attempt did not fail."""
    failure = last_failure(category)
    if failure is None:
        return None
    try:
        at = datetime.fromisoformat(failure["at"])
    except (TypeError, ValueError):
        return None
    now = now or datetime.now(UTC)
    return (now - (at if at.tzinfo else at.replace(tzinfo=UTC))).total_seconds() / 3600


def record_failure(category: int, error: str) -> None:
    """Remember that tcgcsv could not be reached, so the next runs do not retry at once."""
    try:
        atomic.write_json(_state_path(category), {"at": datetime.now(UTC).isoformat(timespec="seconds"),
                                                  "error": error[:500]})
    except OSError as exc:
        logger.warning("could not record the catalogue fetch failure: %s", exc)


def clear_failure(category: int) -> None:
    """Forget a failed attempt (after a successful fetch)."""
    _state_path(category).unlink(missing_ok=True)
