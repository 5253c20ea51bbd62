"""The controller: owns deployment records and drives each through its lifecycle."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from kz_jupyter.deploy_options import visibility
from kz_jupyter.engines.pool import PlacementError
from kz_jupyter.models.hub import HubError, HubSettings
from kz_jupyter.models.local_files import ModelNotFoundError
from kz_jupyter.models.references import pip_shipped_models
from kz_jupyter.models.sources import ModelSource
from kz_jupyter.planning.engine_environments import EngineEnvironments
from kz_jupyter.planning.hardware import probe_hardware
from kz_jupyter.planning.memory import human_bytes
from kz_jupyter.planning.plan import Plan
from kz_jupyter.planning.planner import SLOT_LADDER, PlanError
from kz_jupyter.planning.provisioning import fetch, plan_resolved
from kz_jupyter.server_ext.lifecycle.deploy_request import (
    DeployRequest,
    DeployRequestError,
    parse_deploy_request,
)
from kz_jupyter.server_ext.lifecycle.healing import Healer, HealingPolicy
from kz_jupyter.server_ext.lifecycle.idle import IdleUnloader
from kz_jupyter.server_ext.lifecycle.records import Deployment, Replica
from kz_jupyter.server_ext.lifecycle.replicas import EngineFailure, ReplicaRunner
from kz_jupyter.server_ext.lifecycle.room import (
    HardwareView,
    Room,
    RoomError,
    RoomSettings,
    unloadable_by,
)
from kz_jupyter.server_ext.lifecycle.routing import Router
from kz_jupyter.server_ext.lifecycle.store import DeploymentStore
from kz_jupyter.states import DeploymentStatus, ErrorCode, InstanceStatus

Planned = tuple[Plan, ModelSource]
DRAIN_POLL = 0.1
FOLLOW_POLL = 0.5


class Controller:
    """Keeps deployment records and drives each through its lifecycle, healing what it can."""

    def __init__(
        self,
        runner: ReplicaRunner,
        healing: HealingPolicy | None = None,
        log: logging.Logger | None = None,
        hub_settings: Callable[[], HubSettings] = HubSettings.from_env,
        model_roots: tuple[str, ...] = (),
        store: DeploymentStore | None = None,
        keep_alive: int = -1,
        environments: EngineEnvironments | None = None,
        max_requests: int = 0,
        room: RoomSettings | None = None,
        audit: Callable[..., None] | None = None,
    ):
        self.runner = runner
        self.environments = environments or EngineEnvironments()
        self.hub_settings = hub_settings
        self.model_roots = model_roots
        self.store = store
        self.audit = audit
        self.idle = IdleUnloader(runner, self.admitted, keep_alive)
        self.deployments: dict[str, Deployment] = {}
        self.room = Room(room or RoomSettings(), self.deployments.values, self.idle.unload)
        policy = healing or HealingPolicy()
        self.healer = Healer(runner, policy, self.idle, self.deployments.values)
        self.log = log or logging.getLogger("kz_jupyter")
        self.router = Router(self.idle, self.healer.check_now, self.log, max_requests)
        self._tasks: dict[str, asyncio.Task] = {}

    def warm_up(self) -> None:
        """Do ahead (blocking, on a thread of its own) what a first deploy would wait for:
        find the pip-shipped models, start Ray and the spare replica actors."""
        pip_shipped_models()
        self.runner.pool.warm_up()

    def list(self) -> list[Deployment]:
        """Return every deployment record, newest first."""
        return sorted(self.deployments.values(), key=lambda d: d.created_at, reverse=True)

    def serving(self, model: str) -> Deployment | None:
        """The deployment a request's `model` names: a deployment, or `deployment/adapter`
        for one of its LoRA adapters."""
        deployment = self.get(model)
        if deployment is None and "/" in model:
            base, adapter = model.split("/", 1)
            deployment = self.get(base)
            if deployment is None or adapter not in deployment.adapters():
                return None
        return deployment

    def get(self, name: str) -> Deployment | None:
        """Return the deployment called name, if any."""
        return self.deployments.get(name)

    async def deploy(
        self,
        request: DeployRequest,
        owner: str = "",
        planned: Planned | None = None,
        admin: bool = False,
    ) -> Deployment:
        """Record a deployment of owner (an admin, or not) as REQUESTED and start driving it in
        the background (with its plan when the caller already made it).

        A stopped or failed deployment of the same name is replaced, by its owner only."""
        existing = self.deployments.get(request.name)
        if existing is not None and existing.owner not in ("", owner):
            raise DeployRequestError(
                f"The name '{request.name}' is taken by another user's deployment: choose "
                "another name with --name.",
                status=409,
            )
        if existing is not None and existing.status.is_active:
            raise DeployRequestError(
                f"A deployment named '{request.name}' is already {existing.status.value}: "
                "stop it first or choose another name with --name.",
                status=409,
            )
        options = request.options
        deployment = Deployment(
            name=request.name, model=options.model, owner=owner, shared_with=list(options.share)
        )
        deployment.request = options.to_body()
        deployment.keep_alive = self.idle.keep_alive_for(options.keep_alive)
        deployment.pinned = options.pin
        self.keep(deployment)
        deployment.transition(DeploymentStatus.REQUESTED, f"deploy {options.model}")
        self.track_task(deployment.name, self.run_deploy(deployment, request, planned, admin))
        return deployment

    def keep(self, deployment: Deployment) -> None:
        """Hold a deployment record, persisting it at every change."""
        if self.store is not None:
            deployment.on_change = self.store.save
        self.deployments[deployment.name] = deployment

    def track_task(self, name: str, coroutine) -> None:
        """Run a deployment's lifecycle work in the background (stop cancels it)."""
        task = asyncio.create_task(coroutine)
        self._tasks[name] = task
        task.add_done_callback(lambda _: self._tasks.pop(name, None))
        self.healer.start()

    async def run_deploy(
        self,
        deployment: Deployment,
        request: DeployRequest,
        planned: Planned | None = None,
        admin: bool = False,
    ) -> None:
        """Plan (unless planned; counting what making room would free), fetch, hold room
        (unloading idle deployments where allowed), place and probe until DEPLOYED or a
        failure is recorded."""
        may_unload = unloadable_by(deployment.owner, admin)
        try:
            view = self.room.planning_view(deployment, may_unload)
            plan, source = planned or await self.runner.blocking(self.plan, request, view)
            deployment.plan = plan
            deployment.transition(
                DeploymentStatus.DEPLOYING, f"{plan.engine}: {plan.engine_reason}"
            )
            deployment.replicas = [
                Replica(replica_id=f"{deployment.name}-{index}") for index in range(plan.replicas)
            ]
            plan = await self._fetch(deployment, plan, source)
            async with self.admitted(deployment, plan, admin):
                await self.runner.launch(deployment, plan)
            deployment.transition(DeploymentStatus.DEPLOYED, "ready")
        except PlanError as error:
            held = self.room.held(deployment, may_unload) if error.code is ErrorCode.OOM else ""
            deployment.fail(error.code, f"{error}{held}")
        except ModelNotFoundError as error:
            deployment.fail(error.code, str(error))
        except RoomError as error:
            deployment.fail(ErrorCode.OOM, str(error))
        except HubError as error:
            deployment.fail(ErrorCode.MODEL_LOADING_FAILURE, str(error))
        except (PlacementError, EngineFailure) as error:
            await self.runner.release_and_fail(deployment, error)
        except asyncio.CancelledError:
            await self.runner.release_all(deployment)
            raise
        except Exception as error:  # an unexpected bug must still leave a true state
            self.log.exception("deploy of %s failed", deployment.name)
            message = f"{type(error).__name__}: {error}"
            await self.runner.release_and_fail(deployment, error, message)

    async def plan_within(
        self, request: DeployRequest, limit: int
    ) -> tuple[DeployRequest, Planned | None]:
        """Plan a request whose memory is limited to limit bytes: one over it only by its
        parallel requests gets fewer (unless the user chose them). The request comes back with
        that number, and its plan; no plan when planning fails (the deploy then fails with its
        own message)."""
        fewer = () if request.options.parallel is not None else SLOT_LADDER
        try:
            planned = await self.runner.blocking(self.plan, request)
            for slots in (n for n in fewer if n < planned[0].parallel):
                if planned[0].memory.get("total", 0) <= limit:
                    break
                request = request.with_options(parallel=slots)
                planned = await self.runner.blocking(self.plan, request)
        except (PlanError, ModelNotFoundError, HubError):
            return request, None
        return request, planned

    @asynccontextmanager
    async def admitted(
        self, deployment: Deployment, plan: Plan, admin: bool = False
    ) -> AsyncIterator[None]:
        """Hold room for a deployment's plan while its engines start, unloading idle
        deployments its owner (or an admin) may unload, and saying so in its history and the
        audit log; RoomError when there is no room."""
        may_unload = unloadable_by(deployment.owner, admin)
        unloaded = await self.room.admit(deployment, plan, may_unload)
        try:
            if unloaded:
                names = ", ".join(f"'{name}'" for name in unloaded)
                deployment.transition(deployment.status, f"made room: unloaded {names}")
            for name in unloaded if self.audit is not None else ():
                self.audit(deployment.owner, "unload", name, made_room_for=deployment.name)
            yield
        finally:
            self.room.release(deployment)

    def plan(self, request: DeployRequest, view: HardwareView | None = None) -> Planned:
        """Plan the request's resolved model (blocking: reads headers, asks the Hub), on the
        machine as view shows it (what deploys under way will take, what making room frees)."""
        hardware = probe_hardware(with_engines=False)
        return plan_resolved(
            request.resolved,
            request.options.model,
            view(hardware) if view is not None else hardware,
            self.hub_settings(),
            request.options,
            self.environments,
        )

    async def _fetch(self, deployment: Deployment, plan: Plan, source: ModelSource) -> Plan:
        """Download what the plan still misses (replicas COPYING_FILES) and verify it."""
        if not source.is_hub:
            return plan
        for replica in deployment.replicas:
            replica.status = InstanceStatus.COPYING_FILES
        if plan.download_bytes:
            deployment.transition(
                DeploymentStatus.DEPLOYING,
                f"downloading {human_bytes(plan.download_bytes)} ({plan.variant})",
            )

        def report(done: int, total: int) -> None:
            deployment.progress = {"done": done, "total": total}

        plan = await self.runner.blocking(fetch, plan, source, report)
        deployment.plan = plan
        deployment.progress = None
        for replica in deployment.replicas:
            replica.status = InstanceStatus.REQUESTED
        return plan

    async def stop(self, name: str) -> Deployment | None:
        """Stop a deployment: cancel its startup or healing, drain, end its engines."""
        deployment = self.deployments.get(name)
        if deployment is None:
            return None
        task = self._tasks.get(name)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self.healer.cancel(deployment)
        await self.idle.cancel(name)
        deployment.wanted = False
        await self._drain(deployment)
        await self.runner.release_all(deployment)
        if deployment.status.is_active or deployment.status is DeploymentStatus.UNLOADED:
            deployment.transition(DeploymentStatus.STOPPED, "stopped by request")
        else:
            deployment.changed()
        return deployment

    async def forget(self, name: str) -> Deployment | None:
        """Stop a deployment (when it runs) and remove its record, from memory and the store."""
        deployment = await self.stop(name)
        if deployment is None:
            return None
        if self.deployments.get(name) is deployment:  # not replaced by a deploy meanwhile
            deployment.on_change = None
            del self.deployments[name]
            self._tasks.pop(name, None)
            if self.store is not None:
                self.store.delete(name)
        return deployment

    async def restart(self, name: str) -> Deployment | None:
        """Stop a deployment (when running) and deploy it again as it was requested; a new
        record, with a fresh history, replaces the old one."""
        deployment = self.deployments.get(name)
        if deployment is None:
            return None
        request = parse_deploy_request(deployment.request, self.model_roots)
        await self.stop(name)
        return await self.deploy(request, owner=deployment.owner)

    def share(self, name: str, shared_with: tuple[str, ...]) -> Deployment:
        """Change who a deployment is shared with (kept for its restarts too)."""
        deployment = self.deployments[name]
        deployment.shared_with = list(shared_with)
        deployment.request = deployment.request | {"share": visibility(shared_with).split(",")}
        deployment.changed()
        return deployment

    async def _drain(self, deployment: Deployment) -> None:
        """Take replicas out of routing, then let in-flight requests finish (bounded)."""
        for replica in deployment.replicas:
            if replica.status is InstanceStatus.DEPLOYED:
                replica.status = InstanceStatus.STOPPED
        deadline = time.monotonic() + self.healer.policy.drain_timeout
        while any(r.outstanding for r in deployment.replicas) and time.monotonic() < deadline:
            await asyncio.sleep(DRAIN_POLL)

    async def logs(self, name: str, lines: int) -> dict[str, list[str]]:
        """Return the last lines of each replica's log (live, or as kept at stop)."""
        deployment = self.deployments[name]
        result = dict(deployment.final_logs)
        for replica in deployment.replicas:
            if replica.handle is not None:
                result[replica.replica_id] = await self.runner.tail(replica, lines)
        return {key: value[-lines:] for key, value in result.items()}

    async def follow_logs(self, name: str, lines: int) -> AsyncIterator[tuple[str, str] | None]:
        """Yield (replica, line): the last lines of each log, then new lines as they are
        written, until the deployment is no longer active; None after each poll round, so a
        consumer can notice its client went away even when nothing is logged."""
        deployment = self.deployments[name]
        for replica, tail in (await self.logs(name, lines)).items():
            for line in tail:
                yield replica, line
        offsets: dict[str, int | None] = {}
        while deployment.status.is_active:
            for replica in deployment.replicas:
                if replica.handle is None:
                    continue
                key = replica.replica_id
                offsets[key], new_lines = await self.runner.follow(replica, offsets.get(key))
                for line in new_lines:
                    yield key, line
            yield None
            await asyncio.sleep(FOLLOW_POLL)

    async def shutdown(self) -> None:
        """Server shutdown: records stay as they are (a restarted server restores them). With
        a local Ray the engines end now; on a cluster they keep serving and are adopted."""
        await self.healer.close()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if not self.runner.pool.engines_outlive_server:
            for deployment in self.deployments.values():
                for replica in deployment.replicas:
                    await self.runner.release_handle(replica)
        if self.store is not None:
            self.store.close()
        await self.runner.close()
