"""A small synthetic market whose winning rule is known, for training and walk-forward tests.

Two kinds of card, both with a price spike every ten days or so:

* active cards trade every day (small moves) and their spikes revert the next day,
  so a SELL on the spike is right a week later;
* thin cards sit on one price, and after ``persist_from`` their spikes persist and
  climb further, so a SELL on the spike is wrong a week later (before that day they
  revert like the active ones).

The right SELL rule is therefore "spike, in an active market"; BUY never has an edge.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def market(start: str = "2026-01-01", days: int = 120, n_active: int = 40, n_thin: int = 60,
           persist_from: int = 0, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, periods=days, freq="D")
    frames = []
    for i in range(n_active + n_thin):
        active = i < n_active
        price = np.full(days, 10.0)
        if active:
            price = 10.0 * (1 + rng.uniform(-0.02, 0.02, days))
        for day in range(5 + i % 10, days - 1, 10):
            if active or day < persist_from:
                price[day] = price[day - 1] * 1.3                       # reverts the next day
            else:
                price[day:] = price[day - 1] * 1.3                      # persists ...
                price[min(day + 2, days - 1):] *= 1.1                   # ... and climbs
        frames.append(pd.DataFrame({"card_id": f"{'act' if active else 'thin'}-{i:03d}", "variant": "Normal",
                                    "date": dates, "market_price": np.round(price, 2), "currency": "USD",
                                    "source": "test"}))
    return pd.concat(frames, ignore_index=True)
