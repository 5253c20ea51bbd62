"""What the panels show: GET /kz/api/stats (every deployment's rates, time to first token,
generation speed, queue and memory now and over the last minutes, with the machine's CPU, RAM
and GPUs sampled while someone looks) and GET /kz/api/usage (requests and tokens per user)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque

import psutil
from jupyter_server.auth.decorator import authorized
from tornado import web

from kz_jupyter.planning.hardware import sample_utilization
from kz_jupyter.server_ext.access.sharing import can_see
from kz_jupyter.server_ext.api.base import KzAPIHandler
from kz_jupyter.server_ext.api.request_window import KEEP_SECONDS, NOW_SECONDS
from kz_jupyter.states import InstanceStatus

SAMPLE_INTERVAL = 1.0  # seconds: stats asked for more often share a sample
SPANS = {"span": (300.0, 30.0, KEEP_SECONDS), "step": (10.0, 1.0, 60.0)}  # default, min, max


class SampleHistory:
    """Samples of what is only known at an instant (engine queues, requests in flight, the
    machine's use), taken when stats are asked for and kept KEEP_SECONDS."""

    def __init__(self) -> None:
        self.samples: deque[dict] = deque()
        psutil.cpu_percent(interval=None)  # the first sample's CPU use counts from here

    def due(self, now: float) -> bool:
        """Whether a new sample is due (none taken in the last SAMPLE_INTERVAL)."""
        return not self.samples or now - self.samples[-1]["t"] >= SAMPLE_INTERVAL

    def add(self, sample: dict) -> None:
        """Keep a sample (with its time `t`), dropping those older than KEEP_SECONDS."""
        self.samples.append(sample)
        while self.samples[0]["t"] < sample["t"] - KEEP_SECONDS:
            self.samples.popleft()

    def since(self, start: float) -> list[dict]:
        """The samples taken after start."""
        return [s for s in self.samples if s["t"] > start]


def span_argument(handler: KzAPIHandler, name: str) -> float:
    """?span= or ?step= in seconds, within its bounds; a 400 that says the bounds otherwise."""
    default, low, high = SPANS[name]
    given = handler.get_argument(name, None)
    if given is None:
        return default
    try:
        value = float(given)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:
        raise web.HTTPError(400, f"{name}={given!r}: give seconds from {low:g} to {high:g}.")
    return value


class StatsHandler(KzAPIHandler):
    """GET /kz/api/stats and /kz/api/stats/NAME: figures of the deployments the user sees."""

    @web.authenticated
    @authorized
    async def get(self, name: str | None = None) -> None:
        """Sample the gauges (at most once a SAMPLE_INTERVAL) and answer the figures."""
        span, step = span_argument(self, "span"), span_argument(self, "step")
        deployments = [self.deployment_or_404(name)] if name else [
            d for d in self.controller.list() if can_see(self.viewer, d.owner, d.shared_with)
        ]  # fmt: skip
        metrics, history = self.settings["kz_metrics"], self.settings["kz_samples"]
        now = time.time()
        if history.due(now):
            every = self.controller.list()
            await metrics.engines.refresh(every, self.settings["kz_http_client"])
            machine = await asyncio.to_thread(sample_utilization)
            history.add({
                "t": now,
                "machine": machine.to_dict(),
                "deployments": {
                    d.name: {"in_flight": d.in_flight,
                             **metrics.engines.of(d.name)}
                    for d in every
                },
            })  # fmt: skip
        samples = history.since(now - span)
        self.finish(json.dumps({
            "time": now,
            "now_seconds": NOW_SECONDS,
            "span": span,
            "step": step,
            "deployments": [self._figures(d, samples, span, step, now) for d in deployments],
            "machine": {
                "t": [s["t"] for s in samples],
                "samples": [s["machine"] for s in samples],
            },
        }))  # fmt: skip

    def _figures(self, deployment, samples: list[dict], span: float, step: float, now: float):
        """One deployment's figures now, its series per step and its gauge samples."""
        window = self.settings["kz_metrics"].window
        memory = (deployment.plan.memory or {}).get("total") if deployment.plan else None
        gauges = [(s["t"], s["deployments"].get(deployment.name)) for s in samples]
        gauges = [(t, g) for t, g in gauges if g is not None]
        ready = sum(r.status is InstanceStatus.DEPLOYED for r in deployment.replicas)
        return {
            "name": deployment.name,
            "status": deployment.status.value,
            "engine": deployment.plan.engine if deployment.plan else None,
            "replicas": f"{ready}/{len(deployment.replicas)}",
            "memory": memory,
            "in_flight": deployment.in_flight,
            "engine_gauges": self.settings["kz_metrics"].engines.of(deployment.name),
            "now": window.now(deployment.name, now),
            "series": window.series(deployment.name, span, step, now),
            "gauges": {
                "t": [t for t, _ in gauges],
                **{
                    key: [g.get(key) for _, g in gauges]
                    for key in ("in_flight", "queue", "running")
                },
            },
        }


class UsageHandler(KzAPIHandler):
    """GET /kz/api/usage: requests and tokens per user and deployment since the server
    started; an admin sees every user, anyone else their own."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """Answer the usage the viewer may see."""
        viewer = self.viewer
        rows = self.settings["kz_metrics"].usage()
        if not viewer.admin:
            rows = [row for row in rows if row["user"] == viewer.name]
        self.finish(json.dumps({"user": viewer.name, "admin": viewer.admin, "usage": rows}))


STATS_HANDLERS = [
    (r"/kz/api/stats", StatsHandler),
    (r"/kz/api/stats/(?P<name>[^/]+)", StatsHandler),
    (r"/kz/api/usage", UsageHandler),
]
