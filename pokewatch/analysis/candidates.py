"""One ranking of a day's cards: which are "today's strongest flags", and in which order.

Why one module: the evaluate notebook's candidates table, the report's headline, the
explore notebook, the plots, the alerts, ``pokewatch signals`` and the API's
``/signals`` all show the day's strongest flags. Each used to rank them its own way
(``abs().sort_values``, ``nsmallest``/``nlargest``, ``idxmax``, a ``sorted`` key) with
ties left to the sort, so they could name different cards. They all call
:func:`rank_flags` now, and differ only in what legitimately differs: which signals,
topped up or not, how many.

The ranking, on a day's signals (one row per series: ``signals.csv`` or
``FairValueModel.predict_all``):

* the rows of the wanted signals (BUY and SELL by default) come first, furthest from
  their fair value first (``|deviation|`` descending, a missing deviation last);
* ties are broken by card id, variant and currency, so the order is the same on every
  surface and in every run of the same data. Because it is a total order, filtering a
  ranked list (by signal, category or price) leaves it ranked: for BUY flags it is
  deviation ascending, for SELL descending;
* with ``top_up``, the other cards follow, furthest from fair value first (those
  closest to being flagged), so a quiet day still shows what to watch; a card whose
  price is stale or that has no deviation is never a top-up;
* with ``min_price``, cards under that price (or without one) are left out.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import pandas as pd

from pokewatch.core.schema import SERIES_KEY

logger = logging.getLogger(__name__)

#: The signals that are flags.
FLAGS = ("BUY", "SELL")


def rank_flags(today: pd.DataFrame, signals: Iterable[str] = FLAGS, *, top_up: bool = False,
               min_price: float | None = None, limit: int | None = None) -> pd.DataFrame:
    """The day's cards of ``signals``, strongest first, optionally topped up with the nearest to a flag.

    Args:
        today: one row per series with ``signal``, ``deviation`` and, for ``min_price``,
            ``market_price``; ``stale`` and the series key columns are used when present.
        signals: the signals to rank (``["BUY"]`` for BUY flags only, ``["HOLD"]`` for holds).
        top_up: after those rows, add the other fresh cards with a deviation, furthest
            from their fair value first, up to ``limit``.
        min_price: leave out cards priced under this (None: keep every price).
        limit: at most this many rows (None or 0: all).

    Returns:
        The ranked rows of ``today`` (all its columns, its index kept).
    """
    frame = today
    if min_price is not None:
        frame = frame[(frame["market_price"] >= min_price).fillna(False).to_numpy(bool)]
    wanted = frame["signal"].astype("string").isin(list(signals)).fillna(False).to_numpy(bool)
    keep = wanted
    if top_up:
        fresh = (~frame["stale"].fillna(False).astype(bool)).to_numpy(bool) if "stale" in frame else True
        keep = wanted | (frame["deviation"].notna().to_numpy(bool) & fresh)
    frame, wanted = frame[keep], wanted[keep]
    order = pd.DataFrame({"top_up": ~wanted, "strength": -frame["deviation"].abs().to_numpy(float)})
    ties = [key for key in SERIES_KEY if key in frame]
    for key in ties:
        order[key] = frame[key].astype("string").to_numpy()
    positions = order.sort_values(["top_up", "strength", *ties], na_position="last", kind="stable").index
    ranked = frame.iloc[np.asarray(positions)]
    return ranked.head(limit) if limit else ranked


def top_candidates(today: pd.DataFrame, min_price: float = 1.0, n: int = 15) -> pd.DataFrame:
    """The day's flagged cards, strongest first, topped up with the cards nearest a flag.

    On a quiet day nothing is flagged; showing the cards closest to BUY or SELL still
    tells a collector what to watch. Cards under ``min_price`` and cards whose newest
    price is stale are never candidates (see :func:`rank_flags`).
    """
    return rank_flags(today, top_up=True, min_price=min_price, limit=n)
