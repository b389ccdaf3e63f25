"""The request pipeline around every route, as plain ASGI middleware.

Outermost first:

0. uvicorn's ``ProxyHeadersMiddleware`` (only with ``POKEWATCH_TRUSTED_PROXIES``, see
   :mod:`pokewatch.api.app`): the client address from ``X-Forwarded-For``, believed
   only when the peer is one of those proxies.
1. :class:`RequestContext`: gives each request an id (``X-Request-ID`` echoed back
   when it is sane, else generated), adds the security headers, turns any uncaught
   exception into a generic JSON 500 (the stack trace goes to the log, never to the
   client), then writes the request's one access log line, path and query string
   redacted (:mod:`pokewatch.redaction`), and the Prometheus observations.
2. :class:`BodyLimit`: refuses bodies over ``max_body_bytes`` with 413, whether the
   client announced the length or streams it chunked.
3. CORS (Starlette's, only when origins are configured), so that browsers can read
   even the 401 and 429 answers.
4. :class:`AccessControl`: the ``X-API-Key`` check, the per-key rate limit and the
   role check (only ``admin`` keys may ``POST /reload``) for every path except the
   public ones (``/health``, ``/metrics``, the API docs); and, on every path, a 400
   for a key sent in the URL instead of the header.
5. :class:`QueryGuard`: a query parameter a route does not take, or one given
   twice, is a 422, so a typo such as ``?sigal=BUY`` is reported instead of
   silently ignored (and ``?signal=BUY&signal=SELL`` does not quietly mean SELL).

Plain ASGI rather than ``BaseHTTPMiddleware`` because the latter costs a task and a
stream per request; this whole stack adds well under a millisecond.
"""
from __future__ import annotations

import json
import logging
import os
import re
import time
import urllib.parse
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from pokewatch.api import logs
from pokewatch.api.metrics import ApiMetrics
from pokewatch.api.ratelimit import RateLimiter
from pokewatch.api.security import KeyRing
from pokewatch.redaction import redact_path, redact_query, secret_parameters

logger = logging.getLogger(__name__)

PUBLIC_PATHS = frozenset({"/health", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect"})
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect"})
#: ``(method, path)`` of the routes only an ``admin`` key may call.
ADMIN_ROUTES = frozenset({("POST", "/reload")})
#: Longest path and query string written to an access line (after redaction).
LOGGED_PATH_CHARS, LOGGED_QUERY_CHARS = 200, 500
#: Status logged for a request whose client went away before it was answered (nginx's convention).
CLIENT_CLOSED = 499
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"strict-transport-security", b"max-age=31536000"),
    (b"cache-control", b"no-store"),
]
API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
#: Swagger UI is an HTML page with inline script that loads its assets from a CDN.
DOCS_CSP = (b"content-security-policy", (
    b"default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; frame-ancestors 'none'"))


def context(scope) -> dict:
    """This request's PokeWatch context (``request_id``, ``key_id``), set by :class:`RequestContext`."""
    return scope.setdefault("pokewatch", {})


def problem_body(status: int, error: str, detail: str, request_id: str | None, **extra) -> bytes:
    return json.dumps({"error": error, "detail": detail, "request_id": request_id, **extra}).encode()


async def send_json(send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] = ()) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class RequestContext:
    """Request id, security headers, error shield, access log and metrics (outermost layer).

    Args:
        app: the wrapped ASGI app.
        metrics: where request counts and latencies go.
        route_paths: the app's route templates, used as the metrics/log label.
        is_secret: says whether a path segment or query value is a secret to redact
            (:meth:`pokewatch.api.security.KeyRing.is_secret`).
    """

    def __init__(self, app, metrics: ApiMetrics, route_paths: frozenset[str],
                 is_secret: Callable[[str], bool] | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.route_paths = route_paths
        self.is_secret = is_secret

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID_RE.match(incoming) else os.urandom(16).hex()
        ctx = context(scope)
        ctx["request_id"] = request_id
        path = scope["path"]
        extra = [(b"x-request-id", request_id.encode()), *SECURITY_HEADERS,
                 DOCS_CSP if path in DOCS_PATHS else API_CSP]
        state = {"status": 500, "started": False}

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
                state["status"] = message["status"]
                present = {k.lower() for k, _ in message.get("headers", ())}
                message = {**message, "headers": [*message.get("headers", ()),
                                                   *(h for h in extra if h[0] not in present)]}
            await send(message)

        shown_path = redact_path(path, self.is_secret)[:LOGGED_PATH_CHARS]
        try:
            await self.app(scope, receive, send_with_headers)
        except ClientDisconnect:   # the client went away before it was answered: not our error
            state["status"] = CLIENT_CLOSED
        except Exception:
            logger.exception("unhandled error in %s %s", scope["method"], shown_path,
                             extra={"request_id": request_id})
            if not state["started"]:
                body = problem_body(500, "internal_error", "the server failed to answer this request; "
                                    f"the error is logged under request id {request_id}", request_id)
                await send_with_headers({"type": "http.response.start", "status": 500, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
            state["status"] = 500
        finally:
            if ctx.get("read_timed_out"):   # the connection guard answered 408 and hung up
                state["status"] = 408
            seconds = time.perf_counter() - start
            route = scope.get("route")
            label = getattr(route, "path", None) or (path if path in self.route_paths else "<unmatched>")
            client = scope.get("client")
            query = scope.get("query_string", b"").decode("latin-1")
            self.metrics.observe(label, scope["method"], state["status"], seconds)
            logs.log_request({
                "request_id": request_id, "method": scope["method"], "path": shown_path,
                "query": redact_query(query, self.is_secret)[:LOGGED_QUERY_CHARS] if query else None,
                "route": label, "status": state["status"], "duration_ms": round(seconds * 1000, 2),
                "client": client[0] if client else None, "key_id": ctx.get("key_id"),
            })


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than {limit} bytes; send less data")


class BodyLimit:
    """Refuse request bodies larger than ``max_bytes`` with 413."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")   # the HTTP server has checked it is a number
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await send_json(send, 413, problem_body(
                413, "body_too_large", f"request body is larger than {self.max_bytes} bytes; send less data",
                context(scope).get("request_id")))
            return
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)


class AccessControl:
    """``X-API-Key`` authentication, per-key rate limiting and roles, for every non-public path.

    A request without a valid key is limited by client address (bucket ``anon:<ip>``)
    before it gets its 401, so guessing keys is throttled too; a valid key is limited
    by its own bucket ``key:<key id>``. Every answer from a limited path carries the
    ``X-RateLimit-*`` headers of the bucket it drew from. A reader key calling an
    :data:`ADMIN_ROUTES` route gets 403.

    A key in the query string (a parameter named like a secret, or any value that is
    a key of this server or shaped like one) is refused with 400 on every path, public
    ones included, after the rate limit: the value test would otherwise be an
    unthrottled oracle for guessing keys. Public paths take no query parameters, so
    their ordinary callers (health checks, scrapers) are still never limited.
    """

    def __init__(self, app, keyring: KeyRing, limiter: RateLimiter, metrics: ApiMetrics) -> None:
        self.app = app
        self.keyring = keyring
        self.limiter = limiter
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        public = scope["path"] in PUBLIC_PATHS
        query = scope.get("query_string", b"")
        if public and not query:
            await self.app(scope, receive, send)
            return
        ctx = context(scope)
        request_id = ctx.get("request_id")
        presented = _header(scope, b"x-api-key")
        match = self.keyring.lookup(presented)
        if match is None:
            client = scope.get("client")
            bucket = f"anon:{client[0] if client else 'unknown'}"
        else:
            ctx["key_id"] = match.key_id
            bucket = f"key:{match.key_id}"
        decision = await self.limiter.check(bucket)
        if decision.backend in ("memory-fallback", "unavailable"):
            self.metrics.limiter_degraded.inc()
        headers = decision.headers
        if not decision.allowed:
            self.metrics.rate_limited.labels(decision.backend).inc()
            if decision.backend == "unavailable":
                await send_json(send, 503, problem_body(
                    503, "rate_limiter_unavailable", "the rate limiter's store (Redis) is unreachable "
                    "and this server is configured to fail closed; retry shortly", request_id), headers)
            else:
                await send_json(send, 429, problem_body(
                    429, "rate_limited", f"rate limit exceeded: {self.limiter.limit} requests per minute "
                    f"with bursts of {self.limiter.capacity}; retry in {decision.retry_after} s",
                    request_id), headers)
            return
        in_url = secret_parameters(query.decode("latin-1"), self.keyring.is_secret) if query else []
        if in_url:
            await send_json(send, 400, problem_body(
                400, "key_in_url", "send the API key in the X-API-Key header, never in the URL (found in "
                f"query parameter(s) {', '.join(map(repr, dict.fromkeys(in_url)))}); a key that was sent in "
                "a URL may be kept by proxies and browser history, so ask the operator for a new one",
                request_id), headers)
            return
        if public:
            await self.app(scope, receive, send)
            return
        if match is None:
            if presented:
                detail = "invalid API key in X-API-Key"
            elif len(self.keyring):
                detail = "missing X-API-Key header; ask the operator for a key"
            else:
                detail = ("missing X-API-Key header; this server has no keys configured yet "
                          "(operator: run 'pokewatch keys new' and set POKEWATCH_API_KEYS)")
            await send_json(send, 401, problem_body(401, "unauthorized", detail, request_id),
                            [*headers, (b"www-authenticate", b'APIKey header="X-API-Key"')])
            return
        if (scope["method"], scope["path"]) in ADMIN_ROUTES and not match.is_admin:
            await send_json(send, 403, problem_body(
                403, "forbidden", f"{scope['method']} {scope['path']} needs a key with the admin role; key "
                f"{match.key_id} is a {match.role} (operator: mark it 'admin' in the key file, or list it "
                "in POKEWATCH_API_ADMIN_KEYS)", request_id), headers)
            return

        async def send_with_limits(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *headers]}
            await send(message)

        await self.app(scope, receive, send_with_limits)


class QueryGuard:
    """Refuse query parameters the route does not declare, or repeated ones (422).

    Args:
        app: the wrapped ASGI app.
        allowed: ``(method, path)`` -> the query parameter names that route takes.
    """

    def __init__(self, app, allowed: dict[tuple[str, str], frozenset[str]]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope.get("query_string"):
            method = "GET" if scope["method"] == "HEAD" else scope["method"]
            names = self.allowed.get((method, scope["path"]))
            if names is not None:
                given = [k for k, _ in urllib.parse.parse_qsl(scope["query_string"].decode("latin-1"),
                                                              keep_blank_values=True)]
                unknown = sorted(set(given) - names)
                repeated = sorted({k for k in given if given.count(k) > 1} - set(unknown))
                problem = None
                if unknown:
                    takes = ", ".join(sorted(names)) or "no query parameters"
                    problem = (f"unknown query parameter(s) {', '.join(map(repr, unknown))}; "
                               f"{scope['path']} takes {takes}")
                elif repeated:
                    problem = f"query parameter(s) {', '.join(map(repr, repeated))} given more than once"
                if problem:
                    await send_json(send, 422, problem_body(422, "invalid_request", problem,
                                                            context(scope).get("request_id")))
                    return
        await self.app(scope, receive, send)
