"""How a card is named and linked wherever it is shown: reports, plots, the CLI, the API.

Why: a price row always has a ``card_id`` but not always a ``name``. tcgcsv archive
backfills have no names until the product catalogue is filled, and a missing name
used to surface as ``<NA>`` in every table and as "<NA> 89333" in plot titles.
These two pure functions give every row something a person can read and, where the
id tells us the shop, a page to open:

* :func:`display_name` -> the card's name when known; else ``TCGplayer product
  89333 (SV: Scarlet & Violet 151)`` for TCGplayer product ids, or
  ``card sv3pt5-199 (151)`` for other ids; never ``<NA>`` or an empty string.
* :func:`card_url` -> ``https://www.tcgplayer.com/product/89333`` for TCGplayer
  product ids (tcgcsv, PokemonPriceTracker's ``tcgPlayerId``); for pokemontcg.io ids
  the price pages pokemontcg.io itself links from every card (its documented
  ``tcgplayer.url`` and ``cardmarket.url``):
  ``https://prices.pokemontcg.io/tcgplayer/sv3pt5-199`` for USD rows and
  ``https://prices.pokemontcg.io/cardmarket/sv3pt5-199`` for the EUR (Cardmarket)
  rows; ``""`` when the id says nothing about a shop (the simulated demo market,
  a spreadsheet's own ids).

How an id is recognised: by the row's ``source`` when it has one (``tcgcsv`` and
``pokemonpricetracker`` ids are TCGplayer productIds, ``pokemontcg`` ids are
pokemontcg.io ids, ``demo`` ids link nowhere); for other sources (``file``) or
without a ``source`` column, by its shape: all digits is a TCGplayer productId,
``<set>-<number>`` (``sv3pt5-199``, ``swsh45sv-SV001``) a pokemontcg.io id.

Both take any frame with a ``card_id`` column and use ``name``, ``set_name``,
``source``, ``currency`` and ``variant`` when present; both return a ``string``
Series aligned with the frame's index, vectorised (no loop over cards).
"""
from __future__ import annotations

import logging

import pandas as pd

logger = logging.getLogger(__name__)

TCGPLAYER_PRODUCT_URL = "https://www.tcgplayer.com/product/"
POKEMONTCG_TCGPLAYER_URL = "https://prices.pokemontcg.io/tcgplayer/"
POKEMONTCG_CARDMARKET_URL = "https://prices.pokemontcg.io/cardmarket/"
#: Sources whose card_id is a TCGplayer productId.
TCGPLAYER_ID_SOURCES = frozenset({"tcgcsv", "pokemonpricetracker"})
#: Sources whose ids are their own and link nowhere.
UNLINKED_SOURCES = frozenset({"demo"})
#: A pokemontcg.io card id: a lower-case set id, a dash, the collector number.
POKEMONTCG_ID = r"[a-z][a-z0-9.]*-[A-Za-z0-9]+"


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    """``frame[column]`` as stripped text with empty values as NA (all NA when the column is absent)."""
    if column not in frame.columns:
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    values = frame[column].astype("string").str.strip()
    return values.mask(values.eq("").fillna(False).astype(bool))


def id_kind(frame: pd.DataFrame) -> pd.Series:
    """What each row's ``card_id`` is: ``tcgplayer``, ``pokemontcg`` or ``""`` (unknown).

    Args:
        frame: rows with ``card_id`` and, optionally, ``source``.

    Returns:
        A ``string`` Series aligned with ``frame``.
    """
    ids = _text(frame, "card_id")
    source = _text(frame, "source").str.lower()
    digits = ids.str.fullmatch(r"\d+").fillna(False).astype(bool)
    pokemontcg = ids.str.fullmatch(POKEMONTCG_ID).fillna(False).astype(bool)
    known_tcgplayer = source.isin(TCGPLAYER_ID_SOURCES).fillna(False).astype(bool)
    known_pokemontcg = source.eq("pokemontcg").fillna(False).astype(bool)
    unlinked = source.isin(UNLINKED_SOURCES).fillna(False).astype(bool)
    guess = ~(known_tcgplayer | known_pokemontcg | unlinked)
    kind = pd.Series("", index=frame.index, dtype="string")
    kind[digits & (known_tcgplayer | guess)] = "tcgplayer"
    kind[pokemontcg & (known_pokemontcg | guess)] = "pokemontcg"
    return kind


def display_name(frame: pd.DataFrame, with_set: bool = True) -> pd.Series:
    """A readable name per row: the card's name, else what its id says; never ``<NA>``.

    Args:
        frame: rows with ``card_id``; ``name``, ``set_name`` and ``source`` are used
            when present.

    Returns:
        A ``string`` Series aligned with ``frame``: ``name`` when it is known; else
        ``"TCGplayer product 89333 (SV: Scarlet & Violet 151)"`` for a TCGplayer
        productId, ``"card sv3pt5-199 (151)"`` for any other id (the set part only
        when the set name is known and ``with_set``: leave it out where the set is
        shown beside the name), ``"unknown card"`` without an id.
    """
    name = _text(frame, "name")
    ids = _text(frame, "card_id")
    set_name = _text(frame, "set_name")
    label = pd.Series("card ", index=frame.index, dtype="string").mask(id_kind(frame).eq("tcgplayer"),
                                                                        "TCGplayer product ")
    fallback = (label + ids).fillna("unknown card")
    if with_set:
        fallback = (fallback + " (" + set_name + ")").fillna(fallback)
    return name.fillna(fallback).astype("string")


def card_url(frame: pd.DataFrame) -> pd.Series:
    """A web page per row where the card can be seen and bought, or ``""``.

    Args:
        frame: rows with ``card_id``; ``source``, ``currency`` and ``variant`` are
            used when present (EUR / ``Cardmarket`` rows of pokemontcg.io ids link
            to Cardmarket).

    Returns:
        A ``string`` Series aligned with ``frame`` (module docstring for the forms).
    """
    ids = _text(frame, "card_id")
    kind = id_kind(frame)
    eur = _text(frame, "currency").str.upper().eq("EUR").fillna(False).astype(bool) \
        | _text(frame, "variant").eq("Cardmarket").fillna(False).astype(bool)
    url = pd.Series("", index=frame.index, dtype="string")
    tcgplayer = kind.eq("tcgplayer")
    url[tcgplayer] = TCGPLAYER_PRODUCT_URL + ids[tcgplayer]
    usd_page = kind.eq("pokemontcg") & ~eur
    url[usd_page] = POKEMONTCG_TCGPLAYER_URL + ids[usd_page]
    eur_page = kind.eq("pokemontcg") & eur
    url[eur_page] = POKEMONTCG_CARDMARKET_URL + ids[eur_page]
    return url
