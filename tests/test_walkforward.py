"""The track record: each day's flags come only from what was known that day."""
import json

import numpy as np
import pandas as pd
import pytest

from pokewatch.analysis import summary
from pokewatch.core import training, walkforward
from pokewatch.core.frame import PriceFrame
from pokewatch.core.model import FairValueModel
from pokewatch.core.rules import Rule
from pokewatch.core.signals import compute_signals
from tests.market_fixtures import market

END = "2026-04-30"
CUT = "2026-04-02"


def replay(history: pd.DataFrame, end: str) -> walkforward.TrackRecord:
    pf = PriceFrame.from_history(history[history["date"] <= end])
    last = pd.Timestamp(end) - pd.Timedelta(days=7)
    selections = training.select_many(pf, walkforward.training_dates("2026-01-01", last))
    return walkforward.track_record(pf, selections, first_day="2026-01-01", last_day=last)


@pytest.fixture(scope="module")
def history():
    # thin cards' spikes revert until day 60, then persist: what was right early is wrong later
    return market(days=120, persist_from=60)


def test_the_track_record_of_early_days_is_the_same_with_and_without_later_days(history):
    full, cut = replay(history, END), replay(history, CUT)
    early = full.rows[full.rows["date"] <= pd.Timestamp(CUT) - pd.Timedelta(days=7)]
    pd.testing.assert_frame_equal(early.reset_index(drop=True), cut.rows.reset_index(drop=True))
    assert len(cut.rows) > 0


def test_knowing_the_later_days_would_have_changed_the_early_flags(history):
    # The in-sample way: the rule chosen at the end applied to every day. It differs from what each
    # day's own training day chose, so a backtest of it would not be a track record.
    full = replay(history, END)
    final = training.select(PriceFrame.from_history(history), "2026-04-27").rule
    in_sample = compute_signals(history, final)
    in_sample = in_sample[(in_sample["signal"] != "HOLD") & (in_sample["date"] <= "2026-03-01")]
    walk = full.rows[full.rows["date"] <= "2026-03-01"]
    assert set(zip(walk["card_id"], walk["date"])) != set(zip(in_sample["card_id"], in_sample["date"]))


def test_each_flag_names_the_training_day_before_it(history):
    rows = replay(history, END).rows
    trained = pd.to_datetime(rows["model_trained_through"])
    assert (trained < rows["date"]).all()
    assert ((rows["date"] - trained).dt.days <= 7).all()
    assert list(rows.columns) == walkforward.TRACK_COLUMNS
    assert set(rows["outcome"]) <= {"right", "wrong", "flat"}


def test_figures_are_recomputed_exactly_by_plain_pandas(history):
    record = replay(history, END)
    metrics = json.loads(json.dumps(walkforward.run_metrics(
        END, FairValueModel(Rule()), "test", record), default=str))
    rows, figures = record.rows, metrics["track_record"]
    pf_rows = history.sort_values(["card_id", "date"]).assign(
        fwd=lambda f: f.groupby("card_id")["market_price"].shift(-7) / f["market_price"] - 1,
        first=lambda f: f.groupby("card_id").cumcount() == 0)
    window = pf_rows[(pf_rows["date"] >= figures["scored_from"]) & (pf_rows["date"] <= figures["scored_to"])
                     & pf_rows["fwd"].notna() & ~pf_rows["first"] & (pf_rows["market_price"] >= 1.0)]
    for kind, good in (("SELL", window["fwd"] <= -0.05), ("BUY", window["fwd"] >= 0.05)):
        flagged = rows[rows["signal"] == kind]
        if not len(flagged):
            continue
        precision = (flagged["outcome"] == "right").mean()
        assert figures[kind]["flags"] == len(flagged)
        assert figures[kind]["precision"] == precision
        assert figures[kind]["wrong_way_rate"] == (flagged["outcome"] == "wrong").mean()
        assert figures[kind]["base_rate"] == good.mean()
        assert figures[kind]["lift"] == precision / good.mean()
        assert figures[kind]["lift_low"] < figures[kind]["lift"] < figures[kind]["lift_high"]


def test_nothing_scorable_is_said_in_words_and_publishes_no_figures():
    history = market(days=12)
    record = replay(history, "2026-01-12")
    assert not record.scored and record.rows.empty
    assert record.figures["SELL"]["precision"] is None and record.figures["note"]
    sentence = summary.record_sentence(record.figures, "SELL")
    assert sentence is None


def test_the_track_record_sentence_says_exactly_h_days_later(history):
    text = summary.record_sentence(replay(history, END).figures, "SELL")
    assert "7 days later" in text and "within" not in text and "nan" not in text.lower()
    assert text.startswith("Of ") and "SELL flag" in text


def test_weeks_share_one_pass_per_fair_value_method(history):
    pf = PriceFrame.from_history(history)
    selections = training.select_many(pf, walkforward.training_dates("2026-01-01", "2026-04-23"))
    fair, codes, which = walkforward.assemble(pf, selections)
    for k, selection in enumerate(selections):
        rows = which == k
        if not rows.any():
            continue
        own = compute_signals(pf, selection.rule)
        assert np.array_equal(codes[rows], own["signal"].cat.codes.to_numpy()[rows])
        assert np.allclose(fair[rows], own["fair_value"].to_numpy()[rows], equal_nan=True)
    assert np.isnan(fair[which == -1]).all()
