"""The ``demo`` source: the simulated market of :mod:`pokewatch.data.demo_market`.

It fetches nothing; its "raw response" is a small JSON note of the generator
settings, so a replay regenerates exactly the same rows. A backfill is parsed in
chunks of about :data:`CHUNK_ROWS` rows (:meth:`DemoSource.parse_chunks`), which the
collect step stores one after the other, so a 730-day backfill of 45,000 series never
holds more than a month of rows, and the 500-series demo is a single chunk.

A collect keeps the simulation's state at its last block start in the cache folder
(:class:`SavedStates`), so the next day's collect resumes there instead of
re-simulating every day since the market's epoch: a daily collect of 45,000 series
simulates at most 64 days instead of 730. The prices are the same bit for bit
(tests/test_demo_market.py); a missing or unreadable state only costs the time.
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pandas as pd

from pokewatch import atomic, config
from pokewatch.data import demo_market
from pokewatch.data.raw_archive import RawArchive
from pokewatch.data.sources.base import CollectRequest, FetchReport, PriceSource
from pokewatch.data.sources.options import Option

#: Rows per chunk of a streamed backfill (a month of 45,000 series): few enough to hold
#: as strings while validating, many enough that a small market is one chunk.
CHUNK_ROWS = 1_400_000

logger = logging.getLogger(__name__)


@cache
def _simulator_digest() -> str:
    """A digest of the simulator's source: a saved state is only valid for the code that saved it."""
    return hashlib.sha256(Path(demo_market.__file__).read_bytes()).hexdigest()[:12]


class SavedStates:
    """The saved :class:`~pokewatch.data.demo_market.MarketState` s of one demo market, in the cache folder.

    A state is a cache entry like any other: one ``<day>.npz`` per block start, the
    newest :data:`KEEP` kept, in ``<cache>/demo-market/<n_series>-<seed>-<simulator digest>/``.
    One that cannot be read or does not fit is skipped with a warning, and one that
    cannot be written is only logged: neither ever fails a collect.
    """

    KEEP = 3

    def __init__(self, root: Path, n_series: int) -> None:
        self.root, self.n_series = Path(root), n_series

    @classmethod
    def of(cls, n_series: int, seed: int) -> SavedStates:
        return cls(config.cache_dir() / "demo-market" / f"{n_series}-{seed}-{_simulator_digest()}", n_series)

    def _days(self) -> list[int]:
        return sorted(int(p.stem) for p in self.root.glob("*.npz") if p.stem.isdigit())

    def latest(self, on_or_before: int) -> demo_market.MarketState | None:
        for day in reversed([d for d in self._days() if d <= on_or_before]):
            path = self.root / f"{day}.npz"
            try:
                state = demo_market.MarketState.from_bytes(path.read_bytes())
            except (OSError, ValueError, KeyError) as exc:
                logger.warning("skipping the unreadable demo market state %s: %s", path, exc)
                continue
            if state.day == day and state.fits(self.n_series):
                return state
            logger.warning("skipping the demo market state %s: it is not of day %d and %d series",
                           path, day, self.n_series)
        return None

    def keep(self, state: demo_market.MarketState) -> None:
        try:
            atomic.write_bytes(self.root / f"{state.day}.npz", state.to_bytes())
            for day in self._days()[:-self.KEEP]:
                (self.root / f"{day}.npz").unlink(missing_ok=True)
        except OSError as exc:
            logger.warning("could not keep the demo market state in %s: %s", self.root, exc)


class DemoSource(PriceSource):
    name = "demo"
    history_capable = True
    OPTIONS = (
        Option("n_series", "int", demo_market.DEFAULT_N_SERIES, "number of simulated price series",
               minimum=1, maximum=10_000_000),
        Option("seed", "int", demo_market.DEFAULT_SEED, "market seed", minimum=0, maximum=2**63 - 1),
    )

    def _settings(self, request: CollectRequest) -> dict:
        options = self.check_options(request.options, files=False)
        return {
            "n_series": options["n_series"],
            "seed": options["seed"],
            "start": f"{request.start:%Y-%m-%d}",
            "end": f"{request.end:%Y-%m-%d}",
        }

    def fetch(self, request: CollectRequest, raw: RawArchive) -> FetchReport:
        raw.put("demo-settings.json", json.dumps(self._settings(request)).encode(), content_type="application/json")
        return FetchReport(expected=1)

    def parse(self, request: CollectRequest, raw: RawArchive) -> pd.DataFrame:
        settings = json.loads(raw.get("demo-settings.json"))
        return demo_market.demo_prices(settings["start"], settings["end"],
                                       n_series=settings["n_series"], seed=settings["seed"])

    def parse_chunks(self, request: CollectRequest, raw: RawArchive) -> Iterator[pd.DataFrame]:
        """The rows :meth:`parse` returns, as consecutive windows of about :data:`CHUNK_ROWS` rows.

        String columns are categoricals; the collect step validates and stores each
        window before the next is simulated.
        """
        settings = json.loads(raw.get("demo-settings.json"))
        yield from demo_market.demo_price_chunks(settings["start"], settings["end"], n_series=settings["n_series"],
                                                 seed=settings["seed"],
                                                 chunk_days=max(1, CHUNK_ROWS // settings["n_series"]),
                                                 states=SavedStates.of(settings["n_series"], settings["seed"]))
