"""The signal rule: when a card's market price is far enough from its fair value to flag it.

Why one module: the BUY/SELL/HOLD decision is made by the compiled kernels (every
row of the history), by the model (today's cards, the API's ``/fair_price``) and by
the reports that explain it. They must never disagree, so the thresholds, their
floating-point tolerance and the confirmation filters are defined here once and
every caller reads them from here.

A rule is a fair-value method and window plus, for each signal kind, the
confirmations a deviation needs before it becomes a flag:

* the threshold: BUY when ``deviation <= -buy_threshold``, SELL when
  ``deviation >= +sell_threshold`` (10% / 15% by default). The tolerance
  :data:`TOLERANCE` keeps a price exactly on the threshold (0.90 x fair) a BUY despite
  binary floating point;
* eligibility: the flag-day price and every price in the fair-value window are at
  least ``min_price``, and the series has at least one earlier observation;
* optional confirmations (:class:`Filters`), chosen per kind by training
  (:mod:`pokewatch.core.training`):

  - ``activity``: the market trades. At least this share of the series' prior
    :data:`ACTIVITY_WINDOW` observations changed price (all its earlier observations
    while a series is younger than that). A thin market rarely moves,
    so a deviation there is seldom corrected within the horizon.
  - ``listing``: the listings agree. SELL needs a listing below the market price
    (``low_price < market``): buyers can pay less, so the next sales pull the
    market price down. BUY needs no listing below it (``low_price >= market``):
    the cheap sale cannot be repeated. Only sources with listing prices (tcgcsv,
    pokemontcg) can confirm.
  - ``persistence``: the previous observation was beyond the same threshold.
  - ``no_jump``: today's move is within :data:`JUMP_MULTIPLE` times the series'
    usual move (at least :data:`JUMP_FLOOR`), a guard against one-off spikes.
  - ``vol_scaled``: the deviation is at least :data:`Z_MIN` standard deviations of
    the series' recent log moves.

A kind whose rule showed no edge in training is switched off (``Filters`` is None
for it) and never flags; :attr:`Rule.reasons` says why.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pokewatch.core import checks
from pokewatch.errors import ParameterError

#: Slack on the thresholds so a price exactly on one (0.90 x fair) still flags.
TOLERANCE = 1e-12
#: Prior observations the activity, usual-move and volatility measures look at.
ACTIVITY_WINDOW = 7
#: Activity levels a rule can demand (share of prior observations with a price change).
ACTIVITY_LEVELS = (0.0, 0.3, 0.5, 0.7)
#: A move beyond this multiple of the series' usual absolute log move is a jump ...
JUMP_MULTIPLE = 5.0
#: ... where the usual move counts as at least this much (a flat series is not infinitely jumpy).
JUMP_FLOOR = 0.02
#: Standard deviations of recent log moves a vol-scaled deviation must reach.
Z_MIN = 2.0

#: Bits of a row's confirmation pattern (the kernels write them; rules read them).
LISTING, PERSISTENCE, NO_JUMP, VOL_SCALED = 1, 2, 4, 8
_BIT_NAMES = ((LISTING, "listing"), (PERSISTENCE, "persistence"), (NO_JUMP, "no_jump"), (VOL_SCALED, "vol_scaled"))
#: Patterns are ``bits | level << 4``: 16 bit combinations x 4 activity levels.
N_PATTERNS = 64
#: A kind that is switched off has this mask: no pattern can match it.
OFF = -1

SIGNALS = ("BUY", "HOLD", "SELL")
BUY, HOLD, SELL = 0, 1, 2


@dataclass(frozen=True)
class Filters:
    """Confirmations a deviation beyond the threshold needs to become a flag.

    Attributes:
        activity: index into :data:`ACTIVITY_LEVELS` (0 = no demand on activity).
        listing, persistence, no_jump, vol_scaled: see the module docstring.
    """

    activity: int = 0
    listing: bool = False
    persistence: bool = False
    no_jump: bool = False
    vol_scaled: bool = False

    def __post_init__(self) -> None:
        if not 0 <= int(self.activity) < len(ACTIVITY_LEVELS):
            raise ParameterError(f"activity level must be 0..{len(ACTIVITY_LEVELS) - 1}, got {self.activity!r}")

    @property
    def mask(self) -> int:
        """The confirmation bits this filter set demands."""
        return sum(bit for bit, name in _BIT_NAMES if getattr(self, name))

    @classmethod
    def from_pattern(cls, mask: int, level: int) -> Filters:
        return cls(activity=int(level), **{name: bool(mask & bit) for bit, name in _BIT_NAMES})

    def describe(self) -> str:
        """Plain words, for reports: 'an active market (>= 50% of the last 7 prices changed) and ...'."""
        parts = []
        if self.activity:
            parts.append(f"an active market (at least {ACTIVITY_LEVELS[self.activity]:.0%} of the last "
                         f"{ACTIVITY_WINDOW} prices changed)")
        if self.listing:
            parts.append("listings that agree")
        if self.persistence:
            parts.append("two observations in a row beyond the threshold")
        if self.no_jump:
            parts.append("no one-off jump")
        if self.vol_scaled:
            parts.append(f"a move of at least {Z_MIN:g} standard deviations")
        return " and ".join(parts) if parts else "no further confirmation"

    def as_dict(self) -> dict:
        return {"activity": ACTIVITY_LEVELS[self.activity], "listing": self.listing,
                "persistence": self.persistence, "no_jump": self.no_jump, "vol_scaled": self.vol_scaled}

    @classmethod
    def from_dict(cls, value: dict) -> Filters:
        level = ACTIVITY_LEVELS.index(float(value.get("activity", 0.0)))
        return cls(activity=level, listing=bool(value.get("listing")), persistence=bool(value.get("persistence")),
                   no_jump=bool(value.get("no_jump")), vol_scaled=bool(value.get("vol_scaled")))


@dataclass(frozen=True)
class Rule:
    """Everything that decides a flag: fair value, thresholds and per-kind confirmations.

    Attributes:
        method, window: the fair-value method and its window (see :mod:`pokewatch.core.fair_value`).
        buy, sell: the confirmations of each kind, or None when that kind is switched off.
        reasons: per kind, why it is on or off (plain words, shown in reports).
    """

    method: str = "rolling_mean"
    window: int = 7
    buy_threshold: float = 0.10
    sell_threshold: float = 0.15
    min_price: float = 1.0
    buy: Filters | None = field(default_factory=Filters)
    sell: Filters | None = field(default_factory=Filters)
    reasons: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        thresholds(self.buy_threshold, self.sell_threshold, self.min_price)

    @property
    def label(self) -> str:
        return f"{self.method}({self.window})"

    @property
    def cuts(self) -> tuple[float, float, float]:
        """(buy cut, sell cut, min price) of this rule, as :func:`thresholds` gives them."""
        return thresholds(self.buy_threshold, self.sell_threshold, self.min_price)

    def kernel_filters(self) -> tuple[int, int, int, int]:
        """(buy mask, buy level, sell mask, sell level) as the kernels take them; OFF for a switched-off kind."""
        def one(filters: Filters | None) -> tuple[int, int]:
            return (OFF, 0) if filters is None else (filters.mask, int(filters.activity))
        return (*one(self.buy), *one(self.sell))

    def describe(self) -> str:
        """One sentence per kind: what makes a flag, or why the kind is off."""
        parts = []
        for kind, filters, cut in (("BUY", self.buy, -self.buy_threshold), ("SELL", self.sell, self.sell_threshold)):
            if filters is None:
                parts.append(f"{kind} is off" + (f": {self.reasons[kind]}" if self.reasons.get(kind) else ""))
            else:
                parts.append(f"{kind} at {cut:+.0%} from {self.label} fair value with {filters.describe()}")
        return "; ".join(parts) + "."

    def as_dict(self) -> dict:
        return {"method": self.method, "window": self.window, "buy_threshold": self.buy_threshold,
                "sell_threshold": self.sell_threshold, "min_price": self.min_price,
                "buy": None if self.buy is None else self.buy.as_dict(),
                "sell": None if self.sell is None else self.sell.as_dict(), "reasons": dict(self.reasons)}

    @classmethod
    def from_dict(cls, value: dict) -> Rule:
        return cls(method=value["method"], window=int(value["window"]),
                   buy_threshold=float(value["buy_threshold"]), sell_threshold=float(value["sell_threshold"]),
                   min_price=float(value["min_price"]),
                   buy=None if value.get("buy") is None else Filters.from_dict(value["buy"]),
                   sell=None if value.get("sell") is None else Filters.from_dict(value["sell"]),
                   reasons=dict(value.get("reasons") or {}))


def thresholds(buy_threshold: float = 0.10, sell_threshold: float = 0.15, min_price: float = 1.0
               ) -> tuple[float, float, float]:
    """The (buy cut, sell cut, min price) deviations are compared with, tolerance included.

    Raises:
        ParameterError: a threshold outside (0, 1) / (0, 10) or a negative ``min_price``.
    """
    buy_threshold = checks.fraction("buy_threshold", buy_threshold)
    sell_threshold = checks.fraction("sell_threshold", sell_threshold, high=10.0)
    min_price = checks.non_negative("min_price", min_price)
    return -buy_threshold + TOLERANCE, sell_threshold - TOLERANCE, min_price
