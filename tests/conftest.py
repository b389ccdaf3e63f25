"""Shared fixtures: every test runs against its own runs/, store and cache folders.

Nothing a test does can touch the developer's real ``runs/`` or ``data/``, and no
test needs the network.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pokewatch.run import caching

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
#: A local port nothing listens on: a request to it is refused at once.
CLOSED_URL = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Point runs, data and cache at tmp folders for the duration of one test."""
    dirs = {name: tmp_path / name for name in ("runs", "data", "cache")}
    monkeypatch.setenv("POKEWATCH_RUNS_DIR", str(dirs["runs"]))
    monkeypatch.setenv("POKEWATCH_DATA_DIR", str(dirs["data"]))
    monkeypatch.setenv("POKEWATCH_CACHE_DIR", str(dirs["cache"]))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    for variable in ("POKEWATCH_TCGCSV_URL", "POKEWATCH_POKEMONTCG_URL", "POKEWATCH_PPT_URL"):
        monkeypatch.setenv(variable, CLOSED_URL)  # tests never reach a real API; servers override this
    caching.memory.cache_clear()
    yield dirs
    caching.memory.cache_clear()


@pytest.fixture
def shared_dir() -> Path:
    """The read-only real data in ../shared; tests using it skip cleanly when it is absent."""
    if not (SHARED / "data").is_dir():
        pytest.skip("../shared/data is not present on this machine")
    return SHARED


def prices(rows: list[tuple], **columns) -> pd.DataFrame:
    """A readable price table from (card_id, variant, date, market_price) tuples.

    Extra keyword columns are broadcast (for example ``currency="EUR"``).
    """
    frame = pd.DataFrame(rows, columns=["card_id", "variant", "date", "market_price"])
    frame["currency"] = columns.pop("currency", "USD")
    frame["source"] = columns.pop("source", "test")
    for name, value in columns.items():
        frame[name] = value
    return frame


def series(card_id: str, values: list[float], start: str = "2026-01-01", variant: str = "Holofoil",
           **columns) -> pd.DataFrame:
    """One series with a price per consecutive day (None = no observation that day)."""
    days = pd.date_range(start, periods=len(values), freq="D")
    rows = [(card_id, variant, d, v) for d, v in zip(days, values) if v is not None]
    return prices(rows, **columns)
