"""What the proxy measures for every deployment and replica, and GET /kz/metrics, which serves
it in Prometheus' text format (Jupyter auth, or the scrape token of c.KzApp.metrics_token)."""

from __future__ import annotations

import hmac

from jupyter_server.auth.decorator import authorized
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from tornado import web

from kz_jupyter.server_ext.api.base import KzAPIHandler

TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


def outcome_of(status: int, cancelled: bool) -> str:
    """A request's outcome label: ok, 4xx, 429, 5xx, or cancelled (the client went away)."""
    if cancelled:
        return "cancelled"
    if status == 429:
        return "429"
    if status >= 500:
        return "5xx"
    return "4xx" if status >= 400 else "ok"


class ProxyMetrics:
    """The proxy's metrics, in a registry of their own (one per server)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("deployment", "replica", "route")
        self.requests = Counter(
            "kz_requests",
            "Requests through /kz/v1, by deployment, replica, route and outcome.",
            (*labels, "outcome"),
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "kz_requests_in_flight",
            "Requests through /kz/v1 being answered now (waiting for a load included).",
            ("deployment",),
            registry=self.registry,
        )
        self.first_byte = Histogram(
            "kz_time_to_first_token_seconds",
            "From the request's arrival to the first bytes of the engine's answer relayed "
            "(a stream's first event).",
            labels,
            buckets=TTFT_BUCKETS,
            registry=self.registry,
        )
        self.duration = Histogram(
            "kz_request_duration_seconds",
            "From the request's arrival to the end of its answer.",
            labels,
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )

    def observe(
        self,
        deployment: str,
        replica: str,
        route: str,
        outcome: str,
        first_byte: float | None,
        duration: float,
    ) -> None:
        """Count one finished request, with its time to first bytes (None: none came) and its
        duration, in seconds."""
        labels = (deployment, replica, route)
        self.requests.labels(*labels, outcome).inc()
        if first_byte is not None:
            self.first_byte.labels(*labels).observe(first_byte)
        self.duration.labels(*labels).observe(duration)

    def exposition(self) -> bytes:
        """Every metric in Prometheus' text format."""
        return generate_latest(self.registry)


class MetricsHandler(KzAPIHandler):
    """GET /kz/metrics: the proxy's metrics for Prometheus."""

    async def get(self) -> None:
        """Serve the metrics to the scrape token, else to an authenticated user."""
        token = self.settings["kz_metrics_token"]
        given = self.request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if token and hmac.compare_digest(given.encode(), token.encode()):
            return self._write_metrics()
        await self._get_authenticated()

    @web.authenticated
    @authorized
    async def _get_authenticated(self) -> None:
        """The metrics, to a user Jupyter (or the hub) authenticated."""
        self._write_metrics()

    def _write_metrics(self) -> None:
        """Answer the metrics in Prometheus' text format."""
        exposition = self.settings["kz_metrics"].exposition()
        self.finish(exposition, set_content_type=CONTENT_TYPE_LATEST)


METRICS_HANDLERS = [(r"/kz/metrics", MetricsHandler)]
