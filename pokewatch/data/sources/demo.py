"""The ``demo`` source: the simulated market of :mod:`pokewatch.data.demo_market`.

It fetches nothing; its "raw response" is a small JSON note of the generator
settings, so a replay regenerates exactly the same rows. A backfill is parsed in
chunks of about :data:`CHUNK_ROWS` rows (:meth:`DemoSource.parse_chunks`), which the
collect step stores one after the other, so a 730-day backfill of 45,000 series never
holds more than a month of rows, and the 500-series demo is a single chunk.
"""
from __future__ import annotations

import json
from collections.abc import Iterator

import pandas as pd

from pokewatch.data import demo_market
from pokewatch.data.raw_archive import RawArchive
from pokewatch.data.sources.base import CollectRequest, FetchReport, PriceSource
from pokewatch.data.sources.options import Option

#: Rows per chunk of a streamed backfill (a month of 45,000 series): few enough to hold
#: as strings while validating, many enough that a small market is one chunk.
CHUNK_ROWS = 1_400_000


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
                                                 chunk_days=max(1, CHUNK_ROWS // settings["n_series"]))
