"""Prometheus metrics of the API: requests and latency by route and status, and the model.

Each app gets its own ``CollectorRegistry`` so tests can build many apps in one
process. Routes are labelled by their template (``/fair_price``), never by the raw
path, so a scanner probing random URLs cannot blow up the number of series; paths
that match no route share the label ``<unmatched>``.

With several uvicorn workers, each worker counts its own requests. ``pokewatch serve
--workers N`` therefore sets ``PROMETHEUS_MULTIPROC_DIR`` (when it is not already
set), and ``/metrics`` then adds up every worker's numbers from that folder.
"""
from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

# The *_created series double the output and no dashboard of ours reads them.
disable_created_metrics()

#: Latency buckets in seconds: fine below 50 ms, where the API is meant to answer.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ApiMetrics:
    """The API's metric families, registered in a registry of their own."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry(auto_describe=True)
        registry = None if self.multiprocess else self.registry
        self.requests = Counter(
            "pokewatch_http_requests_total", "HTTP requests answered, by route, method and status.",
            ["route", "method", "status"], registry=registry)
        self.latency = Histogram(
            "pokewatch_http_request_duration_seconds",
            "Time from request received to response sent, by route, method and status.",
            ["route", "method", "status"], buckets=LATENCY_BUCKETS, registry=registry)
        self.rate_limited = Counter(
            "pokewatch_rate_limited_total", "Requests refused by the rate limiter (429 or 503).",
            ["backend"], registry=registry)
        self.limiter_degraded = Counter(
            "pokewatch_rate_limiter_degraded_total",
            "Requests the rate limiter decided without Redis because Redis was unreachable.",
            registry=registry)
        self.reloads = Counter(
            "pokewatch_model_reloads_total", "Model (re)loads, by outcome.", ["outcome"], registry=registry)
        self.model_run = Gauge(
            "pokewatch_model_run_timestamp_seconds",
            "Run date of the model being served, as a Unix timestamp (0: none).",
            registry=registry, multiprocess_mode="max")
        self.newest_unreadable = Gauge(
            "pokewatch_model_newest_unreadable",
            "1 when the newest run's model cannot be loaded and an older run (or none) is served.",
            registry=registry, multiprocess_mode="max")
        self._children: dict[tuple, tuple] = {}
        self.model_cards = Gauge(
            "pokewatch_model_series", "Card series (card, variant, currency) in the served model.",
            registry=registry, multiprocess_mode="max")

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:   # label look-ups cost more than the observation; do them once
            children = self._children[key] = (self.requests.labels(route, method, str(status)),
                                              self.latency.labels(route, method, str(status)))
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        """The metrics in Prometheus text format (every worker's, in multiprocess mode)."""
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
