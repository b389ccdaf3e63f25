import pandas as pd

from pokewatch.summary import kpi_table, top_candidates


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
