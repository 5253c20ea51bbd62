"""The controller: owns deployment records and drives each through its lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from kz_jupyter.engine_envs import EngineEnvironments
from kz_jupyter.engines.pool import PlacementError
from kz_jupyter.hardware import probe_hardware
from kz_jupyter.hub import HubError, HubSettings
from kz_jupyter.memory import KV_CACHE_TYPES, human_bytes
from kz_jupyter.model_files import ModelNotFoundError
from kz_jupyter.model_sources import ModelSource
from kz_jupyter.planner import Overrides, Plan, PlanError
from kz_jupyter.provisioning import fetch, prepare, resolve
from kz_jupyter.references import (
    LocalPath,
    ModelReference,
    ModelReferenceError,
    expand_home,
    is_local_path,
)
from kz_jupyter.server_ext.access import parse_share, visibility
from kz_jupyter.server_ext.idle import IdleUnloader
from kz_jupyter.server_ext.records import NAME_PATTERN, Deployment, Replica
from kz_jupyter.server_ext.replicas import EngineFailure, ReplicaRunner
from kz_jupyter.server_ext.store import DeploymentStore
from kz_jupyter.states import DeploymentStatus, ErrorCode, InstanceStatus

MONITOR_INTERVAL = 1.0
DRAIN_POLL = 0.1
FOLLOW_POLL = 0.5
MAX_MODEL_TEXT = 4096  # longer than any path or repo id; a longer text is refused whole


class DeployRequestError(ValueError):
    """A deploy request that cannot be accepted; `status` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class DeployRequest:
    """What a user asked to deploy (or plan, or pull)."""

    model: str
    name: str
    overrides: Overrides = Overrides()
    revision: str | None = None
    keep_alive: int | None = None
    share: tuple[str, ...] = ()  # who else sees it: "*" everyone, else hub group names

    def to_body(self) -> dict:
        """The request as a POST body (what is kept to deploy it again after a restart)."""
        body = {
            "model": self.model,
            "name": self.name,
            "revision": self.revision,
            "keep_alive": self.keep_alive,
            "share": visibility(self.share).split(","),
        }
        body |= dataclasses.asdict(self.overrides) | {"extra_args": list(self.overrides.extra_args)}
        return {key: value for key, value in body.items() if value is not None}


def _integer(body: dict, key: str, low: int, high: int, default: int | None = None) -> int | None:
    """An optional integer field within [low, high] (null: the default)."""
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise DeployRequestError(f"'{key}' must be an integer from {low} to {high}.")
    return value


def _text(body: dict, key: str, example: str) -> str | None:
    """An optional string field."""
    value = body.get(key)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise DeployRequestError(f"'{key}' must be a string such as {example!r}.")
    return value.strip() if value else None


def parse_share_field(body: dict) -> tuple[str, ...]:
    """The optional 'share' field: private (default), all, group:NAME, or a list of groups."""
    try:
        return parse_share(body.get("share", "private"))
    except ValueError:
        raise DeployRequestError(
            "'share' takes 'private', 'all' or 'group:NAME' (or a list of 'group:NAME')."
        ) from None


def parse_overrides(body: dict) -> Overrides:
    """Validate the engine parameters a user may set."""
    extra = body.get("extra_args", [])
    if not isinstance(extra, list) or not all(isinstance(a, str) for a in extra):
        raise DeployRequestError("'extra_args' must be a list of strings like ['--seed', '1'].")
    force = body.get("force", False)
    if not isinstance(force, bool):
        raise DeployRequestError("'force' must be true or false.")
    resources = body.get("resources", {})
    if not isinstance(resources, dict) or not all(
        isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and v > 0
        for k, v in resources.items()
    ):
        raise DeployRequestError(
            "'resources' must map Ray resource names to positive amounts, like {\"gpu_node\": 1}."
        )
    num_gpus = body.get("num_gpus", 0)
    if not isinstance(num_gpus, int | float) or isinstance(num_gpus, bool) or num_gpus < 0:
        raise DeployRequestError("'num_gpus' must be a number of GPUs, 0 or more.")
    adapters = body.get("lora_adapters", {})
    if not isinstance(adapters, dict) or not all(
        isinstance(k, str) and NAME_PATTERN.match(k) and isinstance(v, str) and v
        for k, v in adapters.items()
    ):
        raise DeployRequestError(
            "'lora_adapters' must map adapter names (lowercase letters, digits, '.', '_', '-') "
            'to adapter folders, like {"french": "/models/french-lora"}.'
        )
    utilization = body.get("gpu_memory_utilization")
    if utilization is not None and (
        not isinstance(utilization, int | float)
        or isinstance(utilization, bool)
        or not 0 < utilization <= 1
    ):
        raise DeployRequestError(
            "'gpu_memory_utilization' must be a fraction of GPU memory above 0 and at most 1, "
            "like 0.85."
        )
    cache_type = _text(body, "kv_cache_type", "q8_0")
    if cache_type is not None and cache_type not in KV_CACHE_TYPES:
        raise DeployRequestError(
            f"'kv_cache_type' {cache_type!r} is not a KV-cache type: use one of "
            f"{', '.join(KV_CACHE_TYPES)} (q8_0 halves the cache, q4_0 quarters it)."
        )
    return Overrides(
        engine=_text(body, "engine", "llamacpp"),
        context_length=_integer(body, "context_length", 64, 1_048_576),
        replicas=_integer(body, "replicas", 1, 16, default=1),
        gpu_layers=_integer(body, "gpu_layers", -1, 100_000),
        parallel=_integer(body, "parallel", 1, 256),
        dtype=_text(body, "dtype", "bfloat16"),
        quantization=_text(body, "quantization", "awq"),
        tensor_parallel=_integer(body, "tensor_parallel", 1, 64, default=1),
        extra_args=tuple(extra),
        force=force,
        resources=dict(resources),
        num_gpus=num_gpus,
        gpu_memory_utilization=utilization,
        lora_adapters=dict(adapters),
        draft_model=_text(body, "draft_model", "/models/draft-Q8_0.gguf"),
        kv_cache_type=cache_type,
    )


def check_model_root(reference: ModelReference, roots: tuple[str, ...]) -> None:
    """Refuse a local path outside the allowed folders (when any are configured)."""
    if not roots or not isinstance(reference, LocalPath):
        return
    path = Path(os.path.realpath(reference.path))
    if not any(path.is_relative_to(os.path.realpath(root)) for root in roots):
        raise DeployRequestError(
            f"{reference.path} is outside the folders models may be loaded from "
            f"({', '.join(roots)}; c.KzApp.model_roots): move the model there or use a Hub repo."
        )


def parse_deploy_request(body: object, model_roots: tuple[str, ...] = ()) -> DeployRequest:
    """Validate a POST body into a DeployRequest, or raise DeployRequestError saying why."""
    if not isinstance(body, dict):
        raise DeployRequestError('The body must be a JSON object like {"model": "smollm2"}.')
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise DeployRequestError("'model' is required: a local path, pip-shipped model or repo id.")
    if len(model) > MAX_MODEL_TEXT:
        raise DeployRequestError(
            f"'model' is {len(model)} characters long (at most {MAX_MODEL_TEXT}): give a local "
            "path, a pip-shipped model or a repo id."
        )
    revision = _text(body, "revision", "main")
    try:
        reference, _ = resolve(model.strip(), revision)
    except ModelReferenceError as error:
        raise DeployRequestError(str(error)) from None
    check_model_root(reference, model_roots)
    overrides = parse_overrides(body)
    companions = [("LoRA adapter", path) for path in overrides.lora_adapters.values()]
    if overrides.draft_model and is_local_path(overrides.draft_model):
        companions.append(("Draft model", overrides.draft_model))
    for kind, path in companions:
        try:
            check_model_root(LocalPath(expand_home(path)), model_roots)
        except ModelReferenceError as error:
            raise DeployRequestError(f"{kind}: {error}") from None
    name = body.get("name")
    name = reference.short_name if name is None else name
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise DeployRequestError(
            f"Invalid deployment name {name!r}: use lowercase letters, digits, '.', '_' or '-' "
            "(at most 63 characters, starting with a letter or digit)."
        )
    return DeployRequest(
        model=model.strip(),
        name=name,
        overrides=overrides,
        revision=revision,
        keep_alive=_integer(body, "keep_alive", -1, 30 * 86400),
        share=parse_share_field(body),
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
        hub_settings: Callable[[], HubSettings] = HubSettings.from_env,
        model_roots: tuple[str, ...] = (),
        store: DeploymentStore | None = None,
        keep_alive: int = -1,
        environments: EngineEnvironments | None = None,
    ):
        self.runner = runner
        self.environments = environments or EngineEnvironments()
        self.hub_settings = hub_settings
        self.model_roots = model_roots
        self.store = store
        self.idle = IdleUnloader(self, keep_alive)
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

    def serving(self, model: str) -> Deployment | None:
        """The deployment a request's `model` names: a deployment, or `deployment/adapter`
        for one of its LoRA adapters."""
        deployment = self.get(model)
        if deployment is None and "/" in model:
            base, adapter = model.split("/", 1)
            deployment = self.get(base)
            if deployment is None or adapter not in (deployment.plan or {}).get(
                "lora_adapters", {}
            ):
                return None
        return deployment

    def get(self, name: str) -> Deployment | None:
        """Return the deployment called name, if any."""
        return self.deployments.get(name)

    async def deploy(self, request: DeployRequest, owner: str = "") -> Deployment:
        """Record a deployment of owner as REQUESTED and start driving it in the background.

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
        deployment = Deployment(
            name=request.name, model=request.model, owner=owner, shared_with=list(request.share)
        )
        deployment.request = request.to_body()
        deployment.keep_alive = self.idle.keep_alive_for(request.keep_alive)
        self.keep(deployment)
        deployment.transition(DeploymentStatus.REQUESTED, f"deploy {request.model}")
        self.drive(deployment, request)
        return deployment

    def keep(self, deployment: Deployment) -> None:
        """Hold a deployment record, persisting it at every change."""
        if self.store is not None:
            deployment.on_change = self.store.save
        self.deployments[deployment.name] = deployment

    def drive(self, deployment: Deployment, request: DeployRequest) -> None:
        """Drive a deployment through its lifecycle in the background."""
        self.track_task(deployment.name, self.run_deploy(deployment, request))

    def track_task(self, name: str, coroutine) -> None:
        """Run a deployment's lifecycle work in the background (stop cancels it)."""
        self._track(self._tasks, name, coroutine)
        self._ensure_monitor()

    @staticmethod
    def _track(tasks: dict[str, asyncio.Task], key: str, coroutine) -> None:
        """Run coroutine as a task kept in tasks under key until it ends."""
        task = asyncio.create_task(coroutine)
        tasks[key] = task
        task.add_done_callback(lambda _: tasks.pop(key, None))

    async def run_deploy(self, deployment: Deployment, request: DeployRequest) -> None:
        """Resolve, plan, place and probe until DEPLOYED or a failure is recorded."""
        try:
            plan, source = await self.runner.blocking(self.plan, request)
            deployment.plan = plan.to_dict()
            deployment.transition(
                DeploymentStatus.DEPLOYING, f"{plan.engine}: {plan.engine_reason}"
            )
            deployment.replicas = [
                Replica(replica_id=f"{deployment.name}-{index}") for index in range(plan.replicas)
            ]
            plan = await self._fetch(deployment, plan, source)
            await self.launch(deployment, plan)
            deployment.transition(DeploymentStatus.DEPLOYED, "ready")
        except (ModelNotFoundError, PlanError) as error:
            deployment.fail(error.code, str(error))
        except HubError as error:
            deployment.fail(ErrorCode.MODEL_LOADING_FAILURE, str(error))
        except PlacementError as error:
            await self.release_all(deployment)
            deployment.fail(ErrorCode.RUNTIME_ERROR, str(error))
        except EngineFailure as failure:
            await self.release_all(deployment)
            deployment.fail(failure.code, failure.message)
        except asyncio.CancelledError:
            await self.release_all(deployment)
            raise
        except Exception as error:  # an unexpected bug must still leave a true state
            self.log.exception("deploy of %s failed", deployment.name)
            await self.release_all(deployment)
            deployment.fail(ErrorCode.RUNTIME_ERROR, f"{type(error).__name__}: {error}")

    async def launch(self, deployment: Deployment, plan: Plan) -> None:
        """Start the engine of each of the deployment's replicas and wait until all are ready."""
        await asyncio.gather(*(self.runner.start(deployment, plan, r) for r in deployment.replicas))
        deployment.transition(DeploymentStatus.INITIALIZING, "engine started, loading")
        await asyncio.gather(*(self.runner.wait_ready(plan, r) for r in deployment.replicas))

    def plan(self, request: DeployRequest) -> tuple[Plan, ModelSource]:
        """Resolve the model reference and plan (blocking: reads headers, asks the Hub)."""
        return prepare(
            request.model,
            probe_hardware(with_engines=False),
            self.hub_settings(),
            request.overrides,
            request.revision,
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
        deployment.plan = plan.to_dict()
        deployment.progress = None
        for replica in deployment.replicas:
            replica.status = InstanceStatus.REQUESTED
        return plan

    async def release_all(self, deployment: Deployment) -> None:
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
        await self.release_all(deployment)
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
        await self.idle.cancel(name)
        deployment.wanted = False
        await self._drain(deployment)
        await self.release_all(deployment)
        if deployment.status.is_active or deployment.status is DeploymentStatus.UNLOADED:
            deployment.transition(DeploymentStatus.STOPPED, "stopped by request")
        else:
            deployment.changed()
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
                if deployment.status is DeploymentStatus.DEPLOYED:
                    await self.idle.unload_if_idle(deployment)

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
        """Server shutdown: records stay as they are (a restarted server restores them). With
        a local Ray the engines end now; on a cluster they keep serving and are adopted."""
        if self._monitor is not None:
            self._monitor.cancel()
            await asyncio.gather(self._monitor, return_exceptions=True)
        tasks = [*self._tasks.values(), *self._healers.values()]
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
