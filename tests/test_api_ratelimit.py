"""The per-key token bucket (in memory): burst, refill, 429 and the X-RateLimit headers."""
from __future__ import annotations

import pytest
from api_fixtures import KEY, OTHER_KEY, make_client, publish_run, settings, some_card

from pokewatch.api.app import create_app
from pokewatch.api.ratelimit import MemoryBuckets


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def client(tmp_path, clock):
    publish_run(tmp_path)
    app = create_app(settings(tmp_path), clock=clock)   # the defaults: 60/min, burst 10
    with make_client(app) as client:
        yield client


def fair_price(client, key=KEY):
    return client.get("/fair_price", params={"card_id": some_card()["card_id"]}, headers={"X-API-Key": key})


def test_a_key_gets_its_burst_then_429_with_retry_after(client):
    answers = [fair_price(client) for _ in range(12)]
    assert [a.status_code for a in answers] == [200] * 10 + [429] * 2
    assert [int(a.headers["x-ratelimit-remaining"]) for a in answers[:10]] == list(range(9, -1, -1))
    refused = answers[10]
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["x-ratelimit-limit"] == "60"
    assert refused.json()["error"] == "rate_limited"
    assert "60 requests per minute" in refused.json()["detail"]


def test_the_limiter_admits_exactly_the_burst_plus_the_refill(client, clock):
    admitted = sum(fair_price(client).status_code == 200 for _ in range(30))
    clock.now += 3.5   # 3.5 tokens at 1 token/s: three whole requests
    admitted += sum(fair_price(client).status_code == 200 for _ in range(30))
    assert admitted == 10 + 3


def test_reset_says_when_the_bucket_is_full_again(client, clock):
    for _ in range(4):
        fair_price(client)
    assert fair_price(client).headers["x-ratelimit-reset"] == "5"
    clock.now += 60
    assert fair_price(client).headers["x-ratelimit-remaining"] == "9"


def test_keys_have_separate_buckets(client):
    for _ in range(10):
        fair_price(client, KEY)
    assert fair_price(client, KEY).status_code == 429
    assert fair_price(client, OTHER_KEY).status_code == 200


def test_rate_limit_headers_are_on_errors_too(client):
    for answer in (client.get("/fair_price", params={"card_id": "nope"}, headers={"X-API-Key": KEY}),
                   client.get("/fair_price", params={"date": "bad"}, headers={"X-API-Key": KEY}),
                   client.get("/fair_price")):
        assert answer.status_code in (401, 404, 422)
        assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= answer.headers.keys()


def test_guessing_keys_is_throttled_by_client_address(client):
    statuses = [client.get("/cards", headers={"X-API-Key": f"pwk_guess-{i:040d}"}).status_code
                for i in range(12)]
    assert statuses == [401] * 10 + [429] * 2
    assert fair_price(client).status_code == 200   # a real key has its own bucket


def test_health_and_metrics_are_never_limited(client):
    assert all(client.get("/health").status_code == 200 for _ in range(30))
    assert all(client.get("/metrics").status_code == 200 for _ in range(30))


def test_refused_requests_are_counted_in_metrics(client):
    for _ in range(11):
        fair_price(client)
    assert 'pokewatch_rate_limited_total{backend="memory"} 1.0' in client.get("/metrics").text


def test_memory_buckets_never_hold_more_than_the_burst():
    clock = FakeClock()
    buckets = MemoryBuckets(capacity=3, rate=1.0, clock=clock)
    clock.now += 1000
    assert [buckets.take("a")[0] for _ in range(4)] == [True, True, True, False]


def test_memory_buckets_are_bounded():
    buckets = MemoryBuckets(capacity=3, rate=1.0, clock=FakeClock(), max_buckets=100)
    for i in range(1000):
        buckets.take(f"anon:10.0.{i // 256}.{i % 256}")
    assert len(buckets._buckets) == 100
