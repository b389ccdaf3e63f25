import pytest

from pokewatch.demo_market import demo_prices
from pokewatch.training import DEFAULT_CANDIDATES, evaluate_candidates, train


@pytest.fixture(scope="module")
def history():
    return demo_prices("2026-05-01", "2026-11-28", n_series=150)


def test_candidates_are_ranked_best_score_first(history):
    table = evaluate_candidates(history, DEFAULT_CANDIDATES[:4], min_flags=5)
    scores = table["score"].dropna().tolist()
    assert scores == sorted(scores, reverse=True)
    assert set(table["method"]) == {"rolling_mean"}


def test_auto_training_records_why_it_chose(history):
    model, table = train(history, "2026-11-28", candidates=DEFAULT_CANDIDATES[:3])
    assert len(table) == 3
    assert (model.method, model.window) == (table.iloc[0]["method"], table.iloc[0]["window"])
    assert model.selection["reason"].startswith(("chose", "no candidate"))
    assert model.trained_on == "2026-11-28" and model.fitted_through == "2026-11-28"


def test_a_fixed_method_skips_the_search(history):
    model, table = train(history, "2026-11-28", method="ewm", window=5)
    assert (model.method, model.window) == ("ewm", 5) and len(table) == 1
    assert "fixed by the run parameters" in model.selection["reason"]
