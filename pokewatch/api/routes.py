"""The API's routes: health, cards, fair prices, signals, reload and metrics.

Handlers are ``async`` and do only in-memory look-ups on the :class:`LoadedRun` they
fetched once at their start (see :mod:`pokewatch.api.model_holder`), so they never
block the event loop and never see a half-switched model. Errors are raised as
project exceptions and turned into JSON answers by :mod:`pokewatch.api.app`.
Authentication and rate limiting happen before a handler runs, in
:mod:`pokewatch.api.middleware`; the routes only declare the ``X-API-Key`` scheme
in the OpenAPI schema (a FastAPI security dependency would cost a dependency
resolution on every request for no extra check).
"""
from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from pokewatch.api.metrics import ApiMetrics
from pokewatch.api.middleware import context
from pokewatch.api.model_holder import LoadedRun, ModelHolder, NoRunError
from pokewatch.api.schemas import (
    Card,
    CardPage,
    FairPrice,
    FairPriceRequest,
    Health,
    HealthProblem,
    ReloadResult,
    SignalPage,
    UnreadableRunInfo,
    problems,
)
from pokewatch.errors import RunError
from pokewatch.data.watchlist import CATEGORIES

#: OpenAPI declaration of the key (the check itself is middleware, which also covers 404s).
SECURITY_SCHEMES = {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                               "description": "A key from the server's POKEWATCH_API_KEYS "
                                              "('pokewatch keys new')"}}
KEYED = {"security": [{"ApiKey": []}]}

CardIdQuery = Annotated[str, Query(min_length=1, max_length=100, description="Card id, e.g. sv3pt5-199")]
DateQuery = Annotated[dt.date | None, Query(description="Trading day, YYYY-MM-DD (default: the latest)")]
VariantQuery = Annotated[str | None, Query(min_length=1, max_length=50,
                                           description="Printing, e.g. Holofoil (default: the usual one)")]
CurrencyQuery = Annotated[Literal["USD", "EUR"] | None, Query(description="Default: USD when there is one")]
PageQuery = Annotated[int, Query(ge=1, le=1_000_000, description="1-based page number")]
PageSizeQuery = Annotated[int, Query(ge=1, le=500, description="Rows per page")]
SetIdQuery = Annotated[str | None, Query(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9._-]+$",
                                         description="Only this set, e.g. sv3pt5")]
CategoryQuery = Annotated[Literal[CATEGORIES] | None, Query(description="Only this watchlist category")]


def fair_price(run: LoadedRun, card_id: str, date=None, variant=None, currency=None) -> dict:
    """The ``FairPrice`` answer of one card; raises UnknownCardError / UnknownDateError."""
    result = run.model.predict(card_id, date=date, variant=variant, currency=currency)
    result["fair_price"] = result.pop("fair_value")
    result["run_date"] = run.run_date
    return result


def _freshness(fitted_through: str | None) -> int | None:
    if not fitted_through:
        return None
    return (dt.datetime.now(dt.UTC).date() - dt.date.fromisoformat(fitted_through)).days


def _unreadable(holder: ModelHolder) -> UnreadableRunInfo | None:
    skipped = holder.newest_unreadable
    return UnreadableRunInfo(**skipped.as_dict()) if skipped is not None else None


def build_router(holder: ModelHolder, metrics: ApiMetrics) -> APIRouter:
    """All routes, bound to the app's model holder and metrics."""
    router = APIRouter()

    @router.get("/health", response_model=Health, tags=["ops"], summary="Is a model being served?",
                responses={**problems(400, 422, 429),
                           503: {"model": HealthProblem,
                                 "description": "No good run yet (no_run), or no run whose model loads "
                                                "(run_unservable)"}})
    async def health(request: Request) -> Health | JSONResponse:
        """200 ``ok`` when the newest run is served; 200 ``degraded`` when its model cannot be
        loaded and an older run is served (``newest_run_unreadable`` says why); 503 otherwise."""
        try:
            run = await holder.get()
        except RunError as exc:
            return JSONResponse(status_code=503, content={
                "status": "unavailable", "error": "no_run" if isinstance(exc, NoRunError) else "run_unservable",
                "detail": str(exc), "request_id": context(request.scope).get("request_id")})
        model = run.model
        unreadable = _unreadable(holder)
        return Health(status="degraded" if unreadable else "ok", run_date=run.run_date,
                      fitted_through=model.fitted_through,
                      data_freshness_days=_freshness(model.fitted_through), cards=run.card_count,
                      series=len(run.cards), method=model.method, window=model.window,
                      trained_on=model.trained_on, newest_run_unreadable=unreadable)

    @router.get("/cards", response_model=CardPage, openapi_extra=KEYED, tags=["prices"],
                summary="Card series in the served model, paged",
                responses=problems(400, 401, 422, 429, 503))
    async def cards(page: PageQuery = 1, page_size: PageSizeQuery = 100, set_id: SetIdQuery = None,
                    category: CategoryQuery = None) -> CardPage:
        run = await holder.get()
        rows = run.cards
        if set_id is not None:
            rows = [r for r in rows if r.get("set_id") == set_id]
        if category is not None:
            rows = [r for r in rows if r.get("category") == category]
        start = (page - 1) * page_size
        return CardPage(page=page, page_size=page_size, total=len(rows),
                        pages=math.ceil(len(rows) / page_size),
                        cards=[Card(**r) for r in rows[start:start + page_size]])

    @router.get("/fair_price", response_model=FairPrice, openapi_extra=KEYED, tags=["prices"],
                summary="Fair price and signal of one card",
                responses=problems(400, 401, 404, 422, 429, 503))
    async def fair_price_get(card_id: CardIdQuery, date: DateQuery = None, variant: VariantQuery = None,
                             currency: CurrencyQuery = None) -> dict:
        return fair_price(await holder.get(), card_id, date, variant, currency)

    @router.post("/fair_price", response_model=FairPrice, openapi_extra=KEYED, tags=["prices"],
                 summary="Fair price and signal of one card (JSON body)",
                 responses=problems(400, 401, 404, 413, 422, 429, 503))
    async def fair_price_post(body: FairPriceRequest) -> dict:
        return fair_price(await holder.get(), body.card_id, body.date, body.variant, body.currency)

    @router.get("/signals", response_model=SignalPage, openapi_extra=KEYED, tags=["prices"],
                summary="The day's BUY/SELL flags, strongest first",
                responses=problems(400, 401, 404, 422, 429, 503))
    async def signals(date: DateQuery = None,
                      signal: Annotated[Literal["BUY", "SELL"] | None, Query(
                          description="Only this flag (default: both)")] = None,
                      category: CategoryQuery = None,
                      min_price: Annotated[float | None, Query(
                          ge=0, allow_inf_nan=False, description="Only cards at or above this price")] = None,
                      page: PageQuery = 1, page_size: PageSizeQuery = 100) -> dict:
        """Strongest first, in the one ranking of :mod:`pokewatch.analysis.candidates` (the report, the alerts
        and ``pokewatch signals`` list the same order): by the size of the deviation, so BUY flags
        come most underpriced first and SELL flags most overpriced first."""
        run = await holder.get()
        rows = run.flags(date)
        if signal is not None:
            rows = [r for r in rows if r["signal"] == signal]
        if category is not None:
            rows = [r for r in rows if r.get("category") == category]
        if min_price is not None:
            rows = [r for r in rows if r["market_price"] >= min_price]
        start = (page - 1) * page_size
        day = date or run.model.dates[-1].date()
        return {"date": day, "run_date": run.run_date, "signal": signal, "total": len(rows),
                "page": page, "page_size": page_size, "signals": rows[start:start + page_size]}

    @router.post("/reload", response_model=ReloadResult, openapi_extra=KEYED, tags=["ops"],
                 summary="Serve the newest readable run now (admin keys only)",
                 responses=problems(400, 401, 403, 429, 503))
    async def reload() -> ReloadResult:
        """Serve the newest run whose model loads; ``newest_run_unreadable`` is set when that is
        not the newest run."""
        previous, current = await holder.reload()
        changed = previous is None or previous.run_dir != current.run_dir
        return ReloadResult(status="reloaded" if changed else "unchanged", run_date=current.run_date,
                            previous_run_date=previous.run_date if previous else None,
                            newest_run_unreadable=_unreadable(holder))

    @router.get("/metrics", tags=["ops"], summary="Prometheus metrics",
                response_class=Response,
                responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                                 "description": "Prometheus text exposition format"}})
    async def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    return router
