import pandas as pd

from pokewatch.analysis.summary import direction_table, kpi_table, plain_summary, top_candidates


def test_top_candidates_put_flags_first_then_the_nearest_to_a_threshold():
    today = pd.DataFrame({
        "card_id": ["a", "b", "c", "d"], "market_price": [10.0, 10.0, 0.5, 10.0],
        "deviation": [-0.12, 0.09, -0.5, 0.01], "signal": ["BUY", "HOLD", "HOLD", "HOLD"],
    })
    assert top_candidates(today, min_price=1.0)["card_id"].tolist() == ["a", "b", "d"]
    assert top_candidates(today, min_price=1.0, n=1)["card_id"].tolist() == ["a"]


def test_kpi_table_formats_missing_values_as_na():
    table = kpi_table({"buy_lift": float("nan"), "buy_precision": 0.25})
    assert table.loc["BUY lift", "value"] == "n/a" and table.loc["BUY precision", "value"] == "25.0%"


def test_the_summary_leads_with_the_out_of_sample_record_and_never_says_nan():
    today = pd.DataFrame({"signal": ["SELL", "HOLD"], "stale": [False, True]})
    metrics = {"track_record": {"horizon_days": 7, "target_return": 0.05, "first_flag_date": "2026-11-01",
                                "last_flag_date": "2026-11-21",
                                "SELL": {"flags": 1, "precision": 1.0, "wrong_way_rate": 0.0}},
               "kpis": {"mape_fair": float("nan"), "mape_naive": 0.01}}
    text = plain_summary(metrics, today, {"completeness": float("nan"), "validation": {"rows_rejected": 2}})
    assert text.startswith("Today 0 card(s) are flagged BUY and 1 SELL out of 2 tracked (1 with a price too old")
    assert ("Of 1 SELL flag from 2026-11-01 to 2026-11-21, 100% was followed by a fall of 5% or more "
            "7 days later") in text
    assert "nan" not in text.lower() and "MAPE" not in text and "2 row(s) rejected" in text


def test_with_nothing_scored_the_summary_says_so_instead_of_figures():
    today = pd.DataFrame({"signal": ["HOLD"]})
    metrics = {"track_record": {"note": "no training day in the window had flags with known outcomes to learn from "
                                        "yet", "SELL": {"flags": 0, "precision": None}}}
    text = plain_summary(metrics, today)
    assert "No flag could be scored out of sample yet" in text and "%" not in text


def test_the_direction_table_shows_intervals_and_n_a_for_what_is_missing():
    table = direction_table({"SELL": {"flags": 10, "precision": 0.5, "wrong_way_rate": 0.1, "base_rate": 0.05,
                                      "lift": 10.0, "lift_low": 6.0, "lift_high": 14.0}})
    assert table.loc["SELL", "lift, 95% interval"] == "6.00x to 14.00x"
    assert table.loc["BUY", "precision"] == "n/a"
