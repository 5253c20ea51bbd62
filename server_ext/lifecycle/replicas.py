"""Replica mechanics for the controller: place, probe until ready, explain a failure, release."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx

from kz_jupyter.engines.pool import PlacementError, RayPool, ReplicaHandle
from kz_jupyter.log_issues import classify_log_lines, issue_lines
from kz_jupyter.planning.engine_contract import get_engine
from kz_jupyter.planning.plan import Plan
from kz_jupyter.server_ext.lifecycle.records import Deployment, Replica
from kz_jupyter.states import DeploymentStatus, ErrorCode, InstanceStatus

LOG = logging.getLogger("kz_jupyter")
PROBE_INTERVAL = 0.05  # a refused connection costs nothing; a late DEPLOYED costs the user
EXIT_CHECK_INTERVAL = 1.0
READY_POST_TIMEOUT = 60.0  # a one-token generation: it waits for the model to load
FINAL_LOG_LINES = 500


class EngineFailure(Exception):
    """An engine that exited or never became ready, with its lifecycle error code."""

    def __init__(self, code: ErrorCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class ReplicaSettings:
    """How replicas are started and probed."""

    state_dir: Path
    startup_timeout: float = 300.0
    num_cpus: float = 1.0


class ReplicaRunner:
    """Starts, probes and stops replicas through the Ray pool, off the event loop."""

    def __init__(self, pool: RayPool, settings: ReplicaSettings):
        self.pool = pool
        self.settings = settings
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="kz-replicas")
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(5.0))

    async def blocking(self, func: Callable, *args, **kwargs):
        """Run blocking work (Ray calls, file reads) off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(func, *args, **kwargs))

    def log_path(self, deployment: Deployment, replica: Replica) -> Path:
        """Where a replica's engine log is kept (appended to across restarts)."""
        return self.settings.state_dir / "logs" / deployment.name / f"{replica.replica_id}.log"

    async def start(self, deployment: Deployment, plan: Plan, replica: Replica) -> None:
        """Have Ray place the replica's actor and start its engine.

        If the caller is cancelled meanwhile, the start is let finish and what it started is
        stopped, so no actor or engine is ever orphaned.
        """
        replica.status = InstanceStatus.REQUESTED
        loop = asyncio.get_running_loop()
        starting = loop.run_in_executor(
            self._executor,
            partial(
                self.pool.start_replica,
                plan.engine,
                plan,
                deployment.name,
                self.log_path(deployment, replica),
                self.settings.num_cpus,
            ),
        )
        try:
            handle: ReplicaHandle = await asyncio.shield(starting)
        except asyncio.CancelledError:
            handle = await starting
            await self.blocking(self.pool.stop_replica, handle)
            raise
        self._adopt(replica, handle)

    async def restart(self, deployment: Deployment, plan: Plan, replica: Replica) -> None:
        """Start a new engine for a replica whose engine died: in its actor if that still
        lives (fast: no new Ray worker), else in a newly placed actor."""
        if replica.handle is not None:
            try:
                handle = await self.blocking(
                    self.pool.restart_engine, replica.handle, plan.engine, plan, deployment.name
                )
            except PlacementError:
                await self.release(deployment, replica)
            else:
                self._adopt(replica, handle)
                return
        await self.start(deployment, plan, replica)

    @staticmethod
    def _adopt(replica: Replica, handle: ReplicaHandle) -> None:
        """Record where a replica's engine now runs."""
        replica.status = InstanceStatus.REQUESTED
        replica.handle = handle
        replica.endpoint = handle.info["endpoint"]
        replica.pid = handle.info["pid"]
        replica.node_id = handle.info["node_id"]
        replica.actor_name = handle.info["actor_name"]

    async def reattach(self, replica: Replica) -> bool:
        """Take back a replica whose actor and engine outlived the server; False if gone."""
        if not replica.actor_name:
            return False
        handle = await self.blocking(self.pool.find_replica, replica.actor_name)
        if handle is None:
            return False
        self._adopt(replica, handle)
        return True

    async def release_handle(self, replica: Replica) -> None:
        """Stop a replica's engine and actor without keeping its log (server shutdown)."""
        if replica.handle is not None:
            handle, replica.handle = replica.handle, None
            await self.blocking(self.pool.stop_replica, handle)

    async def wait_ready(self, plan: Plan, replica: Replica) -> None:
        """Probe the engine every PROBE_INTERVAL until it answers (DEPLOYED), exits
        (EngineFailure), or the startup timeout passes."""
        url = replica.endpoint + replica.handle.info["readiness_path"]
        body = replica.handle.info.get("readiness_body")
        deadline = time.monotonic() + self.settings.startup_timeout
        next_exit_check = 0.0
        while time.monotonic() < deadline:
            if await self._answers(url, body):
                replica.status = InstanceStatus.DEPLOYED
                return
            if time.monotonic() >= next_exit_check:
                returncode = await self.blocking(self.pool.returncode, replica.handle)
                if returncode is not None:
                    raise await self.failure_of(plan, replica, returncode)
                next_exit_check = time.monotonic() + EXIT_CHECK_INTERVAL
            await asyncio.sleep(PROBE_INTERVAL)
        raise EngineFailure(
            ErrorCode.STARTUP_TIMEOUT,
            f"{plan.engine} was not ready after {self.settings.startup_timeout:g} s.",
        )

    async def _answers(self, url: str, body: dict | None) -> bool:
        """Tell whether the engine answers its readiness probe (a GET, or a POST of body)."""
        try:
            if body is None:
                response = await self._http.get(url)
            else:
                response = await self._http.post(url, json=body, timeout=READY_POST_TIMEOUT)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def returncode(self, replica: Replica) -> int | None:
        """The replica's engine exit status, or None while it runs."""
        return await self.blocking(self.pool.returncode, replica.handle)

    async def failure_of(self, plan: Plan, replica: Replica, returncode: int) -> EngineFailure:
        """Explain an engine that exited: error code from its log, message from its last lines."""
        lines = await self.blocking(self.pool.tail, replica.handle, FINAL_LOG_LINES)
        patterns = get_engine(plan.engine).log_patterns
        code = classify_log_lines(lines, patterns) or ErrorCode.CONTAINER_EXITED
        issues = issue_lines(lines, patterns)
        detail = issues[-1][2].strip() if issues else (lines[-1].strip() if lines else "")
        message = f"{plan.engine} exited with status {returncode}"
        return EngineFailure(code, f"{message}: {detail}" if detail else f"{message}.")

    async def release(self, deployment: Deployment, replica: Replica) -> None:
        """Stop one replica's engine and actor, keeping the end of its log."""
        if replica.handle is None:
            return
        handle, replica.handle = replica.handle, None
        deployment.final_logs[replica.replica_id] = await self.blocking(
            self.pool.tail, handle, FINAL_LOG_LINES
        )
        await self.blocking(self.pool.stop_replica, handle)
        replica.status = InstanceStatus.STOPPED

    async def follow(self, replica: Replica, offset: int | None) -> tuple[int, list[str]]:
        """Log lines of a running replica written after offset (None: from now)."""
        return await self.blocking(self.pool.follow, replica.handle, offset)

    async def tail(self, replica: Replica, lines: int) -> list[str]:
        """The last lines of a running replica's engine log."""
        return await self.blocking(self.pool.tail, replica.handle, lines)

    async def refill_spares(self, deployments: Iterable[Deployment]) -> None:
        """Replace the spare actors handed out, once no engine is starting or answering: a new
        Ray worker takes a second of CPU, which must not slow what a user waits for."""
        if not self.pool.spares_short:
            return  # nothing to replace: no thread hop on every tick of the monitor
        starting = (DeploymentStatus.DEPLOYING, DeploymentStatus.INITIALIZING)
        for deployment in deployments:
            if deployment.status in starting or any(r.outstanding for r in deployment.replicas):
                return
        try:
            await self.blocking(self.pool.refill_spares)
        except Exception:  # no spare costs speed only: the monitor calling this must go on
            LOG.exception("kz: starting a spare replica actor failed")

    async def close(self) -> None:
        """Release the HTTP client, the spare actors and the worker threads."""
        await self._http.aclose()
        await self.blocking(self.pool.close)
        self._executor.shutdown(wait=False)

    async def launch(self, deployment: Deployment, plan: Plan) -> None:
        """Start the engine of each of the deployment's replicas and wait until all are ready."""
        await asyncio.gather(*(self.start(deployment, plan, r) for r in deployment.replicas))
        deployment.transition(DeploymentStatus.INITIALIZING, "engine started, loading")
        await asyncio.gather(*(self.wait_ready(plan, r) for r in deployment.replicas))

    async def release_all(self, deployment: Deployment) -> None:
        """Stop every replica of a deployment, keeping the end of each log."""
        for replica in deployment.replicas:
            await self.release(deployment, replica)

    async def release_and_fail(
        self, deployment: Deployment, error: Exception, message: str | None = None
    ) -> None:
        """Stop every replica, then mark the deployment FAILED with the error's code (an engine
        failure's own, else RUNTIME_ERROR) and message (or the one given)."""
        await self.release_all(deployment)
        code = error.code if isinstance(error, EngineFailure) else ErrorCode.RUNTIME_ERROR
        deployment.fail(code, message or str(error))
