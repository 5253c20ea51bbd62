"""Idle unload: a deployment unused for longer than its keep_alive gives its memory back
(UNLOADED, no engine runs); the next request to it loads it again and waits meanwhile."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from kz_jupyter.engines.pool import PlacementError
from kz_jupyter.planning.plan import Plan
from kz_jupyter.server_ext.lifecycle.records import Deployment, Replica
from kz_jupyter.server_ext.lifecycle.replicas import EngineFailure, ReplicaRunner
from kz_jupyter.server_ext.lifecycle.room import RoomError
from kz_jupyter.states import DeploymentStatus, ErrorCode, InstanceStatus

KEEP_FOREVER = -1
# Holds room for a deployment's plan while its engines start (RoomError when there is none).
Admission = Callable[[Deployment, Plan], AbstractAsyncContextManager[None]]


class IdleUnloader:
    """Unloads idle deployments and loads them again on demand."""

    def __init__(
        self,
        runner: ReplicaRunner,
        admitted: Admission,
        default_keep_alive: int = KEEP_FOREVER,
    ):
        self.runner = runner
        self.default_keep_alive = default_keep_alive
        self.admitted = admitted
        self._loading: dict[str, asyncio.Task] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, name: str) -> asyncio.Lock:
        """The lock that keeps an unload and a load of one deployment apart."""
        return self._locks.setdefault(name, asyncio.Lock())

    def keep_alive_for(self, requested: int | None) -> int:
        """Seconds a deployment stays loaded without requests (-1: forever)."""
        return self.default_keep_alive if requested is None else requested

    @staticmethod
    def touch(deployment: Deployment) -> None:
        """Note that a request used the deployment now."""
        deployment.last_used = time.time()

    async def unload_if_idle(self, deployment: Deployment) -> None:
        """Unload a DEPLOYED deployment idle for longer than its keep_alive."""
        keep_alive = deployment.keep_alive
        if keep_alive < 0 or any(r.outstanding for r in deployment.replicas):
            return
        idle = time.time() - deployment.last_used
        if idle < keep_alive:
            return
        await self.unload(
            deployment,
            f"idle for {idle:.0f} s (keep_alive {keep_alive} s): engine unloaded; "
            "the next request loads it again",
        )

    async def unload(self, deployment: Deployment, detail: str) -> None:
        """Unload a deployment now (UNLOADED, saying why in detail); a request loads it again."""
        async with self._lock(deployment.name):
            if deployment.status is not DeploymentStatus.DEPLOYED:
                return  # stopped, or unloaded meanwhile
            # UNLOADED first, with no await before: a request arriving now waits for a load
            # (which waits for this lock) instead of reaching a replica being stopped.
            replicas = list(deployment.replicas)
            for replica in replicas:
                replica.status = InstanceStatus.STOPPED
            deployment.transition(DeploymentStatus.UNLOADED, detail)
            for replica in replicas:
                await self.runner.release(deployment, replica)

    async def cancel(self, name: str) -> None:
        """Cancel a load under way (the deployment is being stopped)."""
        task = self._loading.get(name)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def is_loading(self, name: str) -> bool:
        """True while a deployment is being loaded again."""
        return name in self._loading

    async def load(self, deployment: Deployment) -> None:
        """Load an UNLOADED deployment again (or wait for the load under way)."""
        task = self._loading.get(deployment.name)
        if task is None:
            if deployment.status is not DeploymentStatus.UNLOADED:
                return
            task = asyncio.create_task(self._load(deployment))
            self._loading[deployment.name] = task
            task.add_done_callback(lambda _: self._loading.pop(deployment.name, None))
        await asyncio.shield(task)

    async def _load(self, deployment: Deployment) -> None:
        """Start fresh replicas with the deployment's plan; DEPLOYED, or FAILED with the code."""
        async with self._lock(deployment.name):
            await self._start_again(deployment)

    async def _start_again(self, deployment: Deployment) -> None:
        """Start fresh replicas with the deployment's plan; DEPLOYED, or FAILED with the code."""
        plan = deployment.plan
        started = time.monotonic()
        deployment.transition(DeploymentStatus.DEPLOYING, "a request arrived: loading again")
        deployment.replicas = [
            Replica(replica_id=f"{deployment.name}-{index}") for index in range(plan.replicas)
        ]
        try:
            async with self.admitted(deployment, plan):
                await self.runner.launch(deployment, plan)
        except RoomError as error:
            deployment.fail(ErrorCode.OOM, f"could not be loaded again: {error}")
            return
        except (EngineFailure, PlacementError) as error:
            await self.runner.release_and_fail(
                deployment, error, f"could not be loaded again: {error}"
            )
            return
        deployment.transition(
            DeploymentStatus.DEPLOYED, f"loaded again in {time.monotonic() - started:.1f} s"
        )
