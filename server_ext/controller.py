"""The controller: owns deployment records and drives each through its lifecycle."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx

from kz_jupyter.engine_api import get_engine
from kz_jupyter.engines.pool import PlacementError, RayPool, ReplicaHandle
from kz_jupyter.hardware import probe_hardware
from kz_jupyter.model_files import ModelNotFoundError, locate_model
from kz_jupyter.planner import Plan, PlanError, plan_deployment
from kz_jupyter.references import ModelReferenceError, parse_reference
from kz_jupyter.server_ext.records import NAME_PATTERN, Deployment, Replica
from kz_jupyter.states import (
    DeploymentStatus,
    ErrorCode,
    InstanceStatus,
    classify_log_lines,
    issue_lines,
)

PROBE_INTERVAL = 0.25
MONITOR_INTERVAL = 2.0
FINAL_LOG_LINES = 500


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


class Controller:
    """Keeps deployment records, places replicas through the Ray pool, probes readiness."""

    def __init__(
        self,
        pool: RayPool,
        state_dir: Path,
        startup_timeout: float = 300.0,
        replica_num_cpus: float = 1.0,
        log: logging.Logger | None = None,
    ):
        self.pool = pool
        self.state_dir = state_dir
        self.startup_timeout = startup_timeout
        self.replica_num_cpus = replica_num_cpus
        self.log = log or logging.getLogger("kz_jupyter")
        self.deployments: dict[str, Deployment] = {}
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="kz-controller")
        self._tasks: dict[str, asyncio.Task] = {}
        self._monitor: asyncio.Task | None = None
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(5.0))

    async def _blocking(self, func, *args, **kwargs):
        """Run blocking work (Ray calls, file reads) off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(func, *args, **kwargs))

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
        task = asyncio.create_task(self._drive(deployment, request))
        self._tasks[request.name] = task
        task.add_done_callback(lambda _: self._tasks.pop(request.name, None))
        self._ensure_monitor()
        return deployment

    async def _drive(self, deployment: Deployment, request: DeployRequest) -> None:
        """Resolve, plan, place and probe until DEPLOYED or a failure is recorded."""
        try:
            plan = await self._blocking(self._plan, request)
            deployment.plan = plan.to_dict()
            deployment.transition(
                DeploymentStatus.DEPLOYING, f"{plan.engine}: {plan.engine_reason}"
            )
            deployment.replicas = [
                Replica(replica_id=f"{deployment.name}-{index}") for index in range(plan.replicas)
            ]
            await asyncio.gather(
                *(self._start_replica(deployment, plan, r) for r in deployment.replicas)
            )
            if deployment.status is DeploymentStatus.DEPLOYING:
                deployment.transition(DeploymentStatus.INITIALIZING, "engine started, loading")
            await asyncio.gather(
                *(self._wait_ready(deployment, plan, r) for r in deployment.replicas)
            )
            deployment.transition(DeploymentStatus.DEPLOYED, "ready")
        except (ModelNotFoundError, PlanError) as error:
            deployment.fail(error.code, str(error))
        except PlacementError as error:
            deployment.fail(ErrorCode.RUNTIME_ERROR, str(error))
        except _EngineFailure as failure:
            await self._release_replicas(deployment)
            deployment.fail(failure.code, failure.message)
        except asyncio.CancelledError:
            await self._release_replicas(deployment)
            raise
        except Exception as error:  # an unexpected bug must still leave a true state
            self.log.exception("deploy of %s failed", deployment.name)
            await self._release_replicas(deployment)
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

    async def _start_replica(self, deployment: Deployment, plan: Plan, replica: Replica) -> None:
        """Have Ray place the replica actor and start its engine."""
        log_path = self.state_dir / "logs" / deployment.name / f"{replica.replica_id}.log"
        handle: ReplicaHandle = await self._blocking(
            self.pool.start_replica,
            plan.engine,
            plan,
            deployment.name,
            log_path,
            self.replica_num_cpus,
        )
        replica.handle = handle
        replica.endpoint = handle.info["endpoint"]
        replica.pid = handle.info["pid"]
        replica.node_id = handle.info["node_id"]

    async def _wait_ready(self, deployment: Deployment, plan: Plan, replica: Replica) -> None:
        """Probe the engine until it answers, exits, or the startup timeout passes."""
        url = replica.endpoint + replica.handle.info["readiness_path"]
        deadline = time.monotonic() + self.startup_timeout
        next_exit_check = 0.0
        while time.monotonic() < deadline:
            if await self._answers(url):
                replica.status = InstanceStatus.DEPLOYED
                return
            if time.monotonic() >= next_exit_check:
                returncode = await self._blocking(self.pool.returncode, replica.handle)
                if returncode is not None:
                    raise await self._engine_failure(plan, replica, returncode)
                next_exit_check = time.monotonic() + 1.0
            await asyncio.sleep(PROBE_INTERVAL)
        raise _EngineFailure(
            ErrorCode.STARTUP_TIMEOUT,
            f"{plan.engine} was not ready after {self.startup_timeout:.0f} s.",
        )

    async def _answers(self, url: str) -> bool:
        """Tell whether the engine answers its readiness URL with 200."""
        try:
            response = await self._http.get(url)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def _engine_failure(self, plan: Plan, replica: Replica, returncode: int):
        """Explain an engine that exited: error code from its log, message from its last lines."""
        lines = await self._blocking(self.pool.tail, replica.handle, FINAL_LOG_LINES)
        patterns = get_engine(plan.engine).log_patterns
        code = classify_log_lines(lines, patterns) or ErrorCode.CONTAINER_EXITED
        issues = issue_lines(lines, patterns)
        detail = issues[-1][2].strip() if issues else (lines[-1].strip() if lines else "")
        message = f"{plan.engine} exited with status {returncode}"
        return _EngineFailure(code, f"{message}: {detail}" if detail else f"{message}.")

    async def _release_replicas(self, deployment: Deployment) -> None:
        """Stop every replica of a deployment, keeping the end of each log."""
        for replica in deployment.replicas:
            if replica.handle is None:
                continue
            handle, replica.handle = replica.handle, None
            deployment.final_logs[replica.replica_id] = await self._blocking(
                self.pool.tail, handle, FINAL_LOG_LINES
            )
            await self._blocking(self.pool.stop_replica, handle)
            replica.status = InstanceStatus.STOPPED

    async def stop(self, name: str) -> Deployment | None:
        """Stop a deployment: cancel its startup, end its engines, mark it STOPPED."""
        deployment = self.deployments.get(name)
        if deployment is None:
            return None
        task = self._tasks.get(name)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._release_replicas(deployment)
        if deployment.status.is_active:
            deployment.transition(DeploymentStatus.STOPPED, "stopped by request")
        return deployment

    async def logs(self, name: str, lines: int) -> dict[str, list[str]]:
        """Return the last lines of each replica's log (live, or as kept at stop)."""
        deployment = self.deployments[name]
        result = dict(deployment.final_logs)
        for replica in deployment.replicas:
            if replica.handle is not None:
                result[replica.replica_id] = await self._blocking(
                    self.pool.tail, replica.handle, lines
                )
        return {key: value[-lines:] for key, value in result.items()}

    def route(self, name: str) -> Replica | None:
        """Pick the DEPLOYED replica of name with the fewest outstanding requests."""
        deployment = self.deployments.get(name)
        if deployment is None or deployment.status is not DeploymentStatus.DEPLOYED:
            return None
        ready = [r for r in deployment.replicas if r.status is InstanceStatus.DEPLOYED]
        return min(ready, key=lambda r: r.outstanding, default=None)

    def _ensure_monitor(self) -> None:
        """Start the liveness monitor once."""
        if self._monitor is None or self._monitor.done():
            self._monitor = asyncio.create_task(self._monitor_loop())

    async def _monitor_loop(self) -> None:
        """Notice engines that die after DEPLOYED, so the status never lies."""
        while True:
            await asyncio.sleep(MONITOR_INTERVAL)
            for deployment in list(self.deployments.values()):
                if deployment.status is not DeploymentStatus.DEPLOYED:
                    continue
                for replica in deployment.replicas:
                    if replica.handle is None:
                        continue
                    returncode = await self._blocking(self.pool.returncode, replica.handle)
                    if returncode is None:
                        continue
                    replica.status = InstanceStatus.FAILED
                    failure = await self._engine_failure(
                        Plan.from_dict(deployment.plan), replica, returncode
                    )
                    await self._release_replicas(deployment)
                    deployment.fail(failure.code, failure.message)
                    break

    async def shutdown(self) -> None:
        """Stop every deployment (server shutdown): no engine may outlive the controller."""
        if self._monitor is not None:
            self._monitor.cancel()
        for name in list(self.deployments):
            await self.stop(name)
        await self._http.aclose()
        self._executor.shutdown(wait=False)


class _EngineFailure(Exception):
    """An engine that exited or never became ready, with its lifecycle error code."""

    def __init__(self, code: ErrorCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message
