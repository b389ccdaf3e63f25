"""Request and response bodies of the API, which also make its OpenAPI schema.

The schema is the contract that ``tests/test_api_fuzz.py`` holds the app to with
schemathesis, so every status a route can answer is declared here with its body.
"""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

CardId = Annotated[str, Field(min_length=1, max_length=100, description="Card id, e.g. sv3pt5-199",
                              examples=["sv3pt5-199"])]
Variant = Annotated[str, Field(min_length=1, max_length=50,
                               description="Printing: Normal, Holofoil, Reverse Holofoil, ...",
                               examples=["Holofoil"])]
Currency = Literal["USD", "EUR"]
SignalName = Literal["BUY", "SELL", "HOLD"]


class FairPriceRequest(BaseModel):
    """Body of ``POST /fair_price``."""

    model_config = ConfigDict(extra="forbid")

    card_id: CardId
    date: dt.date | None = Field(None, description="Trading day (YYYY-MM-DD); default: the latest")
    variant: Variant | None = None
    currency: Currency | None = None


class FairPrice(BaseModel):
    """One card's market price, fair price, deviation and signal on one day."""

    card_id: str
    variant: str
    currency: str
    date: dt.date = Field(description="Day of the market price (the latest on or before the asked day)")
    market_price: float
    fair_price: float | None = Field(description="Fair value; null when the card has too little history")
    deviation: float | None = Field(description="(market - fair) / fair")
    signal: SignalName
    run_date: str = Field(description="Run whose model answered")


class Card(BaseModel):
    card_id: str
    name: str | None = None
    set_id: str | None = None
    set_name: str | None = None
    number: str | None = None
    rarity: str | None = None
    variant: str
    currency: str
    category: str | None = None


class CardPage(BaseModel):
    page: int
    page_size: int
    total: int = Field(description="Card series matching the filters")
    pages: int
    cards: list[Card]


class SignalRow(BaseModel):
    card_id: str
    name: str | None = None
    set_name: str | None = None
    category: str | None = None
    variant: str
    currency: str
    date: dt.date
    market_price: float
    fair_price: float | None
    deviation: float | None
    signal: SignalName


class SignalPage(BaseModel):
    date: dt.date = Field(description="The day asked for (default: the model's latest day)")
    run_date: str
    signal: Literal["BUY", "SELL"] | None
    total: int = Field(description="Flags matching the filters")
    page: int
    page_size: int
    signals: list[SignalRow]


class UnreadableRunInfo(BaseModel):
    """The newest run, when its model cannot be loaded (an older run is served instead, or none)."""

    run_date: str | None = Field(description="Its run date, when its manifest is readable")
    run: str = Field(description="Its attempt folder")
    detail: str = Field(description="Why its model cannot be loaded, and what to do")


class Health(BaseModel):
    status: Literal["ok", "degraded"] = Field(
        description="ok: serving the newest run; degraded: the newest run's model cannot be loaded, "
                    "so the newest older run that loads is served (see newest_run_unreadable)")
    run_date: str
    fitted_through: str | None
    data_freshness_days: int | None = Field(description="Days since the model's last price day")
    cards: int
    series: int
    method: str
    window: int
    trained_on: str | None
    newest_run_unreadable: UnreadableRunInfo | None = None


class ReloadResult(BaseModel):
    status: Literal["reloaded", "unchanged"]
    run_date: str = Field(description="Run now served: the newest whose model loads")
    previous_run_date: str | None
    newest_run_unreadable: UnreadableRunInfo | None = Field(
        None, description="Set when the newest run could not be loaded and an older one is served")


class Problem(BaseModel):
    """Every error answer: a stable code, a sentence saying what to do, and the request id."""

    error: str = Field(description="Stable code: unauthorized, rate_limited, unknown_card, invalid_request, ...")
    detail: str
    request_id: str | None = None
    errors: list[dict] | None = Field(None, description="Per-field problems, for invalid_request")


class HealthProblem(Problem):
    """503 of /health: ``no_run`` (nothing published yet) or ``run_unservable`` (runs exist,
    but no model of theirs can be loaded)."""

    status: Literal["unavailable"]


def problems(*statuses: int) -> dict:
    """The ``responses=`` entry declaring ``statuses`` with the :class:`Problem` body."""
    text = {400: "API key sent in the URL (send it in the X-API-Key header)",
            401: "Missing or wrong X-API-Key", 403: "The key's role may not call this route (admin only)",
            404: "Unknown card, or no price for that date",
            413: "Body too large", 422: "Malformed parameters or body (including malformed JSON)",
            429: "Rate limit exceeded (see Retry-After)",
            503: "No good run yet, no run whose model loads, or the rate limiter is unavailable "
                 "and configured to fail closed"}
    return {s: {"model": Problem, "description": text.get(s, "Error")} for s in statuses}
