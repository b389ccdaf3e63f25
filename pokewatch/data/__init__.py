"""Getting prices and keeping them: sources, the HTTP client, raw responses and the price store.

* :mod:`~pokewatch.data.sources`: the price sources by name (demo, file, tcgcsv, pokemontcg, pokemonpricetracker).
* :mod:`~pokewatch.data.http_client`, :mod:`~pokewatch.data.retry`:
  one client and one retry policy for every request PokeWatch sends (with the one redactor,
  :mod:`pokewatch.redaction`).
* :mod:`~pokewatch.data.raw_archive`: raw responses kept before anything parses them, so a parse can be replayed.
* :mod:`~pokewatch.data.archives`, :mod:`~pokewatch.data.catalogue`: tcgcsv's daily archives and the product catalogue.
* :mod:`~pokewatch.data.store`, :mod:`~pokewatch.data.compaction`: the Parquet day files and the compacted,
  memory-mapped history the core reads.
* :mod:`~pokewatch.data.watchlist`, :mod:`~pokewatch.data.demo_market`: what to collect, and the offline demo market.

Builds on :mod:`pokewatch.core` (the schema and the frame) and knows nothing of runs or pages:
the collect step, which writes a run's files, is :mod:`pokewatch.run.collect`.
"""
