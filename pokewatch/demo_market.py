"""A deterministic, offline Pokémon-card market for demos, tests and benchmarks.

Why simulate: a fresh clone must produce a meaningful run with no key and no
network, and a benchmark must be able to make 45,000 series on demand. The market
below is calibrated to stylized facts measured on 43,000 real TCGplayer Pokémon
price series over 36 days in 2025, so the backtest exercises the same regimes as
real data (mostly flat days, fat-tailed moves, cheap cards noisier than dear ones).

CALIBRATION_PLACEHOLDER

How: each series has a latent log price that only moves on "trade days" (so most
days are flat, as TCGplayer's market price only moves after sales). A trade's move
has a random sign and a size drawn from a fixed quantile table, scaled by how cheap
the card currently is, pulled slightly against the previous move (mean reversion)
and, very weakly, towards the series' long-run level. A rare hype spike adds a log
component that fades with a ten-day half-life; while it lasts the card trades more
often. Prices are rounded to cents (at least $0.01), then observations are masked
at random to be missing.

Determinism: every random draw comes from generators spawned from one
``SeedSequence(seed)``, drawn day-major in whole 64-day blocks from a fixed epoch
(2020-01-01), so a day's prices never depend on which window was requested:
collecting 2026-01-05 alone or as part of a 365-day backfill gives the same numbers
on every machine. Benchmarks that need many series may pass ``epoch=start`` to skip
the years before their window; their prices then differ from the default market's.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from pokewatch.errors import ParameterError

logger = logging.getLogger(__name__)

EPOCH = pd.Timestamp("2020-01-01")
DEFAULT_SEED = 20261128
DEFAULT_N_SERIES = 500

# ---- Calibrated parameters (the module docstring lists what they reproduce) ----
# Price levels: log10 of a card's base price is a split normal around the median; above
# the soft cap the excess is halved, so the top cards sit in the thousands.
_LOG10_MEDIAN = -0.12
_LOG10_SD_BELOW, _LOG10_SD_ABOVE = 0.55, 1.17
_LOG10_FLOOR = np.log10(0.05)
_LOG10_SOFT_CAP, _SOFT_CAP_SLOPE = 3.0, 0.5
# A second printing (Reverse Holofoil, 1st Edition) is priced off its card's first
# printing: log10 offset ~ Normal(mean, sd), by variant.
_SECOND_PRINTING_LOG10 = {"Reverse Holofoil": (0.15, 0.30), "1st Edition Holofoil": (0.45, 0.25),
                          "1st Edition Normal": (0.35, 0.25)}
_P_SECOND_PRINTING = 0.6   # chance a Reverse Holofoil / 1st Edition series shares the previous card

# Daily dynamics.
# Chance a series trades (its latent price moves) on a given day, by current price
# (log10 $, linear in between, flat outside): cheap cards sell more often.
_TRADE_LOG10_PRICE = np.array([-1.0, 0.0, 1.0, 2.0])
_P_TRADE = np.array([0.30, 0.28, 0.24, 0.22])
# Size of a trade's log move at volatility scale 1, as (cumulative probability, size)
# knots; sizes in between are interpolated log-linearly.
_MOVE_SIZE_P = np.array([0.0, 0.5, 0.9, 0.99, 1.0])
_MOVE_SIZE = np.array([0.002, 0.025, 0.10, 0.22, 0.40])
# Volatility scale by current price (log10 $, linear in between, flat outside).
_SCALE_LOG10_PRICE = np.array([-1.0, 0.0, 1.0, 2.0])
_SCALE = np.array([1.6, 1.3, 0.85, 0.75])
_REVERSION = 0.08          # pull of a move against the series' previous move
_ANCHOR_PULL = 0.01        # per trade, towards the series' long-run level
_P_SPIKE = 0.0003          # chance of a hype spike per series-day
_SPIKE_MIN, _SPIKE_MAX = 0.30, 1.50   # spike size: +30% to +150%
_SPIKE_HALF_LIFE = 10.0    # days
_HYPE_TRADE_BOOST = 0.5    # extra trade chance while a spike is above _HYPE_LEVEL
_HYPE_LEVEL = np.log(1.05)
_P_MISSING = 0.02          # share of series-days with no observed price
_BLOCK_DAYS = 64           # random draws are made in whole blocks of days from the epoch

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


def _check(n_series: int, seed: int) -> None:
    if isinstance(n_series, bool) or not isinstance(n_series, (int, np.integer)) or n_series < 1:
        raise ParameterError(f"n_series must be a positive integer (e.g. 500), got {n_series!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed must be a non-negative integer (e.g. {DEFAULT_SEED}), got {seed!r}")


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
    _check(n_series, seed)
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


def _by_price(latent_log_price: np.ndarray, knots: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.interp(latent_log_price * (1.0 / np.log(10.0)), knots, values)


def simulate_prices(n_series: int, n_days: int, seed: int, base_price: np.ndarray, *,
                    keep_from: int = 0) -> np.ndarray:
    """Observed prices for days ``keep_from .. n_days - 1`` counted from the epoch.

    The loop runs over days, each step vectorized across every series; random numbers
    are drawn per block of ``_BLOCK_DAYS`` days, always whole blocks, so day ``d``'s
    draws do not depend on ``n_days``.

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
        ParameterError: sizes that do not match or are out of range.
    """
    base_price = np.asarray(base_price, dtype=float)
    if base_price.shape != (n_series,) or not (base_price > 0).all():
        raise ParameterError(f"base_price must hold {n_series} positive prices, got shape {base_price.shape}")
    if not 0 <= keep_from < n_days:
        raise ParameterError(f"keep_from must be in [0, n_days={n_days}), got {keep_from}")
    trade_rng, size_rng, sign_rng, spike_rng, missing_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, 2]).spawn(5))
    anchor = np.log(base_price)
    latent = anchor.copy()
    shown = anchor.copy()
    spike = np.zeros(n_series)
    last_move = np.zeros(n_series)
    decay = 0.5 ** (1.0 / _SPIKE_HALF_LIFE)
    log_move_size = np.log(_MOVE_SIZE)
    observed_log = np.empty((n_days - keep_from, n_series))
    for block_start in range(0, n_days, _BLOCK_DAYS):
        shape = (_BLOCK_DAYS, n_series)
        trade_u = trade_rng.random(shape)
        signed_size = np.exp(np.interp(size_rng.random(shape), _MOVE_SIZE_P, log_move_size))
        signed_size[sign_rng.random(shape) < 0.5] *= -1.0
        spike_u = spike_rng.random(shape)
        # Given a hit (u < p), u / p is uniform on [0, 1): it also sets the spike's size.
        spike_jump = np.where(spike_u < _P_SPIKE,
                              np.log1p(_SPIKE_MIN + (_SPIKE_MAX - _SPIKE_MIN) * spike_u / _P_SPIKE), 0.0)
        missing = missing_rng.random(shape) < _P_MISSING
        for offset in range(min(_BLOCK_DAYS, n_days - block_start)):
            spike = spike * decay + spike_jump[offset]
            p_trade = (_by_price(latent, _TRADE_LOG10_PRICE, _P_TRADE)
                       + np.where(spike > _HYPE_LEVEL, _HYPE_TRADE_BOOST, 0.0))
            trades = trade_u[offset] < p_trade
            move = (signed_size[offset] * _by_price(latent, _SCALE_LOG10_PRICE, _SCALE)
                    - _REVERSION * last_move - _ANCHOR_PULL * (latent - anchor))
            move = np.where(trades, move, 0.0)
            latent += move
            last_move = np.where(trades, move, last_move)
            # The market price only updates on trade days or when a spike breaks out.
            shown = np.where(trades | (spike_jump[offset] > 0), latent + spike, shown)
            day = block_start + offset
            if day >= keep_from:
                observed_log[day - keep_from] = np.where(missing[offset], np.nan, shown)
    prices = np.exp(observed_log, out=observed_log)
    np.maximum(np.round(prices, 2, out=prices), 0.01, out=prices)   # NaN stays NaN
    return prices


def _timestamp(value, what: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ParameterError(f"{what} must be a date like '2026-01-05', got {value!r}") from exc
    if pd.isna(stamp):
        raise ParameterError(f"{what} must be a date like '2026-01-05', got {value!r}")
    return stamp.tz_localize(None).normalize() if stamp.tzinfo else stamp.normalize()


def demo_prices(
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    n_series: int = DEFAULT_N_SERIES,
    seed: int = DEFAULT_SEED,
    *,
    epoch: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Long-format observations (see :mod:`pokewatch.schema`) for every day in [start, end].

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
    _check(n_series, seed)
    start, end = _timestamp(start, "start"), _timestamp(end, "end")
    first_day = EPOCH if epoch is None else _timestamp(epoch, "epoch")
    if start < first_day:
        raise ParameterError(
            f"the demo market starts on {first_day.date()}; start {start.date()} is earlier. "
            f"Ask for days from {first_day.date()} on" + (", or pass epoch=start." if epoch is None else "."))
    if end < start:
        raise ParameterError(f"end {end.date()} is before start {start.date()}; swap them")
    catalogue = demo_catalogue(n_series, seed)
    n_days = (end - first_day).days + 1
    keep_from = (start - first_day).days
    window = simulate_prices(n_series, n_days, seed, catalogue["base_price"].to_numpy(),
                             keep_from=keep_from)
    # Series-major order: the catalogue is sorted by card_id and variant, so the rows
    # come out sorted by card_id, variant and date without sorting the long table.
    observed = ~np.isnan(window.T)
    counts = observed.sum(axis=1)
    series_of_row = np.repeat(np.arange(n_series, dtype=np.int32), counts)
    dates = pd.date_range(start, end, freq="D").to_numpy().astype("datetime64[ns]")
    series = catalogue.drop(columns="base_price").assign(source="demo", category=pd.NA)
    series = series.astype({"source": "string", "category": "string"})
    columns = {"card_id": None, "variant": None,
               "date": np.broadcast_to(dates, observed.shape)[observed],
               "market_price": window.T[observed]}
    for name in ["card_id", "variant", "currency", "name", "set_id", "set_name", "number", "rarity",
                 "source", "category"]:
        columns[name] = series[name].array.take(series_of_row)
    frame = pd.DataFrame(columns, copy=False)
    logger.debug("demo market: %d series x %d days -> %d rows", n_series, len(dates), len(frame))
    return frame
