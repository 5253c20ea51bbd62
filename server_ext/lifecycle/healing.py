"""Healing: a monitor that notices serving engines that died and restarts them (bounded, with
backoff; FAILED with the engine's error code when they keep failing), and that unloads
deployments idle for longer than their keep_alive."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kz_jupyter.engines.pool import PlacementError
from kz_jupyter.server_ext.lifecycle.idle import IdleUnloader
from kz_jupyter.server_ext.lifecycle.records import Deployment, Replica
from kz_jupyter.server_ext.lifecycle.replicas import EngineFailure, ReplicaRunner
from kz_jupyter.states import DeploymentStatus, ErrorCode, InstanceStatus

MONITOR_INTERVAL = 1.0


@dataclass(frozen=True)
class HealingPolicy:
    """How a deployment whose engine died is healed: bounded restarts, exponential backoff."""

    max_restarts: int = 3
    backoff: float = 1.0
    backoff_max: float = 30.0
    drain_timeout: float = 30.0

    def delays(self) -> list[float]:
        """The wait before each restart attempt."""
        return [min(self.backoff * 2**n, self.backoff_max) for n in range(self.max_restarts)]


class Healer:
    """The liveness monitor and the restarts it starts (see the module's docstring)."""

    def __init__(
        self,
        runner: ReplicaRunner,
        policy: HealingPolicy,
        idle: IdleUnloader,
        deployments: Callable[[], Iterable[Deployment]],
    ):
        self.runner = runner
        self.policy = policy
        self.idle = idle
        self.deployments = deployments
        self._tasks: dict[str, asyncio.Task] = {}  # replica id -> its healing
        self._monitor: asyncio.Task | None = None
        self._wake = asyncio.Event()

    def check_now(self) -> None:
        """Wake the monitor (the proxy saw a replica fail a request)."""
        self._wake.set()

    def start(self) -> None:
        """Start the liveness monitor once."""
        if self._monitor is None or self._monitor.done():
            self._monitor = asyncio.create_task(self._monitor_loop())

    async def _monitor_loop(self) -> None:
        """Notice engines that die after DEPLOYED and start healing them; unload the idle;
        replace the spare actors used, once all is quiet."""
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), MONITOR_INTERVAL)
            self._wake.clear()
            for deployment in list(self.deployments()):
                if deployment.status in (DeploymentStatus.DEPLOYED, DeploymentStatus.ERROR):
                    await self._check_replicas(deployment)
                if deployment.status is DeploymentStatus.DEPLOYED:
                    await self.idle.unload_if_idle(deployment)
            await self.runner.refill_spares(list(self.deployments()))

    async def _check_replicas(self, deployment: Deployment) -> None:
        """Start healing each serving replica whose engine has exited."""
        for replica in deployment.replicas:
            if (
                replica.handle is None
                or replica.status is not InstanceStatus.DEPLOYED
                or replica.replica_id in self._tasks
            ):
                continue
            returncode = await self.runner.returncode(replica)
            if returncode is None:
                continue
            replica.status = InstanceStatus.FAILED
            failure = await self.runner.failure_of(deployment.plan, replica, returncode)
            task = asyncio.create_task(self._heal(deployment, replica, failure))
            self._tasks[replica.replica_id] = task
            task.add_done_callback(lambda _, key=replica.replica_id: self._tasks.pop(key, None))

    async def _heal(self, deployment: Deployment, replica: Replica, failure: EngineFailure):
        """Restart a dead replica with backoff; FAILED with the code when it keeps failing."""
        plan = deployment.plan
        delays = self.policy.delays()
        for attempt, delay in enumerate(delays, start=1):
            deployment.error_code, deployment.error_message = failure.code, failure.message
            deployment.transition(
                DeploymentStatus.ERROR,
                f"{failure.code.value}: {replica.replica_id}: {failure.message} "
                f"(restart {attempt}/{len(delays)} in {delay:.0f} s)",
            )
            await asyncio.sleep(delay)
            try:
                await self.runner.restart(deployment, plan, replica)
                await self.runner.wait_ready(plan, replica)
            except EngineFailure as error:
                failure = error
                continue
            except PlacementError as error:
                failure = EngineFailure(ErrorCode.RUNTIME_ERROR, str(error))
                continue
            replica.restarts += 1
            if all(r.status is InstanceStatus.DEPLOYED for r in deployment.replicas):
                deployment.error_code, deployment.error_message = None, ""
                deployment.transition(DeploymentStatus.DEPLOYED, f"{replica.replica_id} restarted")
            return
        await self.runner.release_and_fail(
            deployment, failure, f"{failure.message} (still failing after {len(delays)} restarts)"
        )

    async def cancel(self, deployment: Deployment) -> None:
        """Stop healing the replicas of a deployment (it is being stopped)."""
        tasks = [self._tasks.get(r.replica_id) for r in deployment.replicas]
        for task in filter(None, tasks):
            task.cancel()
        await asyncio.gather(*filter(None, tasks), return_exceptions=True)

    async def close(self) -> None:
        """End the monitor and every healing under way (server shutdown)."""
        tasks = [*filter(None, [self._monitor]), *self._tasks.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
