"""PokeWatch: daily Pokémon-card prices, fair values and BUY/SELL/HOLD flags.

The package holds all the logic; the notebooks in ``notebooks/`` call it.
"""
from importlib.metadata import PackageNotFoundError, version

from pokewatch.memory_pages import prefer_small_pages

prefer_small_pages()

try:
    __version__ = version("pokewatch")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
