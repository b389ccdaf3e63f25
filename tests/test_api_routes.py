"""The API's routes on a small demo run: answers, and the 404/422/503 failure modes."""
from __future__ import annotations

import pytest
from api_fixtures import KEY, demo_model, make_client, publish_run, settings, some_card

from pokewatch.api.app import create_app

AUTH = {"X-API-Key": KEY}


@pytest.fixture
def runs_root(tmp_path):
    publish_run(tmp_path)
    return tmp_path


@pytest.fixture
def client(runs_root):
    app = create_app(settings(runs_root, rate_limit_per_minute=100_000, rate_limit_burst=10_000))
    with make_client(app) as client:
        yield client


def test_health_reports_the_served_run_without_a_key(client):
    answer = client.get("/health")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ok"
    assert body["run_date"] == "2026-11-28"
    assert body["series"] == len(demo_model().series)
    assert body["cards"] == demo_model().series["card_id"].nunique()
    assert isinstance(body["data_freshness_days"], int)


def test_health_is_503_with_a_clear_body_before_the_first_run(tmp_path):
    with make_client(create_app(settings(tmp_path))) as client:
        answer = client.get("/health")
        assert answer.status_code == 503
        assert answer.json()["status"] == "unavailable"
        assert "no good run yet" in answer.json()["detail"]
        assert client.get("/fair_price", params={"card_id": "x"}, headers=AUTH).status_code == 503


def test_the_first_good_run_is_picked_up_once_it_is_published(tmp_path, monkeypatch):
    monkeypatch.setattr("pokewatch.api.model_holder.EMPTY_RETRY_SECONDS", 0.0)
    with make_client(create_app(settings(tmp_path))) as client:
        assert client.get("/health").status_code == 503
        publish_run(tmp_path)
        assert client.get("/health").status_code == 200


def test_fair_price_get_and_post_agree_with_the_model(client):
    card = some_card()
    query = {"card_id": card["card_id"], "variant": card["variant"]}
    got = client.get("/fair_price", params=query, headers=AUTH)
    posted = client.post("/fair_price", json=query, headers=AUTH)
    assert got.status_code == posted.status_code == 200
    assert got.json() == posted.json()
    body = got.json()
    assert body["market_price"] == pytest.approx(card["market_price"])
    assert body["fair_price"] == pytest.approx(card["fair_value"])
    assert body["signal"] == card["signal"]
    assert {"date", "deviation", "currency", "run_date"} <= body.keys()


def test_fair_price_of_an_earlier_day(client):
    card = some_card()
    answer = client.get("/fair_price", params={"card_id": card["card_id"], "date": "2026-11-20"},
                        headers=AUTH)
    assert answer.status_code == 200
    assert answer.json()["date"] <= "2026-11-20"


def test_unknown_card_is_404_with_the_models_helpful_message(client):
    answer = client.get("/fair_price", params={"card_id": "sv3pt5-999"}, headers=AUTH)
    assert answer.status_code == 404
    body = answer.json()
    assert body["error"] == "unknown_card"
    assert "'sv3pt5-999' is not in the model" in body["detail"]
    assert "known cards include" in body["detail"]


@pytest.mark.parametrize("date", ["2026-13-01", "yesterday", "2026-02-30"])
def test_a_malformed_date_is_422(client, date):
    answer = client.get("/fair_price", params={"card_id": some_card()["card_id"], "date": date},
                        headers=AUTH)
    assert answer.status_code == 422
    assert answer.json()["error"] == "invalid_request"
    assert "'date'" in answer.json()["detail"]


def test_a_well_formed_date_outside_the_model_is_404_saying_which_days_it_has(client):
    answer = client.post("/fair_price", json={"card_id": some_card()["card_id"], "date": "2020-01-01"},
                         headers=AUTH)
    assert answer.status_code == 404
    assert answer.json()["error"] == "unknown_date"
    assert "outside this model's days" in answer.json()["detail"]
    assert client.get("/signals", params={"date": "2020-01-01"}, headers=AUTH).status_code == 404


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2", b"\xff\xfe", b""])
def test_malformed_json_is_422_and_never_a_stack_trace(client, body):
    answer = client.post("/fair_price", content=body,
                         headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status_code == 422
    assert "Traceback" not in answer.text
    assert answer.json()["error"] == "invalid_request"


def test_unknown_fields_in_the_body_are_refused(client):
    answer = client.post("/fair_price", json={"card_id": "x", "cardid": "y"}, headers=AUTH)
    assert answer.status_code == 422


def test_an_unexpected_error_is_a_generic_500_with_the_request_id(client, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(client.app.state.holder.current.model, "predict", explode)
    answer = client.get("/fair_price", params={"card_id": "x"},
                        headers={**AUTH, "X-Request-ID": "trace-me-1"})
    assert answer.status_code == 500
    assert answer.json()["error"] == "internal_error"
    assert answer.json()["request_id"] == "trace-me-1"
    assert "secret internals" not in answer.text and "Traceback" not in answer.text


def test_cards_are_paged(client):
    first = client.get("/cards", params={"page_size": 7}, headers=AUTH).json()
    second = client.get("/cards", params={"page_size": 7, "page": 2}, headers=AUTH).json()
    assert first["total"] == len(demo_model().series)
    assert first["pages"] == -(-first["total"] // 7)
    assert len(first["cards"]) == 7
    assert {"card_id", "name", "set_name", "variant", "category"} <= first["cards"][0].keys()
    assert not {c["card_id"] + c["variant"] for c in first["cards"]} & {
        c["card_id"] + c["variant"] for c in second["cards"]}
    beyond = client.get("/cards", params={"page": 10_000}, headers=AUTH).json()
    assert beyond["cards"] == []


def test_signals_are_the_days_flags_strongest_first(client):
    body = client.get("/signals", params={"page_size": 500}, headers=AUTH).json()
    flags = body["signals"]
    assert flags, "the demo run should flag a few cards"
    assert {f["signal"] for f in flags} <= {"BUY", "SELL"}
    sizes = [abs(f["deviation"]) for f in flags]
    assert sizes == sorted(sizes, reverse=True)
    buys = client.get("/signals", params={"signal": "BUY", "page_size": 500}, headers=AUTH).json()
    assert all(f["signal"] == "BUY" for f in buys["signals"])
    assert [f["deviation"] for f in buys["signals"]] == sorted(f["deviation"] for f in buys["signals"])


def test_signals_filter_by_price_and_category(client):
    flags = client.get("/signals", params={"page_size": 500}, headers=AUTH).json()["signals"]
    cutoff = sorted(f["market_price"] for f in flags)[len(flags) // 2]
    dear = client.get("/signals", params={"min_price": cutoff, "page_size": 500}, headers=AUTH).json()
    assert all(f["market_price"] >= cutoff for f in dear["signals"])
    assert dear["total"] == sum(f["market_price"] >= cutoff for f in flags)
    grails = client.get("/signals", params={"category": "grail", "page_size": 500}, headers=AUTH).json()
    assert all(f["category"] == "grail" for f in grails["signals"])
    assert client.get("/signals", params={"category": "no-such-category"}, headers=AUTH).status_code == 422


@pytest.mark.parametrize("query", [{"signal": "HOLDING"}, {"min_price": "-1"}, {"min_price": "nan"},
                                   {"page": "0"}, {"page_size": "501"}, {"sigal": "BUY"}])
def test_bad_signal_queries_are_422(client, query):
    assert client.get("/signals", params=query, headers=AUTH).status_code == 422


def test_metrics_count_requests_by_route_and_status(client):
    client.get("/fair_price", params={"card_id": "sv3pt5-999"}, headers=AUTH)
    client.get("/fair_price", params={"card_id": "sv3pt5-999"})
    text = client.get("/metrics").text
    assert 'pokewatch_http_requests_total{method="GET",route="/fair_price",status="404"} 1.0' in text
    assert 'pokewatch_http_requests_total{method="GET",route="/fair_price",status="401"} 1.0' in text
    assert "pokewatch_http_request_duration_seconds_bucket" in text
    assert "pokewatch_model_series" in text


def test_an_unknown_query_parameter_is_422_naming_the_ones_the_route_takes(client):
    answer = client.get("/signals", params={"sigal": "BUY"}, headers=AUTH)
    assert answer.status_code == 422
    assert "unknown query parameter(s) 'sigal'" in answer.json()["detail"]
    assert "signal" in answer.json()["detail"]


def test_a_repeated_query_parameter_is_422(client):
    answer = client.get("/signals?signal=BUY&signal=SELL", headers=AUTH)
    assert answer.status_code == 422
    assert "'signal' given more than once" in answer.json()["detail"]


def test_a_wrong_method_lists_every_allowed_one(client):
    answer = client.put("/fair_price", headers=AUTH)
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, POST"


def test_a_body_that_is_not_utf8_is_422(client):
    answer = client.post("/fair_price", content=b"\xff", headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status_code == 422
    assert answer.json()["error"] == "invalid_request"


def test_unknown_routes_need_a_key_and_then_are_404(client):
    assert client.get("/admin").status_code == 401
    answer = client.get("/admin", headers=AUTH)
    assert answer.status_code == 404
    assert answer.json()["error"] == "not_found"


def test_openapi_schema_declares_the_key_scheme(client):
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["ApiKey"]["name"] == "X-API-Key"
    assert schema["paths"]["/fair_price"]["get"]["security"] == [{"ApiKey": []}]
    assert "security" not in schema["paths"]["/health"]["get"]
