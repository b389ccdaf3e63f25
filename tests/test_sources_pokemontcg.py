"""pokemontcg.io end to end through pokewatch.run.collect.collect, against recorded /v2/cards pages."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from sources_server import RecordedServer, Reply, fast_http, fixture, isolate_data

from pokewatch.run.collect import collect
from pokewatch.errors import ParameterError, SourceError
from pokewatch.data.sources.pokemontcg import build_queries, parse_updated_at
from pokewatch.data.store import PriceStore
from pokewatch.data.watchlist import Selection
from pokewatch.run.folder import RunFolder

DAY = "2026-01-05"
SET_Q = {"q": "set.id:sv3pt5"}


@pytest.fixture
def server(monkeypatch, tmp_path):
    fast_http(monkeypatch)
    isolate_data(monkeypatch, tmp_path)
    monkeypatch.delenv("POKEMONTCG_API_KEY", raising=False)
    with RecordedServer() as srv:
        monkeypatch.setenv("POKEWATCH_POKEMONTCG_URL", srv.url)
        yield srv


@pytest.fixture
def store(tmp_path):
    return PriceStore(tmp_path / "store")


def serve_sv3pt5(server, page2: Reply | None = None) -> None:
    server.route("/v2/cards", Reply(200, fixture("pokemontcg/cards-sv3pt5-page1.json")), query={**SET_Q, "page": "1"})
    server.route("/v2/cards", page2 or Reply(200, fixture("pokemontcg/cards-sv3pt5-page2.json")),
                 query={**SET_Q, "page": "2"})


def run(store, tmp_path, min_completeness=0.9, **options):
    return collect("pokemontcg", DAY, DAY, tmp_path / "run", store=store, min_completeness=min_completeness,
                   options={"set": "sv3pt5", "page_size": 2, **options})


def notes(result, kind):
    return [n for n in result.fetch.notes if n["kind"] == kind]


def test_pages_become_usd_and_eur_series(server, store, tmp_path):
    serve_sv3pt5(server)

    result = run(store, tmp_path)

    assert [r.param("page") for r in server.requests] == ["1", "2"]
    assert server.requests[0].param("pageSize") == "2" and server.requests[0].param("q") == "set.id:sv3pt5"
    prices = result.prices.set_index(["card_id", "variant", "currency"])
    usd = prices.loc[("sv3pt5-199", "Holofoil", "USD")]
    assert (usd["market_price"], usd["high_price"], usd["set_name"]) == (245.1, 999.99, "151")
    eur = prices.loc[("sv3pt5-199", "Cardmarket", "EUR")]
    assert (eur["market_price"], eur["avg1"], eur["avg7"], eur["avg30"]) == (182.45, 179.0, 181.3, 190.12)
    assert ("sv3pt5-1", "Normal", "USD") in prices.index
    assert result.validation.counts == {"missing_price": 1}  # Bulbasaur's null reverseHolofoil market
    assert result.validation.rejected.iloc[0]["variant"] == "Reverse Holofoil"


def test_stale_prices_are_dropped_and_reported_not_stored_as_today(server, store, tmp_path):
    serve_sv3pt5(server)

    result = run(store, tmp_path)

    assert "sv3pt5-200" not in set(result.prices["card_id"])
    stale = {n["currency"]: n for n in notes(result, "stale_prices")}
    assert stale["USD"]["count"] == 2 and stale["EUR"]["count"] == 1
    assert stale["USD"]["oldest_updated_at"] == "2021-03-01" and stale["USD"]["updated_before"] == "2025-12-29"
    assert stale["USD"]["examples"] == ["sv3pt5-200"]
    assert "dropped" in stale["USD"]["action"]
    report = json.loads(RunFolder(tmp_path / "run").quality.read_text())
    assert any(n["kind"] == "stale_prices" for n in report["notes"])


def test_the_stale_threshold_is_an_option(server, store, tmp_path):
    serve_sv3pt5(server)

    result = run(store, tmp_path, stale_days="2000")

    assert "sv3pt5-200" in set(result.prices["card_id"])
    assert not notes(result, "stale_prices")


def test_unknown_variant_keys_are_kept_as_is_and_noted(server, store, tmp_path):
    serve_sv3pt5(server)

    result = run(store, tmp_path, stale_days=2000)

    assert ("sv3pt5-200", "unlimitedHolofoil") in set(zip(result.prices["card_id"], result.prices["variant"]))
    assert notes(result, "unknown_variants")[0]["variants"] == {"unlimitedHolofoil": 1}


def test_known_variant_keys_get_tcgplayer_names(server, store, tmp_path):
    server.route("/v2/cards", Reply(200, fixture("pokemontcg/cards-base1-4.json")))

    result = collect("pokemontcg", DAY, DAY, tmp_path / "run", store=store, options={"q": "id:base1-4"})

    assert sorted(result.prices["variant"]) == ["1st Edition Holofoil", "Holofoil"]


def test_a_429_is_retried_after_retry_after_then_succeeds(server, store, tmp_path):
    server.route("/v2/cards", Reply(200, fixture("pokemontcg/cards-sv3pt5-page1.json")), query={**SET_Q, "page": "1"})
    serve_sv3pt5(server, Reply(429, fixture("pokemontcg/error-429.json"), headers={"Retry-After": "0"}))
    server.route("/v2/cards", Reply(429, fixture("pokemontcg/error-429.json"), headers={"Retry-After": "0"}),
                 Reply(200, fixture("pokemontcg/cards-sv3pt5-page2.json")), query={**SET_Q, "page": "2"})

    result = run(store, tmp_path, min_completeness=1.0)

    assert len(server.requests) == 3 and result.fetch.failures == []


def test_a_persistent_429_lists_the_api_message_and_stops(server, store, tmp_path):
    serve_sv3pt5(server, Reply(429, fixture("pokemontcg/error-429.json"), headers={"Retry-After": "0"}))

    result = run(store, tmp_path, min_completeness=0.5)

    failure = result.fetch.failures[0]
    assert failure["item"] == "q='set.id:sv3pt5' page 2" and failure["status"] == 429
    assert "Rate limit exceeded. Get an API key" in failure["error"]
    assert len(result.prices) > 0  # page 1 is kept


def test_a_500_page_then_malformed_json_are_listed_failures(server, store, tmp_path):
    serve_sv3pt5(server, Reply(500, fixture("tcgcsv/error-502.html")))
    server.route("/v2/cards", Reply(200, b'{"data": [ {"id": "sv3pt5-9"'), query={"q": "set.id:sv3pt6", "page": "1"})

    with pytest.raises(SourceError, match="returned 33% of 3 item"):
        run(store, tmp_path, set="sv3pt5,sv3pt6")

    report = json.loads(RunFolder(tmp_path / "run").quality.read_text())
    errors = {f["item"]: f["error"] for f in report["fetch_failures"]}
    assert "HTTP 500" in errors["q='set.id:sv3pt5' page 2"]
    assert "malformed JSON" in errors["q='set.id:sv3pt6' page 1"]


def test_the_optional_api_key_is_sent_as_x_api_key_and_never_stored(server, store, tmp_path, monkeypatch):
    monkeypatch.setenv("POKEMONTCG_API_KEY", "ptcg-fake-key-0042")
    serve_sv3pt5(server)

    run(store, tmp_path)

    assert server.requests[0].headers["X-Api-Key"] == "ptcg-fake-key-0042"
    index = (tmp_path / "run" / "raw" / "pokemontcg" / "index.jsonl").read_text()
    assert '"X-Api-Key": "***"' in index and "ptcg-fake-key-0042" not in index


def test_a_watchlist_becomes_queries_with_categories(server, store, tmp_path):
    serve_sv3pt5(server)
    server.route("/v2/cards", Reply(200, fixture("pokemontcg/cards-base1-4.json")),
                 query={"q": "(id:base1-4 OR id:sv3pt5-199)"})
    watchlist = tmp_path / "watch.yaml"
    watchlist.write_text("items:\n  - set: sv3pt5\n    category: chase\n  - card: base1-4\n    category: grail\n"
                         "  - card: sv3pt5-199\n    category: grail\n")

    result = collect("pokemontcg", DAY, DAY, tmp_path / "run", store=store,
                     options={"watchlist": str(watchlist), "page_size": 2})

    categories = result.prices.drop_duplicates("card_id").set_index("card_id")["category"]
    assert categories.to_dict() == {"sv3pt5-199": "grail", "sv3pt5-1": "chase", "base1-4": "grail"}
    assert not result.prices.duplicated(["card_id", "variant", "currency"]).any()


def test_card_ids_are_batched_into_or_queries():
    queries = build_queries({}, Selection("pokemontcg", cards={"a-1": None, "b-2": "grail"}))
    assert queries == [("(id:a-1 OR id:b-2)", None)]
    assert build_queries({}, Selection("pokemontcg")) == [("", None)]


def test_a_backfill_is_refused_because_pokemontcg_has_no_history(server, store, tmp_path):
    with pytest.raises(ParameterError, match="pokemontcg.io serves only current prices"):
        collect("pokemontcg", "2026-01-01", DAY, tmp_path / "run", store=store)


def test_page_size_is_capped_at_250(server, store, tmp_path):
    with pytest.raises(ParameterError, match="option page_size must be in 1..250"):
        run(store, tmp_path, page_size=500)


def test_updated_at_is_read_as_a_day():
    assert parse_updated_at("2021/03/01") == pd.Timestamp("2021-03-01")
    assert parse_updated_at("2026/01/04 15:00:00") == pd.Timestamp("2026-01-04")
    assert parse_updated_at(None) is None and parse_updated_at("garbage") is None


def test_a_malformed_card_is_rejected_and_the_rest_of_the_day_is_stored(server, store, tmp_path):
    page = json.loads(fixture("pokemontcg/cards-sv3pt5-page1.json"))
    page["data"].append({"id": "sv3pt5-9", "name": "Broken", "tcgplayer": {"updatedAt": "2026/01/05",
                                                                          "prices": "$3.00"}})
    page["data"].append({"id": "sv3pt5-10", "name": "No date", "tcgplayer": {"prices": {"normal": {"market": 2.0}}}})
    page["totalCount"] = "lots"
    server.route("/v2/cards", Reply(200, page), query={**SET_Q, "page": "1"})

    result = run(store, tmp_path)

    assert result.validation.counts == {"missing_price": 1, "malformed_record": 1}
    rejected = result.validation.rejected.set_index("card_id")
    assert "tcgplayer.prices is a string" in rejected.loc["sv3pt5-9", "malformed"]
    assert {"sv3pt5-199", "sv3pt5-10"} <= set(result.prices["card_id"])  # no updatedAt: kept as current
    assert [r.param("page") for r in server.requests] == ["1"]  # an unreadable totalCount: one page
    assert notes(result, "page_count")[0]["detail"].startswith("totalCount is a string")
