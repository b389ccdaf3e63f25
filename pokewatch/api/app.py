"""The FastAPI app: routes, error answers and the middleware stack, built from settings.

``create_app()`` reads :class:`~pokewatch.api.settings.ApiSettings` from the
environment (uvicorn calls it as a factory: ``pokewatch.api.app:create_app``).
Tests pass settings of their own. Every error leaves as JSON with a stable
``error`` code, a ``detail`` that says what to do, and the ``request_id`` to quote
when asking the operator; a stack trace never does.
"""
from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import time
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

import pokewatch
from pokewatch import logs as log_setup
from pokewatch.api import logs
from pokewatch.api.metrics import ApiMetrics
from pokewatch.api.middleware import AccessControl, BodyLimit, QueryGuard, RequestContext, context
from pokewatch.api.model_holder import ModelHolder, NoRunError
from pokewatch.api.ratelimit import RateLimiter
from pokewatch.api.routes import SECURITY_SCHEMES, build_router
from pokewatch.api.security import KeyRing, key_id
from pokewatch.api.settings import ApiSettings
from pokewatch.errors import ParameterError, RunError, UnknownCardError, UnknownDateError

logger = logging.getLogger(__name__)

_PLACES = {"query": "query parameter", "body": "body field", "header": "header", "path": "path part"}


def _problem(request: Request, status: int, error: str, detail: str, headers=None, **extra) -> JSONResponse:
    body = {"error": error, "detail": detail, "request_id": context(request.scope).get("request_id"),
            **extra}
    return JSONResponse(status_code=status, content=body, headers=headers)


def _describe(error: dict) -> str:
    loc = [str(p) for p in error.get("loc", ())]
    if error.get("type") == "json_invalid":
        return f"the request body is not valid JSON ({error.get('msg', '')})"
    where = _PLACES.get(loc[0], loc[0]) if loc else "request"
    name = ".".join(loc[1:]) if len(loc) > 1 else ""
    return f"{where} {name!r}: {error.get('msg', 'is invalid')}" if name else f"{where}: {error.get('msg')}"


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")),
               "type": str(e.get("type", ""))} for e in exc.errors()]
    detail = "; ".join(_describe(e) for e in errors[:3]) or "the request is invalid"
    return _problem(request, 422, "invalid_request", detail, errors=errors)


def _http_error_handler(allowed_methods: dict[str, str]):
    """The handler of Starlette/FastAPI HTTP errors, knowing every route's methods.

    Two fixes over the defaults, both found by schemathesis: a 405 lists *all* the
    methods of the path in ``Allow`` (Starlette lists only those of the first route
    it matched, so ``/fair_price`` claimed GET only), and a body FastAPI could not
    even decode (not UTF-8, say) is a 422 like any other malformed JSON, not a 400.
    """

    async def handler(request: Request, exc: HTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "request refused"
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 400:
            return _problem(request, 422, "invalid_request",
                            "the request body could not be read as JSON (it must be UTF-8 JSON text)")
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.url.path!r}; see /docs for the routes"
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods.get(request.url.path, headers.get("Allow", ""))
            detail = f"{request.method} is not allowed on {request.url.path}; use {headers['Allow']}"
        codes = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
        return _problem(request, exc.status_code, codes.get(exc.status_code, "http_error"), detail,
                        headers=headers or None)

    return handler


async def _unknown_card(request: Request, exc: UnknownCardError) -> JSONResponse:
    return _problem(request, 404, "unknown_card", str(exc))


async def _unknown_date(request: Request, exc: UnknownDateError) -> JSONResponse:
    # A well-formed date the model has no price for is "not found", like an unknown card;
    # a malformed date never gets here (it is a 422 from validation).
    return _problem(request, 404, "unknown_date", str(exc))


async def _bad_parameter(request: Request, exc: ParameterError) -> JSONResponse:
    return _problem(request, 422, "invalid_request", str(exc))


async def _no_model(request: Request, exc: RunError) -> JSONResponse:
    code = "no_run" if isinstance(exc, NoRunError) else "run_unservable"
    return _problem(request, 503, code, str(exc), headers={"Retry-After": "30"})


def create_app(settings: ApiSettings | None = None, *, clock: Callable[[], float] | None = None) -> FastAPI:
    """Build the API app.

    Args:
        settings: the configuration; default :meth:`ApiSettings.from_env`.
        clock: monotonic seconds for the rate limiter (tests pass a fake one).

    Raises:
        ApiConfigError: the settings are invalid (bad key file, wildcard CORS with credentials, ...).
    """
    if os.environ.get("POKEWATCH_API_JSON_LOGS") == "1":   # set by `pokewatch serve` for its workers
        try:
            log_setup.configure("json", os.environ.get("POKEWATCH_API_LOG_LEVEL", "info"))
        except ValueError:   # a level name set by hand that logging does not know
            log_setup.configure("json", "info")
    logs.silence_uvicorn_access()   # our access line is the only one, whoever runs the app
    settings = settings or ApiSettings.from_env()
    metrics = ApiMetrics()
    keyring = KeyRing(settings.api_keys, settings.admin_keys)
    limiter = RateLimiter(settings, clock=clock or time.monotonic)
    holder = ModelHolder(settings.runs_dir, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        _announce(settings)
        # The compiled kernels load on first use (pokewatch.core); a server loads them before it
        # answers, so no request waits for numba (seconds, on a cold machine-code cache).
        importlib.import_module("pokewatch.core.kernels")
        try:
            holder.load_now()
        except NoRunError as exc:
            logger.warning("%s; /health answers 503 until then", exc)
        except RunError as exc:
            logger.error("cannot serve the latest run: %s", exc)
        follower = (asyncio.create_task(holder.follow_latest(settings.reload_check_seconds))
                    if settings.reload_check_seconds > 0 else None)
        try:
            yield
        finally:
            if follower is not None:
                follower.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await follower
            await limiter.close()

    app = FastAPI(
        title="PokeWatch API", version=pokewatch.__version__, lifespan=lifespan, redoc_url=None,
        # Our own Prometheus metrics and access log are the telemetry; skip FastAPI's OpenTelemetry hooks.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        description="Fair values and BUY/SELL/HOLD flags of Pokémon cards, from the newest good "
                    "pipeline run. Send your key in the X-API-Key header (all routes but /health "
                    "and /metrics). Limits: per key, a token bucket; see the X-RateLimit-* headers.")
    app.state.settings = settings
    app.state.holder = holder
    app.state.limiter = limiter
    app.state.metrics = metrics
    router = build_router(holder, metrics)
    app.include_router(router)
    _declare_key_scheme(app)
    _add_error_handlers(app, router)
    _add_middleware(app, router, settings, keyring, limiter, metrics)
    return app


def _route_table(app: FastAPI, router) -> dict[str, set[str]]:
    """Every route path of the app (docs included) -> its methods."""
    table: dict[str, set[str]] = {}
    for route in [*app.routes, *router.routes]:
        if getattr(route, "path", None):
            table.setdefault(route.path, set()).update(getattr(route, "methods", None) or ())
    return table


def _add_error_handlers(app: FastAPI, router) -> None:
    allowed = {path: ", ".join(sorted(methods)) for path, methods in _route_table(app, router).items()}
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error_handler(allowed))
    app.add_exception_handler(UnknownCardError, _unknown_card)
    app.add_exception_handler(UnknownDateError, _unknown_date)
    app.add_exception_handler(ParameterError, _bad_parameter)
    app.add_exception_handler(RunError, _no_model)


def _add_middleware(app: FastAPI, router, settings: ApiSettings, keyring: KeyRing, limiter: RateLimiter,
                    metrics: ApiMetrics) -> None:
    """The stack of :mod:`pokewatch.api.middleware`, added innermost first (the last added runs first)."""
    app.add_middleware(QueryGuard, allowed=_query_names(router))
    app.add_middleware(AccessControl, keyring=keyring, limiter=limiter, metrics=metrics)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins),
            allow_credentials=settings.cors_allow_credentials, allow_methods=["GET", "POST"],
            allow_headers=["X-API-Key", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "X-RateLimit-Limit", "X-RateLimit-Remaining",
                            "X-RateLimit-Reset", "Retry-After"], max_age=600)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContext, metrics=metrics, route_paths=frozenset(_route_table(app, router)),
                       is_secret=keyring.is_secret)
    if settings.trusted_proxies:
        # uvicorn's own middleware, run here with our list: it believes X-Forwarded-For only when
        # the peer is a trusted proxy, and takes the client as the right-most untrusted address.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))


def _query_names(router) -> dict[tuple[str, str], frozenset[str]]:
    """``(method, path)`` -> query parameter names, for every API route of ``router``."""
    names = {}
    for route in router.routes:
        dependant = getattr(route, "dependant", None)
        if dependant is None:
            continue
        taken = frozenset(p.alias for p in dependant.query_params)
        for method in route.methods:
            names[(method, route.path)] = taken
    return names


def _declare_key_scheme(app: FastAPI) -> None:
    """Add the ``X-API-Key`` scheme to the OpenAPI components (the routes reference it)."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {}).setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


def _announce(settings: ApiSettings) -> None:
    if settings.api_keys or settings.admin_keys:
        logger.info("accepting %d API key(s): readers %s; admins %s",
                    len(settings.api_keys) + len(settings.admin_keys),
                    ", ".join(key_id(k) for k in settings.api_keys) or "none",
                    ", ".join(key_id(k) for k in settings.admin_keys) or "none")
        if not settings.admin_keys:
            logger.warning("no admin key: POST /reload answers 403 to every key (workers still follow "
                           "runs/latest every %s s); mark the pipeline's key 'admin' in the key file",
                           settings.reload_check_seconds)
    else:
        logger.warning("no API keys configured: every route but /health and /metrics answers 401; "
                       "create one with 'pokewatch keys new' and set POKEWATCH_API_KEYS")
    logger.info("rate limit %d/min, burst %d, per key, %s", settings.rate_limit_per_minute,
                settings.rate_limit_burst,
                f"shared in Redis (fail {'open' if settings.fail_open else 'closed'})"
                if settings.redis_url else "in this worker's memory")
    logger.info("X-Forwarded-For believed from %s", ", ".join(settings.trusted_proxies) or
                "no one (set POKEWATCH_TRUSTED_PROXIES to the reverse proxy's address)")
