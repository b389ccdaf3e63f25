"""Price sources by name. ``get_source("demo")`` is the offline default.

Each source is a :class:`~pokewatch.data.sources.base.PriceSource`; register new ones in
:data:`SOURCES` (name -> "module:Class", imported lazily so optional network code is
only loaded when used). A source declares the options it reads in ``OPTIONS``;
``get_source(name).check_options(options)`` validates them all before anything
runs (:mod:`pokewatch.data.sources.options`).
"""
from __future__ import annotations

import importlib

from pokewatch.errors import ParameterError
from pokewatch.data.sources.base import CollectRequest, FetchReport, PriceSource

SOURCES: dict[str, str] = {
    "demo": "pokewatch.data.sources.demo:DemoSource",
    "tcgcsv": "pokewatch.data.sources.tcgcsv:TcgcsvSource",
    "pokemontcg": "pokewatch.data.sources.pokemontcg:PokemonTcgSource",
    "pokemonpricetracker": "pokewatch.data.sources.pokemonpricetracker:PokemonPriceTrackerSource",
    "file": "pokewatch.data.sources.file:FileSource",
}


def get_source(name: str) -> PriceSource:
    """Instantiate the source called ``name``.

    Raises:
        ParameterError: unknown name, listing the known ones.
    """
    if name not in SOURCES:
        raise ParameterError(f"unknown source {name!r}; known sources: {', '.join(sorted(SOURCES))}")
    module_name, class_name = SOURCES[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)()


__all__ = ["SOURCES", "CollectRequest", "FetchReport", "PriceSource", "get_source"]
