"""What the proxy measures for every deployment and replica, and GET /kz/metrics, which serves
it in Prometheus' text format (to admins, or to the scrape token of c.KzApp.metrics_token)."""

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
from kz_jupyter.server_ext.api.engine_gauges import EngineReadings
from kz_jupyter.server_ext.api.request_window import FinishedRequest, RequestWindow

TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
TOKEN_TIME_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0)


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
    """The proxy's metrics, in a registry of their own (one per server), the engines' gauges
    last read, and the recent requests the panels summarize."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled  # off (c.KzApp.proxy_metrics): the proxy measures nothing
        self.registry = CollectorRegistry()
        self.window = RequestWindow()
        self.engines = EngineReadings()
        self.registry.register(self.engines)
        self._by_user: dict[tuple[str, str], dict[str, int]] = {}
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
        self.token_time = Histogram(
            "kz_time_per_output_token_seconds",
            "Seconds per generated token after the first, for streamed answers.",
            labels,
            buckets=TOKEN_TIME_BUCKETS,
            registry=self.registry,
        )
        users = ("deployment", "replica", "user")
        self.prompt_tokens = Counter(
            "kz_prompt_tokens",
            "Prompt tokens of the answered requests (the engine's usage), by user.",
            users,
            registry=self.registry,
        )
        self.completion_tokens = Counter(
            "kz_completion_tokens",
            "Generated tokens of the answered requests (the engine's usage), by user.",
            users,
            registry=self.registry,
        )

    def observe(self, request: FinishedRequest) -> None:
        """Count one finished request: outcome, times, tokens; keep it for the panels."""
        labels = (request.deployment, request.replica, request.route)
        self.requests.labels(*labels, request.outcome).inc()
        if request.first_byte is not None:
            self.first_byte.labels(*labels).observe(request.first_byte)
        self.duration.labels(*labels).observe(request.duration)
        if request.time_per_output_token is not None:
            self.token_time.labels(*labels).observe(request.time_per_output_token)
        if request.usage is not None:
            users = (request.deployment, request.replica, request.user)
            self.prompt_tokens.labels(*users).inc(request.usage.prompt)
            self.completion_tokens.labels(*users).inc(request.usage.completion)
        counts = self._by_user.setdefault(
            (request.user, request.deployment),
            {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0},
        )
        counts["requests"] += 1
        if request.usage is not None:
            counts["prompt_tokens"] += request.usage.prompt
            counts["completion_tokens"] += request.usage.completion
        self.window.add(request)

    def usage(self) -> list[dict]:
        """Requests and tokens per user and deployment since the server started."""
        return [
            {"user": user, "deployment": deployment, **counts}
            for (user, deployment), counts in sorted(self._by_user.items())
        ]

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
            return await self._write_metrics()
        await self._get_authenticated()

    @web.authenticated
    @authorized
    async def _get_authenticated(self) -> None:
        """The metrics, to an admin Jupyter (or the hub) authenticated: they name every user
        (the user of a personal server is its admin)."""
        self.admin_or_403(
            "read every user's metrics", "metrics", "your own figures are in %kz top and %kz usage"
        )
        await self._write_metrics()

    async def _write_metrics(self) -> None:
        """Read the engines' gauges, then answer every metric in Prometheus' text format."""
        await self.settings["kz_metrics"].engines.refresh(
            self.controller.list(), self.settings["kz_http_client"]
        )
        exposition = self.settings["kz_metrics"].exposition()
        self.finish(exposition, set_content_type=CONTENT_TYPE_LATEST)


METRICS_HANDLERS = [(r"/kz/metrics", MetricsHandler)]
