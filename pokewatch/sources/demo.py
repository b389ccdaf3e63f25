"""The ``demo`` source: the simulated market of :mod:`pokewatch.demo_market`.

It fetches nothing; its "raw response" is a small JSON note of the generator
settings, so a replay regenerates exactly the same rows. A backfill is parsed in
month-sized chunks (:meth:`DemoSource.parse_chunks`), which the collect step stores
one after the other, so a 730-day backfill of 45,000 series never holds more than a
month of rows.
"""
from __future__ import annotations

import json
from collections.abc import Iterator

import pandas as pd

from pokewatch import demo_market
from pokewatch.raw_archive import RawArchive
from pokewatch.sources.base import CollectRequest, FetchReport, PriceSource

#: Days per chunk of a streamed backfill.
CHUNK_DAYS = 31


class DemoSource(PriceSource):
    name = "demo"
    history_capable = True

    def _settings(self, request: CollectRequest) -> dict:
        return {
            "n_series": int(request.options.get("n_series", demo_market.DEFAULT_N_SERIES)),
            "seed": int(request.options.get("seed", demo_market.DEFAULT_SEED)),
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
        """The rows :meth:`parse` returns, as consecutive windows of :data:`CHUNK_DAYS` days.

        String columns are categoricals; the collect step validates and stores each
        window before the next is simulated.
        """
        settings = json.loads(raw.get("demo-settings.json"))
        yield from demo_market.demo_price_chunks(settings["start"], settings["end"], n_series=settings["n_series"],
                                                 seed=settings["seed"], chunk_days=CHUNK_DAYS)
