"""PokemonPriceTracker API v2 end to end through pokewatch.run.collect.collect, against recorded /cards answers."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from sources_server import RecordedServer, Reply, fast_http, fixture, isolate_data

from pokewatch.run.collect import collect
from pokewatch.errors import ParameterError, SourceError
from pokewatch.data.sources.pokemonpricetracker import history_days
from pokewatch.data.store import PriceStore
from pokewatch.run.folder import RunFolder

KEY = "ppt-fake-key-7781"


@pytest.fixture
def server(monkeypatch, tmp_path):
    fast_http(monkeypatch)
    isolate_data(monkeypatch, tmp_path)
    monkeypatch.setenv("POKEMONPRICETRACKER_API_KEY", KEY)
    with RecordedServer() as srv:
        monkeypatch.setenv("POKEWATCH_PPT_URL", f"{srv.url}/api/v2")
        srv.route("/api/v2/cards", Reply(200, fixture("pokemonpricetracker/card-517045.json")),
                  query={"tcgPlayerId": "517045"})
        srv.route("/api/v2/cards", Reply(200, fixture("pokemonpricetracker/set-23237-offset0.json")),
                  query={"setId": "23237", "offset": "0"})
        srv.route("/api/v2/cards", Reply(200, fixture("pokemonpricetracker/set-23237-offset2.json")),
                  query={"setId": "23237", "offset": "2"})
        yield srv


@pytest.fixture
def store(tmp_path):
    return PriceStore(tmp_path / "store")


def test_a_single_card_backfills_its_near_mint_history(server, store, tmp_path):
    result = collect("pokemonpricetracker", "2026-01-02", "2026-01-05", tmp_path / "run", store=store,
                     options={"tcgplayer_id": "517045"})

    request = server.requests[0]
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.param("includeHistory") == "true" and int(request.param("days")) >= 4
    series = result.prices.sort_values("date")
    assert series["date"].dt.strftime("%Y-%m-%d").tolist() == ["2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05"]
    assert series["market_price"].tolist() == [241.5, 243.0, 244.2, 245.1]  # history, then today's price
    assert set(series["card_id"]) == {"517045"} and set(series["variant"]) == {"Holofoil"}
    assert set(series["condition"]) == {"Near Mint"} and set(series["currency"]) == {"USD"}
    assert store.dates("pokemonpricetracker")[0] == pd.Timestamp("2026-01-02")


def test_a_set_is_paged_by_has_more(server, store, tmp_path):
    result = collect("pokemonpricetracker", "2026-01-04", "2026-01-05", tmp_path / "run", store=store,
                     options={"set_id": "23237", "limit": 2})

    assert [r.param("offset") for r in server.requests] == ["0", "2"]
    assert server.requests[0].param("limit") == "2"
    observed = set(zip(result.prices["card_id"], result.prices["date"].dt.strftime("%m-%d")))
    assert observed == {("502550", "01-04"), ("502550", "01-05"), ("502552", "01-05")}
    assert set(result.prices["variant"]) == {"Normal"}  # no printing named: the default


def test_a_429_stops_at_once_and_lists_what_was_not_fetched(server, store, tmp_path):
    server.route("/api/v2/cards",
                 Reply(429, fixture("pokemonpricetracker/error-429.json"), headers={"Retry-After": "0"}),
                 query={"setId": "23237", "offset": "0"})

    with pytest.raises(SourceError, match="returned 33% of 3 item"):
        collect("pokemonpricetracker", "2026-01-05", "2026-01-05", tmp_path / "run", store=store,
                options={"tcgplayer_id": "517045", "set_id": "23237,24380"})

    assert len(server.requests) == 2  # 517045, then the 429: no retry, no set 24380
    report = json.loads(RunFolder(tmp_path / "run").quality.read_text())
    errors = {f["item"]: f["error"] for f in report["fetch_failures"]}
    assert "Daily API credit limit exceeded" in errors["setId=23237 offset 0"]
    assert errors["setId=24380 offset 0"].startswith("not fetched: the API answered 429 earlier")
    assert any(n["kind"] == "credits_exhausted" for n in report["notes"])


def test_a_missing_key_is_a_clear_error(server, store, tmp_path, monkeypatch):
    monkeypatch.delenv("POKEMONPRICETRACKER_API_KEY")

    with pytest.raises(SourceError, match="needs an API key: export POKEMONPRICETRACKER_API_KEY"):
        collect("pokemonpricetracker", "2026-01-05", "2026-01-05", tmp_path / "run", store=store,
                options={"tcgplayer_id": "517045"})
    assert server.requests == []


def test_a_rejected_key_is_a_clear_error(server, store, tmp_path):
    server.route("/api/v2/cards", Reply(401, fixture("pokemonpricetracker/error-401.json")),
                 query={"tcgPlayerId": "517045"})

    with pytest.raises(SourceError, match=r"POKEMONPRICETRACKER_API_KEY was rejected \(HTTP 401\): Invalid API key"):
        collect("pokemonpricetracker", "2026-01-05", "2026-01-05", tmp_path / "run", store=store,
                options={"tcgplayer_id": "517045"})


def test_nothing_to_fetch_is_a_parameter_error(server, store, tmp_path):
    with pytest.raises(ParameterError, match="pokemonpricetracker needs a watchlist"):
        collect("pokemonpricetracker", "2026-01-05", "2026-01-05", tmp_path / "run", store=store)


def test_a_watchlist_names_cards_and_sets_with_categories(server, store, tmp_path):
    watchlist = tmp_path / "watch.yaml"
    watchlist.write_text("items:\n  - card: {pokemonpricetracker: '517045'}\n    category: grail\n"
                         "  - set: {pokemonpricetracker: '23237'}\n    category: chase\n")

    result = collect("pokemonpricetracker", "2026-01-05", "2026-01-05", tmp_path / "run", store=store,
                     options={"watchlist": str(watchlist), "limit": 2})

    categories = result.prices.set_index("card_id")["category"].to_dict()
    assert categories == {"517045": "grail", "502550": "chase", "502552": "chase"}


def test_history_days_reach_back_from_today_to_the_first_day():
    assert history_days("2026-01-01", today="2026-01-05") == 5
    assert history_days("2026-01-05", today="2026-01-05") == 1


@pytest.mark.parametrize("answer, says", [
    ({"cards": []}, "'data' is null, not a list (top-level keys: cards)"),
    ({"data": "none today"}, "'data' is a string, not a list"),
    ([1, 2], "the answer is a list, not a JSON object with 'data'"),
], ids=["renamed-envelope", "data-is-text", "a-list"])
def test_an_answer_in_an_unexpected_shape_is_a_failure_not_zero_cards_at_100_percent(server, store, tmp_path,
                                                                                      answer, says):
    server.route("/api/v2/cards", Reply(200, answer), query={"setId": "99999", "offset": "0"})

    with pytest.raises(SourceError, match=r"returned 0% of 1 item"):
        collect("pokemonpricetracker", "2026-01-05", "2026-01-05", tmp_path / "run", store=store,
                options={"set_id": "99999"})

    report = json.loads(RunFolder(tmp_path / "run").quality.read_text())
    assert report["completeness"] == 0.0
    assert says in report["fetch_failures"][0]["error"]
    assert any(n["kind"] == "unexpected_response_shape" for n in report["notes"])


def test_one_malformed_card_in_a_set_is_rejected_and_the_others_stored(server, store, tmp_path):
    page = json.loads(fixture("pokemonpricetracker/set-23237-offset0.json"))
    page["data"].append({"tcgPlayerId": ["517999"], "name": "Broken", "prices": "n/a"})
    page["metadata"]["hasMore"] = False
    server.route("/api/v2/cards", Reply(200, page), query={"setId": "23237", "offset": "0"})

    result = collect("pokemonpricetracker", "2026-01-05", "2026-01-05", tmp_path / "run", store=store,
                     options={"set_id": "23237"})

    assert result.validation.counts.get("malformed_record") == 1
    assert len(result.prices) > 0 and "Broken" not in set(result.prices["name"].dropna())
