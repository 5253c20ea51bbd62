"""The controller: owns deployment records and drives each through its lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from kz_jupyter.engines.pool import PlacementError
from kz_jupyter.hardware import probe_hardware
from kz_jupyter.model_files import ModelNotFoundError, locate_model
from kz_jupyter.planner import Plan, PlanError, plan_deployment
from kz_jupyter.references import ModelReferenceError, parse_reference
from kz_jupyter.server_ext.records import NAME_PATTERN, Deployment, Replica
from kz_jupyter.server_ext.replicas import EngineFailure, ReplicaRunner
from kz_jupyter.states import DeploymentStatus, ErrorCode, InstanceStatus

MONITOR_INTERVAL = 1.0
DRAIN_POLL = 0.1
FOLLOW_POLL = 0.5


class DeployRequestError(ValueError):
    """A deploy request that cannot be accepted; `status` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class DeployRequest:
    """What a user asked to deploy."""

    model: str
    name: str
    engine: str | None = None
    context_length: int | None = None
    replicas: int = 1


def parse_deploy_request(body: object) -> DeployRequest:
    """Validate a POST body into a DeployRequest, or raise DeployRequestError saying why."""
    if not isinstance(body, dict):
        raise DeployRequestError('The body must be a JSON object like {"model": "smollm2"}.')
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise DeployRequestError("'model' is required: a local path, pip-shipped model or repo id.")
    try:
        reference = parse_reference(model)
    except ModelReferenceError as error:
        raise DeployRequestError(str(error)) from None
    name = body.get("name") or reference.short_name
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise DeployRequestError(
            f"Invalid deployment name {name!r}: use lowercase letters, digits, '.', '_' or '-' "
            "(at most 63 characters, starting with a letter or digit)."
        )
    engine = body.get("engine")
    if engine is not None and not isinstance(engine, str):
        raise DeployRequestError("'engine' must be a string such as 'llamacpp'.")
    context = body.get("context_length")
    if context is not None and (
        not isinstance(context, int) or isinstance(context, bool) or not 64 <= context <= 1_048_576
    ):
        raise DeployRequestError("'context_length' must be an integer from 64 to 1048576.")
    replicas = body.get("replicas", 1)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or not 1 <= replicas <= 16:
        raise DeployRequestError("'replicas' must be an integer from 1 to 16.")
    return DeployRequest(
        model=model.strip(), name=name, engine=engine, context_length=context, replicas=replicas
    )


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


class Controller:
    """Keeps deployment records and drives each through its lifecycle, healing what it can."""

    def __init__(
        self,
        runner: ReplicaRunner,
        healing: HealingPolicy | None = None,
        log: logging.Logger | None = None,
    ):
        self.runner = runner
        self.healing = healing or HealingPolicy()
        self.log = log or logging.getLogger("kz_jupyter")
        self.deployments: dict[str, Deployment] = {}
        self._tasks: dict[str, asyncio.Task] = {}
        self._healers: dict[str, asyncio.Task] = {}
        self._monitor: asyncio.Task | None = None
        self._wake = asyncio.Event()

    def list(self) -> list[Deployment]:
        """Return every deployment record, newest first."""
        return sorted(self.deployments.values(), key=lambda d: d.created_at, reverse=True)

    def get(self, name: str) -> Deployment | None:
        """Return the deployment called name, if any."""
        return self.deployments.get(name)

    async def deploy(self, request: DeployRequest) -> Deployment:
        """Record a deployment as REQUESTED and start driving it in the background."""
        existing = self.deployments.get(request.name)
        if existing is not None and existing.status.is_active:
            raise DeployRequestError(
                f"A deployment named '{request.name}' is already {existing.status.value}: "
                "stop it first or choose another name with --name.",
                status=409,
            )
        deployment = Deployment(name=request.name, model=request.model)
        deployment.transition(DeploymentStatus.REQUESTED, f"deploy {request.model}")
        self.deployments[request.name] = deployment
        self._track(self._tasks, request.name, self._drive(deployment, request))
        self._ensure_monitor()
        return deployment

    @staticmethod
    def _track(tasks: dict[str, asyncio.Task], key: str, coroutine) -> None:
        """Run coroutine as a task kept in tasks under key until it ends."""
        task = asyncio.create_task(coroutine)
        tasks[key] = task
        task.add_done_callback(lambda _: tasks.pop(key, None))

    async def _drive(self, deployment: Deployment, request: DeployRequest) -> None:
        """Resolve, plan, place and probe until DEPLOYED or a failure is recorded."""
        try:
            plan = await self.runner.blocking(self._plan, request)
            deployment.plan = plan.to_dict()
            deployment.transition(
                DeploymentStatus.DEPLOYING, f"{plan.engine}: {plan.engine_reason}"
            )
            deployment.replicas = [
                Replica(replica_id=f"{deployment.name}-{index}") for index in range(plan.replicas)
            ]
            await asyncio.gather(
                *(self.runner.start(deployment, plan, r) for r in deployment.replicas)
            )
            deployment.transition(DeploymentStatus.INITIALIZING, "engine started, loading")
            await asyncio.gather(*(self.runner.wait_ready(plan, r) for r in deployment.replicas))
            deployment.transition(DeploymentStatus.DEPLOYED, "ready")
        except (ModelNotFoundError, PlanError) as error:
            deployment.fail(error.code, str(error))
        except PlacementError as error:
            await self._release_all(deployment)
            deployment.fail(ErrorCode.RUNTIME_ERROR, str(error))
        except EngineFailure as failure:
            await self._release_all(deployment)
            deployment.fail(failure.code, failure.message)
        except asyncio.CancelledError:
            await self._release_all(deployment)
            raise
        except Exception as error:  # an unexpected bug must still leave a true state
            self.log.exception("deploy of %s failed", deployment.name)
            await self._release_all(deployment)
            deployment.fail(ErrorCode.RUNTIME_ERROR, f"{type(error).__name__}: {error}")

    def _plan(self, request: DeployRequest) -> Plan:
        """Resolve the model reference and plan the deployment (blocking: reads files)."""
        reference = parse_reference(request.model)
        located = locate_model(reference)
        return plan_deployment(
            request.model,
            located,
            probe_hardware(),
            engine=request.engine,
            context_length=request.context_length,
            replicas=request.replicas,
        )

    async def _release_all(self, deployment: Deployment) -> None:
        """Stop every replica of a deployment, keeping the end of each log."""
        for replica in deployment.replicas:
            await self.runner.release(deployment, replica)

    async def _heal(self, deployment: Deployment, replica: Replica, failure: EngineFailure):
        """Restart a dead replica with backoff; FAILED with the code when it keeps failing."""
        plan = Plan.from_dict(deployment.plan)
        delays = self.healing.delays()
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
        await self._release_all(deployment)
        deployment.fail(
            failure.code, f"{failure.message} (still failing after {len(delays)} restarts)"
        )

    async def stop(self, name: str) -> Deployment | None:
        """Stop a deployment: cancel its startup or healing, drain, end its engines."""
        deployment = self.deployments.get(name)
        if deployment is None:
            return None
        tasks = [self._tasks.get(name)] + [
            self._healers.get(r.replica_id) for r in deployment.replicas
        ]
        for task in filter(None, tasks):
            task.cancel()
        await asyncio.gather(*filter(None, tasks), return_exceptions=True)
        await self._drain(deployment)
        await self._release_all(deployment)
        if deployment.status.is_active:
            deployment.transition(DeploymentStatus.STOPPED, "stopped by request")
        return deployment

    async def _drain(self, deployment: Deployment) -> None:
        """Take replicas out of routing, then let in-flight requests finish (bounded)."""
        for replica in deployment.replicas:
            if replica.status is InstanceStatus.DEPLOYED:
                replica.status = InstanceStatus.STOPPED
        deadline = time.monotonic() + self.healing.drain_timeout
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

    def route(self, name: str, exclude: frozenset[str] | set[str] = frozenset()) -> Replica | None:
        """Pick the DEPLOYED replica of name (not in exclude) with the fewest outstanding."""
        deployment = self.deployments.get(name)
        if deployment is None or deployment.status not in (
            DeploymentStatus.DEPLOYED,
            DeploymentStatus.ERROR,
        ):
            return None
        ready = [
            r
            for r in deployment.replicas
            if r.status is InstanceStatus.DEPLOYED and r.replica_id not in exclude
        ]
        return min(ready, key=lambda r: r.outstanding, default=None)

    def check_now(self) -> None:
        """Wake the monitor (the proxy saw a replica fail a request)."""
        self._wake.set()

    def _ensure_monitor(self) -> None:
        """Start the liveness monitor once."""
        if self._monitor is None or self._monitor.done():
            self._monitor = asyncio.create_task(self._monitor_loop())

    async def _monitor_loop(self) -> None:
        """Notice engines that die after DEPLOYED and start healing them."""
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), MONITOR_INTERVAL)
            self._wake.clear()
            for deployment in list(self.deployments.values()):
                if deployment.status in (DeploymentStatus.DEPLOYED, DeploymentStatus.ERROR):
                    await self._check_replicas(deployment)

    async def _check_replicas(self, deployment: Deployment) -> None:
        """Start healing each serving replica whose engine has exited."""
        for replica in deployment.replicas:
            if (
                replica.handle is None
                or replica.status is not InstanceStatus.DEPLOYED
                or replica.replica_id in self._healers
            ):
                continue
            returncode = await self.runner.returncode(replica)
            if returncode is None:
                continue
            replica.status = InstanceStatus.FAILED
            failure = await self.runner.failure_of(
                Plan.from_dict(deployment.plan), replica, returncode
            )
            self._track(self._healers, replica.replica_id, self._heal(deployment, replica, failure))

    async def shutdown(self) -> None:
        """Stop every deployment (server shutdown): no engine may outlive the controller."""
        if self._monitor is not None:
            self._monitor.cancel()
            await asyncio.gather(self._monitor, return_exceptions=True)
        for name in list(self.deployments):
            await self.stop(name)
        await self.runner.close()
