"""A deterministic, offline Pokémon-card market for demos, tests and benchmarks.

Why simulate: a fresh clone must produce a meaningful run with no key and no
network, and a benchmark must be able to make 45,000 series on demand. The market
below is calibrated to stylized facts measured on 43,000 real TCGplayer Pokémon
price series over 36 days in 2025, so the backtest exercises the same regimes as
real data (mostly flat days, fat-tailed moves, cheap cards noisier than dear ones).

Calibration. "Target" is the real-data fact; "measured" is this market with the
default seed, 1,500 series over 2025 (365 days), using ``market_facts`` in
``tests/test_demo_market.py``. That test checks loose bounds around the targets.
The definitions: a change is a series' log-price change between two consecutive
calendar days, both observed. A move is a non-zero change. A series' tier is set by
its median price. A tier's volatility is the median, over its series, of each
series' standard deviation of daily changes.

==========================================  =================  ====================
fact                                        target             measured
==========================================  =================  ====================
series-days with no price change            76%                75.9%
move size: median / p90 / p99               3% / 13% / 30%     3.2% / 13.9% / 32.9%
daily volatility under $1                   5.5%               4.9%
daily volatility $1-10                      3.3%               3.4%
daily volatility above $10                  2.7-2.9%           2.7%
missing series-days                         2%                 2.0%
median price                                $0.90              $0.92
series at $10 or more / $100 or more        19% / 4%           20.8% / 4.3%
dearest series (median price)               thousands          $1,799
lag-1 correlation of consecutive moves      -0.08              -0.081
Normal / Reverse Holofoil / Holofoil        43% / 30% / 23%    44% / 28% / 23%
==========================================  =================  ====================

Known misses: cheap cards are about 10% too calm, and the 99th-percentile move is
about 10% too large. Cent rounding sets the no-change share, the move quantiles and
cheap-card volatility against each other, and these figures are the compromise.
Of the lag-1 correlation, about -0.05 comes from ``_REVERSION`` and about -0.03
from rounding cheap prices to cents. Spikes add almost nothing.

How: each series has a latent log price that only moves on "trade days", so most
days are flat: TCGplayer's market price only moves after sales. Cheap cards trade
more often and move more. A trade's move has a random sign and a size drawn from a
fixed quantile table, scaled by the card's current price. It is pulled slightly
against the previous move (mean reversion) and, weakly, towards the series'
long-run level. A rare hype spike (+30% to +150%, about one per series in nine
years) adds a log component that fades with a ten-day half-life, and while it lasts
the card trades more often. Prices are rounded to cents (at least $0.01). Then 2%
of observations are dropped at random.

Determinism: every random draw comes from generators spawned from one
``SeedSequence(seed)``. Draws are made day-major, in whole 64-day blocks, from a
fixed epoch (2020-01-01). So a day's prices never depend on the requested window:
collecting 2026-01-05 alone, or as part of a 365-day backfill, gives the same
numbers on every machine. Benchmarks that need many series may pass
``epoch=start`` to skip the years before their window. Their prices then differ
from the default market's.
"""
from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa

from pokewatch.core import checks
from pokewatch.errors import ParameterError

logger = logging.getLogger(__name__)

EPOCH = pd.Timestamp("2020-01-01")
DEFAULT_SEED = 20261128
DEFAULT_N_SERIES = 500

# ---- Calibrated parameters (the module docstring lists what they reproduce) ----
# Price levels: log10 of a card's base price is a split normal around the median. Above
# the soft cap ($20) the excess shrinks by the slope, so the top cards sit in the thousands.
_LOG10_MEDIAN = -0.19
_LOG10_SD_BELOW, _LOG10_SD_ABOVE = 0.35, 1.35
_LOG10_FLOOR = np.log10(0.08)
_LOG10_SOFT_CAP, _SOFT_CAP_SLOPE = 1.3, 0.75
# A second printing (Reverse Holofoil, 1st Edition) is priced off its card's first
# printing: log10 offset ~ Normal(mean, sd), by variant.
_SECOND_PRINTING_LOG10 = {"Reverse Holofoil": (0.15, 0.30), "1st Edition Holofoil": (0.45, 0.25),
                          "1st Edition Normal": (0.35, 0.25)}
_P_SECOND_PRINTING = 0.6   # chance a Reverse Holofoil / 1st Edition series shares the previous card

# Daily dynamics. Curves "by price" are given at $0.10, $1 and $10, linear in log10
# price in between and flat outside.
_P_TRADE = np.array([0.41, 0.31, 0.25])   # chance a series trades: cheap cards sell more often
_SCALE = np.array([1.42, 0.97, 0.76])     # volatility scale: cheap cards move more
# Size of a trade's log move at scale 1, as (cumulative probability, size) knots;
# sizes in between are interpolated log-linearly.
_MOVE_SIZE_P = np.array([0.0, 0.5, 0.9, 0.99, 1.0])
_MOVE_SIZE = np.array([0.0015, 0.016, 0.10, 0.26, 0.40])
_REVERSION = 0.05          # pull of a move against the series' previous move
_ANCHOR_PULL = 0.01        # per trade, towards the series' long-run level
_P_SPIKE = 0.0003          # chance of a hype spike per series-day
_SPIKE_MIN, _SPIKE_MAX = 0.30, 1.50   # spike size: +30% to +150%
_SPIKE_HALF_LIFE = 10.0    # days
_HYPE_TRADE_BOOST = 0.5    # extra trade chance while a spike is above _HYPE_LEVEL
_HYPE_LEVEL = np.log(1.05)
_LOG_MIN_PRICE = np.log(0.01)   # a card never trades below a cent
_P_MISSING = 0.02          # share of series-days with no observed price
_NS_PER_DAY = 86_400_000_000_000
_BLOCK_DAYS = 64           # random draws are made in whole blocks of days from the epoch
_STREAMS = 5               # independent random streams: trades, move sizes, signs, spikes, missing days

VARIANTS = np.array(["Normal", "Reverse Holofoil", "Holofoil", "1st Edition Holofoil", "1st Edition Normal"])
_VARIANT_P = np.array([0.43, 0.30, 0.23, 0.025, 0.015])
# The first printing a second printing can share a card with.
_SECOND_OF = {1: (0, 2), 3: (2,), 4: (0,)}

# pokemontcg.io set ids and names (a slice across eras), printed set size, whether the
# set was printed in 1st Edition and whether it has Reverse Holofoils.
SETS = [
    ("base1", "Base", 102, True, False), ("base2", "Jungle", 64, True, False),
    ("base3", "Fossil", 62, True, False), ("base4", "Base Set 2", 130, False, False),
    ("base5", "Team Rocket", 82, True, False), ("gym1", "Gym Heroes", 132, True, False),
    ("gym2", "Gym Challenge", 132, True, False), ("neo1", "Neo Genesis", 111, True, False),
    ("neo2", "Neo Discovery", 75, True, False), ("neo3", "Neo Revelation", 64, True, False),
    ("neo4", "Neo Destiny", 105, True, False), ("ecard1", "Expedition Base Set", 165, False, True),
    ("ecard2", "Aquapolis", 147, False, True), ("ecard3", "Skyridge", 144, False, True),
    ("ex1", "Ruby & Sapphire", 109, False, True), ("ex2", "Sandstorm", 100, False, True),
    ("ex3", "Dragon", 97, False, True), ("ex6", "FireRed & LeafGreen", 112, False, True),
    ("ex14", "Crystal Guardians", 100, False, True), ("dp1", "Diamond & Pearl", 130, False, True),
    ("pl1", "Platinum", 127, False, True), ("hgss1", "HeartGold & SoulSilver", 123, False, True),
    ("col1", "Call of Legends", 95, False, True), ("bw1", "Black & White", 114, False, True),
    ("bw8", "Plasma Storm", 135, False, True), ("bw11", "Legendary Treasures", 113, False, True),
    ("xy1", "XY", 146, False, True), ("xy2", "Flashfire", 106, False, True),
    ("xy12", "Evolutions", 108, False, True), ("g1", "Generations", 83, False, True),
    ("sm1", "Sun & Moon", 149, False, True), ("sm3", "Burning Shadows", 147, False, True),
    ("sm35", "Shining Legends", 73, False, True), ("sm9", "Team Up", 181, False, True),
    ("sm115", "Hidden Fates", 68, False, True), ("sm12", "Cosmic Eclipse", 236, False, True),
    ("swsh1", "Sword & Shield", 202, False, True), ("swsh35", "Champion's Path", 73, False, True),
    ("swsh4", "Vivid Voltage", 185, False, True), ("swsh45", "Shining Fates", 72, False, True),
    ("swsh5", "Battle Styles", 163, False, True), ("swsh6", "Chilling Reign", 198, False, True),
    ("swsh7", "Evolving Skies", 203, False, True), ("swsh8", "Fusion Strike", 264, False, True),
    ("swsh9", "Brilliant Stars", 172, False, True), ("swsh10", "Astral Radiance", 189, False, True),
    ("pgo", "Pokémon GO", 78, False, True), ("swsh11", "Lost Origin", 196, False, True),
    ("swsh12", "Silver Tempest", 195, False, True), ("swsh12pt5", "Crown Zenith", 159, False, True),
    ("cel25", "Celebrations", 25, False, True), ("sv1", "Scarlet & Violet", 198, False, True),
    ("sv2", "Paldea Evolved", 193, False, True), ("sv3", "Obsidian Flames", 197, False, True),
    ("sv3pt5", "151", 165, False, True), ("sv4", "Paradox Rift", 182, False, True),
    ("sv4pt5", "Paldean Fates", 91, False, True), ("sv5", "Temporal Forces", 162, False, True),
    ("sv6", "Twilight Masquerade", 167, False, True), ("sv6pt5", "Shrouded Fable", 64, False, True),
    ("sv7", "Stellar Crown", 142, False, True), ("sv8", "Surging Sparks", 191, False, True),
    ("sv8pt5", "Prismatic Evolutions", 131, False, True), ("sv9", "Journey Together", 159, False, True),
    ("sv10", "Destined Rivals", 182, False, True),
]
_FIRST_SV_SET = [s[0] for s in SETS].index("sv1")
POKEMON = [
    "Charizard", "Pikachu", "Mewtwo", "Mew", "Umbreon", "Eevee", "Gengar", "Lugia", "Rayquaza",
    "Blastoise", "Venusaur", "Gyarados", "Dragonite", "Snorlax", "Lucario", "Greninja",
    "Sylveon", "Espeon", "Giratina", "Arceus", "Garchomp", "Tyranitar", "Alakazam", "Machamp",
    "Squirtle", "Bulbasaur", "Charmander", "Jigglypuff", "Psyduck", "Magikarp", "Ditto",
    "Lapras", "Articuno", "Zapdos", "Moltres", "Celebi", "Suicune", "Entei", "Raikou",
    "Gardevoir", "Miraidon", "Koraidon", "Iron Valiant", "Roaring Moon", "Pecharunt",
    "Terapagos", "Ogerpon", "Chien-Pao", "Palafin", "Kingambit", "Meowscarada", "Skeledirge",
    "Quaquaval", "Glaceon", "Leafeon", "Vaporeon", "Jolteon", "Flareon", "Mimikyu", "Zoroark",
]
# Rarity by the card's price rank, cheapest first: (upper rank, Scarlet & Violet era
# rarity, name suffix, rarity in older sets).
_RARITY_BANDS = [
    (0.35, "Common", "", "Common"), (0.62, "Uncommon", "", "Uncommon"), (0.80, "Rare", "", "Rare"),
    (0.88, "Rare Holo", "", "Rare Holo"), (0.93, "Double Rare", " ex", "Rare Holo"),
    (0.965, "Ultra Rare", " ex", "Rare Ultra"), (0.99, "Illustration Rare", "", "Rare Secret"),
    (1.01, "Special Illustration Rare", " ex", "Rare Secret"),
]
_STRING_COLUMNS = ["card_id", "variant", "currency", "name", "set_id", "set_name", "number", "rarity"]


def _check(n_series: int, seed: int) -> tuple[int, int]:
    return checks.positive_int("n_series", n_series), checks.non_negative_int("seed", seed)


def _split_normal_log10_price(rng: np.random.Generator, size: int) -> np.ndarray:
    z = rng.standard_normal(size)
    log10_price = _LOG10_MEDIAN + z * np.where(z < 0, _LOG10_SD_BELOW, _LOG10_SD_ABOVE)
    above_cap = np.maximum(log10_price - _LOG10_SOFT_CAP, 0.0)
    return np.maximum(log10_price - above_cap * (1.0 - _SOFT_CAP_SLOPE), _LOG10_FLOOR)


def _collector_numbers(rng: np.random.Generator, set_of_card: np.ndarray) -> np.ndarray:
    """A collector number per card, unique within its set, mostly within the printed size.

    Each set gets a random permutation of 1..M (M = 1.2 x printed size, or more when the
    set holds more cards), and its cards take the permutation's first entries in turn.
    """
    sizes = np.array([s[2] for s in SETS])
    cards_per_set = np.bincount(set_of_card, minlength=len(SETS))
    slots = np.maximum(np.ceil(sizes * 1.2).astype(int), cards_per_set)
    keys = rng.random((len(SETS), int(slots.max())))
    keys[np.arange(keys.shape[1])[None, :] >= slots[:, None]] = np.inf
    permutation = np.argsort(keys, axis=1) + 1
    order = np.argsort(set_of_card, kind="stable")
    first_of_set = np.concatenate([[0], np.cumsum(cards_per_set)[:-1]])
    rank_in_set = np.empty_like(set_of_card)
    rank_in_set[order] = np.arange(len(set_of_card)) - first_of_set[set_of_card[order]]
    return permutation[set_of_card, rank_in_set]


def demo_catalogue(n_series: int = DEFAULT_N_SERIES, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """The demo market's series: ids, names, sets, rarities, variants and base prices.

    Some cards come in two printings (Normal or Holofoil plus Reverse Holofoil, or a
    1st Edition next to its unlimited printing), as in real sets, so ``card_id`` alone
    is not a key; ``(card_id, variant)`` is unique.

    Args:
        n_series: number of series (card x variant) to make.
        seed: the market's seed; the same seed gives the same catalogue everywhere.

    Returns:
        One row per series, sorted by ``card_id`` and ``variant``, with string columns
        card_id, variant, currency (USD), name, set_id, set_name, number, rarity and a
        float ``base_price`` (the series' long-run price level in dollars).

    Raises:
        ParameterError: n_series is not a positive integer or seed is negative.
    """
    n_series, seed = _check(n_series, seed)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    variant = rng.choice(len(VARIANTS), size=n_series, p=_VARIANT_P)
    # A second printing shares the previous series' card when that one is a matching
    # first printing; a card therefore never holds the same variant twice.
    previous = np.concatenate([[-1], variant[:-1]])
    matches_previous = np.zeros(n_series, dtype=bool)
    for second, firsts in _SECOND_OF.items():
        matches_previous |= (variant == second) & np.isin(previous, firsts)
    is_second = matches_previous & (rng.random(n_series) < _P_SECOND_PRINTING)
    card_of_series = np.cumsum(~is_second) - 1
    n_cards = int(card_of_series[-1]) + 1

    is_first_edition = variant >= 3
    has_first_edition = np.bincount(card_of_series, weights=is_first_edition, minlength=n_cards) > 0
    has_reverse = np.bincount(card_of_series, weights=variant == 1, minlength=n_cards) > 0
    first_edition_sets = np.flatnonzero([s[3] for s in SETS])
    reverse_sets = np.flatnonzero([s[4] for s in SETS])
    set_u = rng.random(n_cards)
    set_of_card = np.where(
        has_first_edition, first_edition_sets[(set_u * len(first_edition_sets)).astype(int)],
        np.where(has_reverse, reverse_sets[(set_u * len(reverse_sets)).astype(int)],
                 (set_u * len(SETS)).astype(int)))
    number_of_card = _collector_numbers(rng, set_of_card)
    pokemon_of_card = rng.integers(0, len(POKEMON), n_cards)

    card_log10_price = _split_normal_log10_price(rng, n_cards)
    offset_mean = np.zeros(n_series)
    offset_sd = np.zeros(n_series)
    for name, (mean, sd) in _SECOND_PRINTING_LOG10.items():
        this = is_second & (VARIANTS[variant] == name)
        offset_mean[this], offset_sd[this] = mean, sd
    offset = offset_mean + offset_sd * rng.standard_normal(n_series)
    log10_price = np.maximum(card_log10_price[card_of_series] + offset, _LOG10_FLOOR)

    price_rank = pd.Series(card_log10_price).rank(pct=True).to_numpy()
    band = np.searchsorted([b[0] for b in _RARITY_BANDS], price_rank, side="left")
    is_sv_era = set_of_card >= _FIRST_SV_SET
    rarity = np.where(is_sv_era, np.array([b[1] for b in _RARITY_BANDS])[band],
                      np.array([b[3] for b in _RARITY_BANDS])[band])
    suffix = np.where(is_sv_era, np.array([b[2] for b in _RARITY_BANDS])[band], "")
    names = np.char.add(np.array(POKEMON)[pokemon_of_card], suffix)
    set_ids = np.array([s[0] for s in SETS])[set_of_card]
    numbers = number_of_card.astype(str)
    card_ids = np.char.add(np.char.add(set_ids, "-"), numbers)

    catalogue = pd.DataFrame({
        "card_id": card_ids[card_of_series],
        "variant": VARIANTS[variant],
        "currency": "USD",
        "name": names[card_of_series],
        "set_id": set_ids[card_of_series],
        "set_name": np.array([s[1] for s in SETS])[set_of_card][card_of_series],
        "number": numbers[card_of_series],
        "rarity": rarity[card_of_series],
        "base_price": np.round(10.0 ** log10_price, 2),
    })
    catalogue = catalogue.astype(dict.fromkeys(_STRING_COLUMNS, "string"))
    return catalogue.sort_values(["card_id", "variant"], kind="stable", ignore_index=True)


def _by_price(log_price: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A curve given at $0.10, $1 and $10, linear in log10 price between, flat outside."""
    t = np.clip(log_price * (1.0 / np.log(10.0)), -1.0, 1.0)
    return values[1] + t * np.where(t < 0.0, values[1] - values[0], values[2] - values[1])


def simulate_prices(n_series: int, n_days: int, seed: int, base_price: np.ndarray, *,
                    keep_from: int = 0) -> np.ndarray:
    """Observed prices for days ``keep_from .. n_days - 1`` counted from the epoch.

    The loop runs over days, each step vectorized across every series. Random numbers
    are drawn day-major in whole blocks of ``_BLOCK_DAYS`` days, so day ``d``'s draws,
    and therefore its prices, do not depend on ``n_days`` or ``keep_from``.

    Args:
        n_series: number of series; must match ``base_price``.
        n_days: days to simulate from the epoch (day 0) on.
        seed: the market's seed.
        base_price: each series' long-run price level in dollars (> 0).
        keep_from: first day to return; earlier days are simulated but not kept.

    Returns:
        A float array of shape (n_days - keep_from, n_series): prices rounded to cents
        (at least 0.01), NaN where the observation is missing.

    Raises:
        ParameterError: a size or seed out of range, or ``base_price`` not holding
            ``n_series`` positive prices.
    """
    out = None
    for first, block in simulate_blocks(n_series, n_days, seed, base_price, keep_from=keep_from):
        if out is None:
            out = np.empty((n_days - keep_from, n_series))
        out[first:first + len(block)] = block
    return out


@dataclass(frozen=True)
class MarketState:
    """The simulation as it stands at the start of ``day``, a block start: all later days depend on.

    Why: a day's prices depend on every day before it, so a daily collect of day 730
    would re-simulate 730 days (1.7 s at 45,000 series) to keep one. A state saved
    at a block start lets :func:`simulate_blocks` resume there and produce exactly the
    same prices: the series' four state arrays plus each random stream's position.
    """

    day: int
    latent: np.ndarray
    shown: np.ndarray
    spike: np.ndarray
    last_move: np.ndarray
    streams: tuple[dict, ...]   # each random stream's bit-generator state

    def fits(self, n_series: int) -> bool:
        """Whether this is a state of ``n_series`` series at a block start, with every random stream."""
        return (self.day % _BLOCK_DAYS == 0 and self.day >= 0 and len(self.streams) == _STREAMS
                and all(np.shape(a) == (n_series,) for a in (self.latent, self.shown, self.spike, self.last_move)))

    def to_bytes(self) -> bytes:
        """The state as one ``.npz`` file's bytes (the streams as JSON beside the arrays)."""
        buffer = io.BytesIO()
        np.savez(buffer, day=np.int64(self.day), latent=self.latent, shown=self.shown, spike=self.spike,
                 last_move=self.last_move, streams=np.array(json.dumps(list(self.streams))))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> MarketState:
        """Raises ValueError (or KeyError, OSError) on anything :meth:`to_bytes` did not write."""
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            return cls(int(arrays["day"]), *(np.array(arrays[k], dtype=np.float64)
                                              for k in ("latent", "shown", "spike", "last_move")),
                       tuple(json.loads(str(arrays["streams"]))))


class StateStore(Protocol):
    """Where a market's saved :class:`MarketState` s are kept (one market: one ``n_series``, ``seed``, epoch)."""

    def latest(self, on_or_before: int) -> MarketState | None:
        """The saved state of the latest day on or before ``on_or_before``, or None."""

    def keep(self, state: MarketState) -> None:
        """Save ``state``; never raises for want of space or permissions."""


def resume_day(keep_from: int) -> int:
    """The latest block start a simulation that keeps days from ``keep_from`` on may resume at."""
    return keep_from - keep_from % _BLOCK_DAYS


def simulate_blocks(n_series: int, n_days: int, seed: int, base_price: np.ndarray, *,
                    keep_from: int = 0, resume: MarketState | None = None,
                    on_block: Callable[[MarketState], None] | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """:func:`simulate_prices` a block of days at a time: (first day, prices of its days x series).

    The simulation holds one block of random draws and the series' state, so memory
    does not grow with the window. The blocks together are exactly
    :func:`simulate_prices`' array (same arguments, same raises), whether or not the
    simulation resumes from a saved state.

    Args:
        resume: a :class:`MarketState` of this market (same ``n_series``, ``seed`` and
            ``base_price``) at a block start on or before ``keep_from``; the days
            before it are not simulated again.
        on_block: called with the state at each block start the simulation reaches.
    """
    n_series, seed = _check(n_series, seed)
    if isinstance(n_days, bool) or not isinstance(n_days, (int, np.integer)) or n_days < 1:
        raise ParameterError(f"n_days must be a positive integer, got {n_days!r}")
    base_price = np.asarray(base_price, dtype=float)
    if base_price.shape != (n_series,) or not (base_price > 0).all():
        raise ParameterError(f"base_price must hold {n_series} positive prices, got shape {base_price.shape}")
    if not 0 <= keep_from < n_days:
        raise ParameterError(f"keep_from must be in [0, n_days={n_days}), got {keep_from}")
    streams = tuple(np.random.default_rng(s) for s in np.random.SeedSequence([seed, 2]).spawn(_STREAMS))
    trade_rng, size_rng, sign_rng, spike_rng, missing_rng = streams
    anchor = np.log(base_price)
    latent = anchor.copy()        # log price the last trade left
    shown = anchor.copy()         # log market price as published
    spike = np.zeros(n_series)    # log size of the current hype spike
    last_move = np.zeros(n_series)
    first_block = 0
    if resume is not None:
        if not resume.fits(n_series) or resume.day > keep_from:
            raise ParameterError(f"cannot resume the simulation from a state of day {resume.day} "
                                 f"({np.shape(resume.latent)[0]} series) to keep days from {keep_from} on")
        first_block = resume.day
        latent, shown, spike, last_move = (np.array(a, dtype=np.float64) for a in
                                           (resume.latent, resume.shown, resume.spike, resume.last_move))
        for stream, state in zip(streams, resume.streams, strict=True):
            stream.bit_generator.state = state
    decay = 0.5 ** (1.0 / _SPIKE_HALF_LIFE)
    log_move_size = np.log(_MOVE_SIZE)
    shape = (_BLOCK_DAYS, n_series)
    for block_start in range(first_block, n_days, _BLOCK_DAYS):
        if on_block is not None:
            on_block(MarketState(block_start, latent.copy(), shown.copy(), spike.copy(), last_move.copy(),
                                 tuple(stream.bit_generator.state for stream in streams)))
        trade_u = trade_rng.random(shape)
        size_u = size_rng.random(shape)
        goes_up = sign_rng.random(shape) < 0.5
        spike_u = spike_rng.random(shape)
        missing = missing_rng.random(shape) < _P_MISSING
        hit_day, hit_series = np.nonzero(spike_u < _P_SPIKE)
        # Given a hit (u < p), u / p is uniform on [0, 1): it also sets the spike's size.
        hit_size = np.log1p(_SPIKE_MIN + (_SPIKE_MAX - _SPIKE_MIN) * spike_u[hit_day, hit_series] / _P_SPIKE)
        hit_bounds = np.searchsorted(hit_day, np.arange(_BLOCK_DAYS + 1))
        block_days = min(_BLOCK_DAYS, n_days - block_start)
        first = max(block_start, keep_from)
        observed_log = np.empty((max(block_start + block_days - first, 0), n_series))
        for offset in range(block_days):
            hits = hit_series[hit_bounds[offset]:hit_bounds[offset + 1]]
            spike *= decay
            spike[hits] += hit_size[hit_bounds[offset]:hit_bounds[offset + 1]]
            p_trade = _by_price(latent, _P_TRADE) + (spike > _HYPE_LEVEL) * _HYPE_TRADE_BOOST
            traders = np.flatnonzero(trade_u[offset] < p_trade)
            before = latent[traders]
            size = (np.exp(np.interp(size_u[offset][traders], _MOVE_SIZE_P, log_move_size))
                    * _by_price(before, _SCALE))
            move = (np.where(goes_up[offset][traders], size, -size)
                    - _REVERSION * last_move[traders] - _ANCHOR_PULL * (before - anchor[traders]))
            after = np.maximum(before + move, _LOG_MIN_PRICE)
            latent[traders] = after
            last_move[traders] = after - before
            # The market price only updates on trade days or when a spike breaks out.
            shown[traders] = after + spike[traders]
            shown[hits] = latent[hits] + spike[hits]
            if block_start + offset >= first:
                observed_log[block_start + offset - first] = shown
        if len(observed_log):
            observed_log[missing[first - block_start:block_days]] = np.nan
            prices = np.exp(observed_log, out=observed_log)
            np.maximum(np.round(prices, 2, out=prices), 0.01, out=prices)   # NaN stays NaN
            yield first - keep_from, prices


def _timestamp(value, what: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ParameterError(f"{what} must be a date like '2026-01-05', got {value!r}") from exc
    if pd.isna(stamp):
        raise ParameterError(f"{what} must be a date like '2026-01-05', got {value!r}")
    return stamp.tz_localize(None).normalize() if stamp.tzinfo else stamp.normalize()


def _window(start, end, n_series: int, seed: int, epoch) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]:
    """(start, end, first simulated day) of a request, checked."""
    n_series, seed = _check(n_series, seed)
    start, end = _timestamp(start, "start"), _timestamp(end, "end")
    first_day = EPOCH if epoch is None else _timestamp(epoch, "epoch")
    if start < first_day:
        raise ParameterError(
            f"the demo market starts on {first_day.date()}; start {start.date()} is earlier. "
            f"Ask for days from {first_day.date()} on" + (", or pass epoch=start." if epoch is None else "."))
    if end < start:
        raise ParameterError(f"end {end.date()} is before start {start.date()}; swap them")
    return start, end, first_day


def demo_prices(
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    n_series: int = DEFAULT_N_SERIES,
    seed: int = DEFAULT_SEED,
    *,
    epoch: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Long-format observations (see :mod:`pokewatch.core.schema`) for every day in [start, end].

    Args:
        start, end: first and last day (inclusive).
        n_series: number of series in the market.
        seed: the market's seed.
        epoch: day the simulation starts. The default, the fixed 2020-01-01 epoch,
            makes a day's prices independent of the requested window. Benchmarks that
            need many series may pass ``epoch=start`` to skip the years before the
            window; the prices are then a different (equally realistic) market.

    Returns:
        Columns card_id, variant, date, market_price, currency, name, set_id,
        set_name, number, rarity, source ('demo') and category (empty), with the
        schema's dtypes, sorted by card_id, variant and date. Missing observations
        (about 2%) have no row.

    Raises:
        ParameterError: bad n_series or seed, unreadable dates, end before start, or
            start before the epoch.
    """
    start, end, first_day = _window(start, end, n_series, seed, epoch)
    catalogue = demo_catalogue(n_series, seed)
    window = simulate_prices(n_series, (end - first_day).days + 1, seed, catalogue["base_price"].to_numpy(),
                             keep_from=(start - first_day).days)
    return _long_frame(window, start, catalogue, categorical=False)


def demo_price_chunks(
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    n_series: int = DEFAULT_N_SERIES,
    seed: int = DEFAULT_SEED,
    *,
    epoch: str | pd.Timestamp | None = None,
    chunk_days: int = 31,
    states: StateStore | None = None,
) -> Iterator[pd.DataFrame]:
    """:func:`demo_prices` of [start, end] as consecutive windows of ``chunk_days`` days, from one simulation.

    Why: a 730-day backfill of 45,000 series is 32 million rows; a collect streams
    the chunks into the store instead of holding the whole window. The string
    columns are categoricals (one code per row into the catalogue's values), which
    is all a chunk costs beside its dates and prices.

    With ``states``, the simulation resumes from the latest saved state it may start
    from, and the state at the start of its last block is kept once every chunk has
    been yielded: tomorrow's collect then simulates at most one block. The prices are
    the same either way.

    Yields:
        Frames with :func:`demo_prices`' columns and rows (string columns as
        ``category`` dtype), each covering up to ``chunk_days`` consecutive days.

    Raises:
        ParameterError: as :func:`demo_prices`, or ``chunk_days`` below 1.
    """
    if isinstance(chunk_days, bool) or not isinstance(chunk_days, (int, np.integer)) or chunk_days < 1:
        raise ParameterError(f"chunk_days must be a positive integer, got {chunk_days!r}")
    start, end, first_day = _window(start, end, n_series, seed, epoch)
    catalogue = demo_catalogue(n_series, seed)
    keep_from = (start - first_day).days
    resume = states.latest(resume_day(keep_from)) if states is not None else None
    reached: list[MarketState] = []    # the state at the last block start simulated

    def remember(state: MarketState) -> None:
        reached[:] = [state]

    pending, pending_first = [], 0
    for first, block in simulate_blocks(n_series, (end - first_day).days + 1, seed,
                                        catalogue["base_price"].to_numpy(), keep_from=keep_from, resume=resume,
                                        on_block=None if states is None else remember):
        if not pending:
            pending_first = first
        pending.append(block)
        held = sum(len(b) for b in pending)
        while held >= chunk_days:
            days = np.concatenate(pending) if len(pending) > 1 else pending[0]
            yield _long_frame(days[:chunk_days], start + pd.Timedelta(days=pending_first), catalogue,
                              categorical=True)
            rest = days[chunk_days:]
            pending, pending_first, held = ([rest] if len(rest) else []), pending_first + chunk_days, len(rest)
    if pending:
        days = np.concatenate(pending) if len(pending) > 1 else pending[0]
        yield _long_frame(days, start + pd.Timedelta(days=pending_first), catalogue, categorical=True)
    if states is not None and reached:
        states.keep(reached[0])


def _long_frame(window: np.ndarray, start: pd.Timestamp, catalogue: pd.DataFrame, *,
                categorical: bool) -> pd.DataFrame:
    """The long table of a (days x series) price window starting on ``start``."""
    n_days_kept, n_series = window.shape
    # Series-major order: the catalogue is sorted by card_id and variant, so the rows
    # come out sorted by card_id, variant and date without sorting the long table.
    by_series = np.ascontiguousarray(window.T).ravel()
    observed = ~np.isnan(by_series)
    rows_per_series = observed.reshape(n_series, n_days_kept).sum(axis=1)
    day_ns = pd.Timestamp(start).as_unit("ns").value + np.arange(n_days_kept, dtype=np.int64) * _NS_PER_DAY
    columns = {
        "card_id": None, "variant": None,
        "date": np.tile(day_ns, n_series)[observed].view("datetime64[ns]"),
        "market_price": by_series[observed],
    }
    del by_series, observed
    series_of_row = np.repeat(np.arange(n_series, dtype=np.int32), rows_per_series)
    series = catalogue.assign(source="demo")
    for name in ["card_id", "variant", "currency", "name", "set_id", "set_name", "number", "rarity", "source"]:
        if categorical:
            codes, uniques = pd.factorize(series[name], sort=True)
            columns[name] = pd.Categorical.from_codes(codes[series_of_row].astype(np.int32, copy=False),
                                                      dtype=pd.CategoricalDtype(pd.Index(uniques, dtype="str")))
        else:
            values = pa.array(series[name].to_numpy(dtype=object), type=pa.large_string())
            columns[name] = pd.arrays.ArrowStringArray(
                pa.DictionaryArray.from_arrays(pa.array(series_of_row), values).dictionary_decode())
    columns["category"] = pd.Categorical.from_codes(np.full(len(series_of_row), -1, np.int8),
                                                    dtype=pd.CategoricalDtype(pd.Index([], dtype="str"))) \
        if categorical else pd.arrays.ArrowStringArray(pa.nulls(len(series_of_row), pa.large_string()))
    frame = pd.DataFrame(columns, copy=False)
    logger.debug("demo market: %d series x %d days -> %d rows", n_series, n_days_kept, len(frame))
    return frame
