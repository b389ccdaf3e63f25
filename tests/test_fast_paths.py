"""The fast paths give exactly what the general paths give.

The rule pass computes only the confirmations a rule demands (none for the default
rule), the track record scores every week's flags in one pass without per-row arrays,
and the model copies only each series' recent rows. Each is pinned here against the
general computation it replaces, bit for bit.
"""
import itertools

import numpy as np
import pandas as pd
import pytest

from pokewatch.core import backtest, kernels, rules, training, walkforward
from pokewatch.core.frame import PriceFrame
from pokewatch.core.model import FairValueModel
from pokewatch.core.rules import ACTIVITY_LEVELS, Filters, Rule
from tests.market_fixtures import market

CUTS = rules.thresholds()


def random_market(n_series: int = 300, longest: int = 120, seed: int = 1):
    """Prices, listing prices, days and bounds of random walks with flat stretches and gaps."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, longest, n_series)
    bounds = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    moves = rng.normal(0, 0.08, bounds[-1])
    moves[rng.random(bounds[-1]) < 0.3] = 0.0
    prices = np.empty(bounds[-1])
    days = np.empty(bounds[-1], np.int32)
    for s in range(n_series):
        lo, hi = bounds[s], bounds[s + 1]
        prices[lo:hi] = np.round(rng.uniform(0.3, 50) * np.exp(np.cumsum(moves[lo:hi])), 2)
        days[lo:hi] = 20_000 + np.sort(rng.choice(longest + 40, hi - lo, replace=False))
    prices = np.maximum(prices, 0.01)
    low = prices * rng.uniform(0.85, 1.1, len(prices))
    low[rng.random(len(prices)) < 0.1] = np.nan
    return prices, low, days, bounds


def full_patterns(prices, low, bounds, method, window, com):
    """Side and confirmation pattern of every row with every confirmation computed."""
    n = len(prices)
    fair, dev, side, pattern = np.empty(n), np.empty(n), np.empty(n, np.int8), np.empty(n, np.int64)
    buffer, moves = np.empty(window + 1), np.empty(n)
    for s in range(len(bounds) - 1):
        lo, hi = bounds[s], bounds[s + 1]
        kernels.series_rows(prices[lo:hi], low[lo:hi] if len(low) else low, method, window, com, *CUTS,
                            kernels.ALL_CONFIRMATIONS, buffer, moves, fair[lo:hi], dev[lo:hi], side[lo:hi],
                            pattern[lo:hi])
    return fair, dev, side, pattern


def codes_from_patterns(side, pattern, buy_mask, buy_level, sell_mask, sell_level):
    def passes(mask, level):
        return (mask >= 0) & ((pattern & mask) == mask) & ((pattern >> 4) >= level)
    codes = np.full(len(side), rules.HOLD, np.int8)
    codes[(side == rules.BUY) & passes(buy_mask, buy_level)] = rules.BUY
    codes[(side == rules.SELL) & passes(sell_mask, sell_level)] = rules.SELL
    return codes


DEMANDS = [(0, 0, 0, 0), (rules.OFF, 0, 0, 0), (0, 0, rules.OFF, 0), (rules.OFF, 0, rules.OFF, 0),
           (rules.LISTING, 0, rules.PERSISTENCE, 1), (15, 3, 15, 3), (rules.NO_JUMP, 0, rules.VOL_SCALED, 2),
           (0, 2, 9, 0)]


@pytest.mark.parametrize("with_low", [True, False])
@pytest.mark.parametrize("method,window", [(kernels.MEAN_PRIOR, 7), (kernels.MEAN_INCLUDING_TODAY, 3),
                                           (kernels.EWM_PRIOR, 7), (kernels.MEDIAN_PRIOR, 14)])
def test_a_rule_pass_computing_only_what_the_rule_demands_flags_exactly_the_same_rows(method, window, with_low):
    prices, low, _days, bounds = random_market()
    low = low if with_low else np.zeros(0)
    com = (window - 1) / 2
    fair, dev, side, pattern = full_patterns(prices, low, bounds, method, window, com)
    for demand in DEMANDS:
        got_fair, got_dev, got_codes = kernels.rule_rows(prices, low, bounds, method, window, com, *CUTS, *demand)
        assert np.array_equal(got_fair, fair, equal_nan=True) and np.array_equal(got_dev, dev, equal_nan=True)
        assert np.array_equal(got_codes, codes_from_patterns(side, pattern, *demand)), demand
    assert (codes_from_patterns(side, pattern, *DEMANDS[0]) != rules.HOLD).sum() > 100   # the data does flag


def test_the_rule_pass_without_deviations_writes_the_same_fair_values_and_codes():
    prices, low, _days, bounds = random_market()
    with_dev = kernels.rule_rows(prices, low, bounds, kernels.MEAN_PRIOR, 7, 3.0, *CUTS, 4, 1, 2, 3)
    without = kernels.rule_rows(prices, low, bounds, kernels.MEAN_PRIOR, 7, 3.0, *CUTS, 4, 1, 2, 3, with_dev=False)
    assert len(without[1]) == 0
    assert np.array_equal(with_dev[0], without[0], equal_nan=True) and np.array_equal(with_dev[2], without[2])


def test_a_pass_computes_what_a_kind_demands_and_nothing_for_a_kind_that_is_off():
    assert kernels.demands(0, 0) == 0 and kernels.demands(rules.OFF, 3) == 0
    assert kernels.demands(rules.LISTING, 0) | kernels.demands(rules.PERSISTENCE, 2) == \
        rules.LISTING | rules.PERSISTENCE | kernels.ACTIVITY


@pytest.fixture(scope="module")
def walk():
    history = market(days=120, persist_from=60)
    pf = PriceFrame.from_history(history)
    last = pd.Timestamp("2026-04-30") - pd.Timedelta(days=7)
    selections = training.select_many(pf, walkforward.training_dates("2026-01-01", last))
    # a second fair value in use, so the one pass walks two methods and switches between them by week
    selections[-2].rule = Rule("ewm", 3, sell=Filters(activity=ACTIVITY_LEVELS.index(0.5)))
    return pf, selections, last


def test_the_one_pass_track_record_equals_the_per_row_one(walk):
    pf, selections, last = walk
    one_pass = walkforward.track_record(pf, selections, first_day="2026-01-01", last_day=last)
    per_row = walkforward.track_record(pf, selections, first_day="2026-01-01", last_day=last, workers=2,
                                       engine="threading")
    assert one_pass.figures == per_row.figures and one_pass.kpis == per_row.kpis
    pd.testing.assert_frame_equal(one_pass.rows, per_row.rows)
    pd.testing.assert_frame_equal(one_pass.backtest.by_signal, per_row.backtest.by_signal)
    pd.testing.assert_frame_equal(one_pass.backtest.by_category(), per_row.backtest.by_category())
    assert one_pass.backtest.return_boxes == per_row.backtest.return_boxes
    assert one_pass.backtest.error_histogram == per_row.backtest.error_histogram
    flags = one_pass.figures["BUY"]["flags"] + one_pass.figures["SELL"]["flags"]
    assert one_pass.figures["SELL"]["flags"] > 0 and len(one_pass.rows) == flags


def test_the_one_pass_track_record_scores_what_the_per_row_arrays_score(walk):
    pf, selections, last = walk
    fair, codes, _which = walkforward.assemble(pf, selections)
    start = max(pd.Timestamp("2026-01-01"), pd.Timestamp(next(s.as_of for s in selections if s.learned)))
    result = backtest.backtest_arrays(pf, fair, codes, 7, 0.05, start, last)
    assert walkforward.track_record(pf, selections, first_day="2026-01-01", last_day=last).kpis == result.kpis


def test_the_error_histogram_counts_like_numpy_and_shows_the_kpis_mape(walk):
    pf, selections, last = walk
    fair, codes, _ = walkforward.assemble(pf, selections)
    result = backtest.backtest_arrays(pf, fair, codes, 7, 0.05)
    start_day, end_day, _ = backtest.scoring_window(pf.days, 7)
    _counts, _sums, _fwd, flags = kernels.backtest_partials(pf.prices, pf.days, fair, codes, pf.bounds, 7,
                                                            start_day, end_day, 1.0, 0.05, True)
    rows = np.flatnonzero(flags & kernels.ROW_FORECAST)
    errors = np.abs(fair[rows] - pf.prices[rows + 1]) / pf.prices[rows + 1]
    expected = np.histogram(np.minimum(errors, backtest.ERROR_BINS[-1]), backtest.ERROR_BINS)[0]
    assert result.error_histogram["fair"] == expected.tolist()
    assert result.error_histogram["mape_fair"] == result.kpis["mape_fair"]
    assert result.error_histogram["mape_fair"] == pytest.approx(errors.mean(), rel=1e-12)


def test_bins_follow_numpys_edges_including_the_closed_last_edge():
    edges = backtest.ERROR_BINS
    values = np.array([0.0, 0.01, 0.0099999, 0.25, 0.49, 0.5, 0.7, np.inf, np.nan, -0.1])
    clipped = np.minimum(values, edges[-1])
    ours = np.zeros(len(edges) - 1, np.int64)
    for v in clipped:
        b = kernels._bin(v, edges)
        if b >= 0:
            ours[b] += 1
    assert ours.tolist() == np.histogram(clipped, edges)[0].tolist()


@pytest.mark.parametrize("keep_days", [1, 5, 90])
def test_the_model_keeps_each_series_recent_rows_as_a_plain_pandas_pivot_would(keep_days):
    history = market(days=40, n_active=5, n_thin=5)
    history = history[~((history["card_id"] == "act-001") & (history["date"] > "2026-01-20"))]   # stopped early
    history = history.drop(index=history.sample(frac=0.2, random_state=1).index)                  # gaps
    model = FairValueModel(Rule("rolling_mean", 3), keep_days=keep_days).fit(history, through="2026-02-12")
    newest = history["date"].max()
    kept = history[history["date"] > newest - pd.Timedelta(days=keep_days)]
    grid = kept.pivot(index="card_id", columns="date", values="market_price")
    grid = grid.reindex(columns=pd.date_range(kept["date"].min(), "2026-02-12"))
    assert model.series["card_id"].tolist() == grid.index.tolist()
    assert model.dates.equals(grid.columns)
    assert np.array_equal(model.market, grid.to_numpy(), equal_nan=True)


def test_series_ranges_of_every_thread_count_give_the_same_tables(monkeypatch):
    monkeypatch.setattr(kernels, "_MIN_ROWS_PER_THREAD", 1)     # split even this small market
    prices, low, days, bounds = random_market(n_series=400)
    assert len(kernels.series_ranges(bounds, 3)) == 3
    tables = [kernels.track_record_pass(prices, low, days, bounds, np.array([0]), np.array([7]), np.array([3.0]),
                                        np.tile(np.array([1, 0, 0, 0, 0], np.int64), (200, 1))[None], 20_000,
                                        *CUTS, 7, 20_010, 20_150, 0.05, backtest.ERROR_BINS, threads=threads)
              for threads in (1, 3)]
    for a, b in itertools.combinations(tables, 2):
        assert all(np.array_equal(x, y, equal_nan=True) for x, y in zip(a, b))


def test_todays_signals_and_the_model_share_one_rule_pass_and_equal_the_direct_computation(monkeypatch):
    from pokewatch.core import parallel
    from pokewatch.run import steps
    from pokewatch.core.signals import compute_signals
    from pokewatch.data.store import PriceStore

    store = PriceStore.default()
    store.write_days("demo", market(days=60))
    key = steps.history_key("demo", "2026-03-01", store)
    rule = Rule("rolling_mean", 7, sell=Filters(activity=ACTIVITY_LEVELS.index(0.5), persistence=True))
    selection = training.Selection("2026-02-23", "2026-02-22", None, rule, "fixed for this test")
    passes = []
    rule_arrays = parallel.rule_arrays
    monkeypatch.setattr(parallel, "rule_arrays", lambda *a, **k: passes.append(k) or rule_arrays(*a, **k))
    steps._MEMO.clear()
    table = steps.signals_step(key, rule).value.table()
    model = steps.fitted_model(selection, key, "2026-03-01", steps.TrainingSpec())
    assert len(passes) == 1
    pf = store.load_frame("demo", "1970-01-01", "2026-03-01")
    direct = compute_signals(pf, rule)
    pd.testing.assert_frame_equal(table, direct)
    fitted = FairValueModel(rule).fit(pf, through="2026-03-01")
    assert np.array_equal(model.fair, fitted.fair, equal_nan=True) and np.array_equal(model.codes, fitted.codes)
    steps._MEMO.clear()
    alone = steps.fitted_model(selection, key, "2026-03-01", steps.TrainingSpec())    # the train notebook's way
    assert passes[-1].get("with_dev") in (None, False) and np.array_equal(alone.codes, model.codes)


def test_the_evaluate_notebook_reads_only_the_cards_it_draws_and_gets_the_same_rows_as_the_whole_table():
    from pokewatch.analysis import plots, portfolio
    from pokewatch.run import steps
    from pokewatch.data.store import PriceStore

    store = PriceStore.default()
    store.write_days("demo", market(days=40))
    store.write_days("demo", market(days=42).query("date >= '2026-02-10'"))    # a day segment on the base
    key = steps.history_key("demo", "2026-02-11", store)
    steps._MEMO.clear()
    history = steps.signals_step(key, Rule("rolling_mean", 7)).value
    pf = history.pf
    today = FairValueModel(Rule("rolling_mean", 7)).fit(pf, through=key.end).predict_all(key.end)
    cards = sorted(today["card_id"].astype(str).unique())[:2]
    mine = history.of_cards(cards)
    holdings = portfolio.parse_holdings(f"card_id,variant,quantity,purchase_price\n{cards[1]},"
                                        f"{today.loc[today['card_id'] == cards[1], 'variant'].iloc[0]},2,1.50\n")
    book = portfolio.build(holdings, history, today, key.end)
    figure = plots.top_cards(history, today, 0.10, 0.15, min_price=0.0, n=2)
    assert callable(pf._frame)                      # none of it built the 32M-row table at catalogue scale
    whole = history.table()
    pd.testing.assert_frame_equal(mine, whole[whole["card_id"].astype(str).isin(cards)])
    assert len(mine) and set(mine["card_id"].astype(str)) == set(cards)
    pd.testing.assert_frame_equal(book.value, portfolio.build(holdings, whole, today, key.end).value)
    pd.testing.assert_frame_equal(book.positions, portfolio.build(holdings, whole, today, key.end).positions)
    assert len(figure.axes) == len(plots.top_cards(whole, today, 0.10, 0.15, min_price=0.0, n=2).axes) == 2


def test_the_one_pass_track_record_keeps_the_rules_min_price_apart_from_the_scored_universe(walk):
    pf, selections, last = walk
    # the rules flag cards from $1; the record scores only rows from $10 (a narrower universe)
    one_pass = walkforward.track_record(pf, selections, first_day="2026-01-01", last_day=last, min_price=10.0)
    per_row = walkforward.track_record(pf, selections, first_day="2026-01-01", last_day=last, min_price=10.0,
                                       workers=2, engine="threading")
    assert one_pass.kpis == per_row.kpis and one_pass.figures == per_row.figures
    pd.testing.assert_frame_equal(one_pass.rows, per_row.rows)
    everything = walkforward.track_record(pf, selections, first_day="2026-01-01", last_day=last)
    assert one_pass.kpis["rows_scored"] < everything.kpis["rows_scored"]
