"""Routing a request to a replica, behind one call: the deployment's in-flight limit, loading it
again when it was unloaded for idleness, the least busy serving replica, another replica (or a
fresh connection) when one fails before answering, and counting what is in flight."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx

from kz_jupyter.server_ext.lifecycle.idle import IdleUnloader
from kz_jupyter.server_ext.lifecycle.records import Deployment, Replica
from kz_jupyter.states import DeploymentStatus, InstanceStatus

RETRY_AFTER_SECONDS = 1
# How an engine's end of a connection fails under load: closed before answering, reset on read
# or on write. Worth a few retries before calling the replica unreachable.
DROPPED = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
DROPPED_RETRIES = 3
RETRY_PAUSE = 0.1  # seconds, times the retries already made
SERVING = (DeploymentStatus.DEPLOYED, DeploymentStatus.ERROR)


class RouteRefused(Exception):
    """No replica takes the request: the HTTP status, message and OpenAI error type and code
    to answer with, and the seconds after which to retry (429)."""

    def __init__(self, status: int, message: str, error_type: str, code: str, retry_after=0):
        super().__init__(message)
        self.status, self.error_type, self.code = status, error_type, code
        self.retry_after = retry_after


def pick_replica(deployment: Deployment, exclude: set[str]) -> Replica | None:
    """The DEPLOYED replica (not in exclude) with the fewest requests in flight."""
    if deployment.status not in SERVING:
        return None
    ready = [
        r
        for r in deployment.replicas
        if r.status is InstanceStatus.DEPLOYED and r.replica_id not in exclude
    ]
    return min(ready, key=lambda r: r.outstanding, default=None)


class Router:
    """Sends requests to a deployment's replicas (see the module's docstring)."""

    def __init__(
        self,
        idle: IdleUnloader,
        engine_failed: Callable[[], None],
        log: logging.Logger,
        max_requests: int = 0,
    ):
        self.idle = idle
        self.engine_failed = engine_failed  # a replica failed a request: check the engines now
        self.log = log
        self.max_requests = max_requests  # per deployment; 0: no limit
        self._waiting: dict[str, int] = {}  # per deployment: requests waiting for it to load

    @contextlib.asynccontextmanager
    async def send(
        self, deployment: Deployment, send: Callable[[Replica], Awaitable[httpx.Response]]
    ) -> AsyncIterator[httpx.Response]:
        """Send a request with send(replica) and hold the replica while the response is read;
        RouteRefused when none can take it."""
        name = deployment.name
        in_flight = deployment.in_flight + self._waiting.get(name, 0)
        if self.max_requests and in_flight >= self.max_requests:
            raise RouteRefused(
                429,
                f"'{deployment.name}' already has {in_flight} requests in flight, its limit "
                f"(c.KzApp.max_requests_per_deployment): retry in a moment.",
                "rate_limit_error", "too_many_requests", RETRY_AFTER_SECONDS,
            )  # fmt: skip
        idle = self.idle
        if deployment.status is DeploymentStatus.UNLOADED or idle.is_loading(name):
            # An idle-unloaded deployment: load it, then answer. The requests waiting for the
            # load count against the limit as those at a replica do.
            self._waiting[name] = self._waiting.get(name, 0) + 1
            try:
                await idle.load(deployment)
            finally:
                self._waiting[name] -= 1
        idle.touch(deployment)
        # no await from here until the replica counts the request (in _connect)
        replica, upstream = await self._connect(deployment, send)
        try:
            yield upstream
        finally:
            replica.outstanding -= 1
            idle.touch(deployment)

    async def _connect(
        self, deployment: Deployment, send: Callable[[Replica], Awaitable[httpx.Response]]
    ) -> tuple[Replica, httpx.Response]:
        """The replica that answered and its response (its request counted in flight)."""
        refused: set[str] = set()
        attempts: dict[str, int] = {}
        while True:
            replica = pick_replica(deployment, refused)
            if replica is None:
                raise RouteRefused(
                    503,
                    f"'{deployment.name}' is {deployment.status.value}, not ready for traffic.",
                    "server_error", "deployment_not_ready",
                )  # fmt: skip
            replica.outstanding += 1
            try:
                return replica, await send(replica)
            except httpx.TransportError as error:
                replica.outstanding -= 1
                tries = attempts[replica.replica_id] = attempts.get(replica.replica_id, 0) + 1
                if isinstance(error, DROPPED) and tries <= DROPPED_RETRIES:
                    # The engine closed or reset a connection before answering (a kept-alive
                    # one as it was reused, or a new one its listen queue could not hold):
                    # the request got no answer. Again, after a short pause; completions have
                    # no side effects.
                    self.log.info("engine dropped a connection (%r): again", error)
                    await asyncio.sleep(RETRY_PAUSE * (tries - 1))
                    continue
                self.engine_failed()
                if not isinstance(error, httpx.TimeoutException):
                    # The replica failed before any answer (refused, or a pooled connection to
                    # a dead engine): completions have no side effects, so another replica
                    # may take the request.
                    refused.add(replica.replica_id)
                    continue
                raise RouteRefused(
                    502, f"The engine did not answer: {error}", "server_error", "engine_unreachable"
                ) from None
