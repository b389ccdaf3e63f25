"""Per-key token buckets, in this process's memory or shared in Redis.

Each client key owns a bucket of ``burst`` tokens that refills continuously at
``per_minute / 60`` tokens a second. A request takes one token or, when the bucket
is empty, is refused with 429 and told (``Retry-After``) when the next token is due.
Starting full, a key that hammers the API for ``t`` seconds is therefore admitted
exactly ``burst + floor(t * per_minute / 60)`` times; ``scripts/load_test.py``
checks exactly that against a live server.

Two stores hold the buckets:

* :class:`MemoryBuckets`: a dict in the worker process. Right for one worker; with
  several workers each has its own buckets, so a key gets ``workers`` times its limit.
* :class:`RedisBuckets` (when ``REDIS_URL`` is set): one hash per bucket in Redis,
  updated by a Lua script so that read-refill-take-write is atomic across every
  worker and host, timed by Redis's own clock so hosts' clocks need not agree.

:class:`RateLimiter` picks the store and applies the Redis failure policy: while Redis
is unreachable it either falls back to the in-memory buckets (``open``, the default;
see :mod:`pokewatch.api.settings` for why) or refuses requests with 503 (``closed``).
It probes Redis again at most every ``REDIS_RETRY_SECONDS``, so an outage costs one
failed connection attempt per interval, not one per request, and logs one warning
when Redis goes away and one line when it is back.
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from redis.exceptions import RedisError

from pokewatch.api.settings import ApiSettings

logger = logging.getLogger(__name__)

REDIS_PREFIX = "pokewatch:ratelimit:"
REDIS_TIMEOUT_SECONDS = 0.25
REDIS_RETRY_SECONDS = 2.0
MAX_MEMORY_BUCKETS = 100_000

#: KEYS[1]: the bucket. ARGV: capacity, refill per second, cost, now (seconds; empty
#: means Redis TIME). Returns {allowed (0/1), tokens left as a string}.
TOKEN_BUCKET_LUA = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now
if ARGV[4] ~= nil and ARGV[4] ~= '' then
  now = tonumber(ARGV[4])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
if now > ts then
  tokens = tokens + (now - ts) * rate
  ts = now
end
if tokens > capacity then tokens = capacity end
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'ts', string.format('%.6f', ts))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity / rate) * 1000) + 1000)
return {allowed, string.format('%.6f', tokens)}
"""


@dataclass(frozen=True)
class Decision:
    """What the limiter decided for one request, and the numbers for its headers.

    Attributes:
        allowed: admit the request.
        limit: requests per minute (``X-RateLimit-Limit``).
        remaining: whole tokens left (``X-RateLimit-Remaining``).
        reset_seconds: seconds until the bucket is full again (``X-RateLimit-Reset``).
        retry_after: seconds until the next token, when refused (``Retry-After``).
        backend: ``memory``, ``redis``, ``memory-fallback`` (Redis down, open) or
            ``unavailable`` (Redis down, closed: answer 503).
    """

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    retry_after: int
    backend: str

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        out = [(b"x-ratelimit-limit", str(self.limit).encode()),
               (b"x-ratelimit-remaining", str(self.remaining).encode()),
               (b"x-ratelimit-reset", str(self.reset_seconds).encode())]
        if not self.allowed:
            out.append((b"retry-after", str(self.retry_after).encode()))
        return out


class MemoryBuckets:
    """Token buckets in a bounded dict (least recently used evicted first).

    Args:
        capacity: tokens in a full bucket (the burst).
        rate: tokens added per second.
        clock: seconds, monotonic; injectable for tests.
    """

    def __init__(self, capacity: int, rate: float, clock: Callable[[], float] = time.monotonic,
                 max_buckets: int = MAX_MEMORY_BUCKETS) -> None:
        self.capacity = float(capacity)
        self.rate = rate
        self.clock = clock
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, bucket: str, cost: float = 1.0) -> tuple[bool, float]:
        """Take ``cost`` tokens from ``bucket`` if it has them; return (allowed, tokens left)."""
        now = self.clock()
        tokens, ts = self._buckets.pop(bucket, (self.capacity, now))
        tokens = min(self.capacity, tokens + max(0.0, now - ts) * self.rate)
        allowed = tokens >= cost
        if allowed:
            tokens -= cost
        self._buckets[bucket] = (tokens, now)
        if len(self._buckets) > self.max_buckets:
            self._buckets.popitem(last=False)
        return allowed, tokens


class RedisBuckets:
    """Token buckets shared by every worker through one Redis, updated atomically in Lua.

    Requests that arrive while a round trip is under way are sent together in the
    next one, as a pipeline of script calls: each call is still atomic and applied
    in arrival order, but 50 concurrent requests cost one round trip instead of 50
    (about a quarter of the client CPU per request). An idle server sends batches of
    one, with no added wait.

    Args:
        url: a ``redis://`` URL.
        capacity: tokens in a full bucket (the burst).
        rate: tokens added per second.
    """

    def __init__(self, url: str, capacity: int, rate: float) -> None:
        import redis.asyncio as redis_asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.capacity = capacity
        self.rate = rate
        # One immediate retry (a pooled connection may be stale after a Redis restart), no
        # backoff: redis-py's default of 10 backed-off retries would stall requests during an
        # outage, and the limiter's failure policy is the better answer to that.
        self.client = redis_asyncio.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 1))
        self._script = self.client.register_script(TOKEN_BUCKET_LUA)
        self._pending: list[tuple[str, float, str, asyncio.Future]] = []
        self._flusher: asyncio.Task | None = None

    async def take(self, bucket: str, cost: float = 1.0, now: float | None = None) -> tuple[bool, float]:
        """Take ``cost`` tokens in Redis; raises ``redis.RedisError``/``OSError`` when unreachable.

        ``now`` (seconds) replaces Redis's clock, for tests.
        """
        future = asyncio.get_running_loop().create_future()
        self._pending.append((REDIS_PREFIX + bucket, cost, "" if now is None else repr(now), future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        allowed, tokens = await future
        return bool(int(allowed)), float(tokens)

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                results = await self._run(batch)
            except Exception as exc:  # noqa: BLE001 - never leave a request waiting; the limiter decides
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (*_, future), result in zip(batch, results):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def _run(self, batch: list) -> list:
        from redis.exceptions import NoScriptError

        for attempt in (1, 2):
            async with self.client.pipeline(transaction=False) as pipe:
                for key, cost, now, _ in batch:
                    pipe.evalsha(self._script.sha, 1, key, self.capacity, repr(self.rate), cost, now)
                results = await pipe.execute(raise_on_error=False)
            if attempt == 1 and any(isinstance(r, NoScriptError) for r in results):
                await self.client.script_load(TOKEN_BUCKET_LUA)   # Redis restarted: scripts are gone
                continue
            return results
        return results

    async def close(self) -> None:
        if self._flusher is not None and not self._flusher.done():
            await asyncio.wait([self._flusher], timeout=1)
        await self.client.aclose()


class RateLimiter:
    """The limiter the app uses: picks the store and applies the Redis failure policy."""

    def __init__(self, settings: ApiSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = settings.rate_limit_per_minute
        self.capacity = settings.rate_limit_burst
        self.rate = settings.refill_per_second
        self.fail_open = settings.fail_open
        self.clock = clock
        self.memory = MemoryBuckets(self.capacity, self.rate, clock=clock)
        self.redis = RedisBuckets(settings.redis_url, self.capacity, self.rate) if settings.redis_url else None
        self._redis_down_until: float | None = None
        self.redis_errors = 0

    @property
    def backend(self) -> str:
        return "redis" if self.redis else "memory"

    def _decide(self, allowed: bool, tokens: float, backend: str) -> Decision:
        reset = math.ceil((self.capacity - tokens) / self.rate) if tokens < self.capacity else 0
        retry = 0 if allowed else max(1, math.ceil((1.0 - tokens) / self.rate))
        return Decision(allowed, self.limit, max(0, math.floor(tokens)), max(0, reset), retry, backend)

    async def check(self, bucket: str) -> Decision:
        """Take one token for ``bucket`` and say whether the request may proceed."""
        if self.redis is None:
            return self._decide(*self.memory.take(bucket), "memory")
        now = self.clock()
        if self._redis_down_until is None or now >= self._redis_down_until:
            try:
                allowed, tokens = await self.redis.take(bucket)
            except (RedisError, OSError, TimeoutError) as exc:   # unreachable: apply the policy
                self._redis_failed(exc, now)
            else:
                if self._redis_down_until is not None:
                    logger.warning("rate limiter: Redis is reachable again; buckets are shared again")
                    self._redis_down_until = None
                return self._decide(allowed, tokens, "redis")
        if self.fail_open:
            return self._decide(*self.memory.take(bucket), "memory-fallback")
        return Decision(False, self.limit, 0, 0, math.ceil(REDIS_RETRY_SECONDS), "unavailable")

    def _redis_failed(self, exc: Exception, now: float) -> None:
        self.redis_errors += 1
        if self._redis_down_until is None:
            mode = ("failing open: each worker limits keys in its own memory until Redis is back"
                    if self.fail_open else "failing closed: requests get 503 until Redis is back")
            logger.warning("rate limiter: Redis is unreachable (%s: %s); %s",
                           exc.__class__.__name__, str(exc)[:200], mode)
        self._redis_down_until = now + REDIS_RETRY_SECONDS

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.close()
