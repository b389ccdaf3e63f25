"""The original approach, rewritten for the benchmark: a Python loop over cards.

The seed project built its features card by card. Two versions are kept here so
the benchmark can time them in the same run as the vectorized code and report the
ratio (absolute times drift on a shared machine; the ratio does not):

* :func:`groupby_loop_mean3`  ``groupby`` over the series, ``rolling(3, min_periods=1).mean()``
  on each group, results concatenated back (the loop the issue measured at 33 s for
  14 million rows);
* :func:`mask_loop_mean3`     each series selected with a boolean mask over the whole
  table (the 230 s variant). It is quadratic, so the benchmark runs it only at small
  scales.

Both compute the seed's rule, ``seed_mean3`` in :mod:`pokewatch.core.fair_value`, so the
benchmark also checks that the fast path gives the same numbers.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

SERIES_KEY = ["card_id", "variant", "currency"]


def groupby_loop_mean3(history: pd.DataFrame) -> pd.Series:
    """3-observation rolling mean (today included) of every series, one group at a time.

    ``history`` is the long table sorted by series and date (as the store loads it).
    Returns the means aligned with ``history``'s index.
    """
    parts = []
    for _key, group in history.groupby(SERIES_KEY, sort=True, observed=True):
        parts.append(group["market_price"].rolling(3, min_periods=1).mean())
    return pd.concat(parts).reindex(history.index)


def mask_loop_mean3(history: pd.DataFrame) -> pd.Series:
    """The same means, selecting each series with a boolean mask over the full table."""
    out = pd.Series(np.nan, index=history.index)
    keys = history[SERIES_KEY].drop_duplicates()
    card, variant, currency = (history[c].to_numpy() for c in SERIES_KEY)
    for row in keys.itertuples(index=False):
        mask = (card == row.card_id) & (variant == row.variant) & (currency == row.currency)
        part = history.loc[mask].sort_values("date")
        out.loc[part.index] = part["market_price"].rolling(3, min_periods=1).mean().to_numpy()
    return out
