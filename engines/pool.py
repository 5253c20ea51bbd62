"""The Ray pool: places one actor per replica; each actor owns its engine server process."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import httpx
import ray
from ray.exceptions import GetTimeoutError, RayActorError

from kz_jupyter.engines.process import EngineProcess, free_port, read_lines_from
from kz_jupyter.planning.engine_contract import LaunchTarget, get_engine
from kz_jupyter.planning.plan import Plan

RAY_NAMESPACE = "kz_jupyter"
HEALTH_TIMEOUT = 5.0
HEALTH_INTERVAL = 10.0  # engines log each probe: ask at most this often
LOCAL_NODE_IP = "127.0.0.1"

_RAY_INIT_LOCK = threading.Lock()


class RayOwnerThread:
    """The thread that starts Ray: a daemon that lives exactly as long as the process.

    Ray ties the life of the processes it starts (GCS, raylet) to the *thread* that started them
    (PR_SET_PDEATHSIG), so ray.init must not run on a short-lived executor thread. Nor on a
    ThreadPoolExecutor's: those are joined at exit before atexit handlers run, which would kill
    Ray before ray.shutdown() could stop it cleanly.
    """

    def __init__(self) -> None:
        self._jobs: queue.Queue = queue.Queue()
        threading.Thread(target=self._serve, name="kz-ray-owner", daemon=True).start()

    def run(self, func: Callable[[], None]) -> None:
        """Run func on the owner thread and wait for it (its exception is re-raised here)."""
        done: Future = Future()
        self._jobs.put((func, done))
        done.result()

    def _serve(self) -> None:
        """Run jobs forever."""
        while True:
            func, done = self._jobs.get()
            try:
                done.set_result(func())
            except BaseException as error:  # handed to the waiting caller
                done.set_exception(error)


_ray_owner: RayOwnerThread | None = None


def answer_status(url: str) -> int | None:
    """The HTTP status a GET of url answers, or None when nothing answers in time."""
    try:
        return httpx.get(url, timeout=HEALTH_TIMEOUT).status_code
    except httpx.HTTPError:
        return None


class ReplicaActor:
    """A Ray actor that owns one engine server process on the node Ray placed it on."""

    def __init__(self, log_path: str):
        self.engine_process = EngineProcess(Path(log_path))
        self.started: dict | None = None
        self.health_url = ""
        self._next_health_check = 0.0

    def start(self, engine_name: str, plan: Plan, served_name: str, host: str | None) -> dict:
        """Start the engine on a free port of host (default: this node's address in Ray).

        Called again on the same actor, it replaces a dead (or running) engine with a new one.
        """
        self.engine_process.stop()
        node_id = ray.get_runtime_context().get_node_id()
        if host is None:
            host = next(n["NodeManagerAddress"] for n in ray.nodes() if n["NodeID"] == node_id)
        log_path = self.engine_process.log_path
        target = LaunchTarget(
            served_name=served_name,
            host=host,
            port=free_port(host),
            workdir=log_path.parent / f"{log_path.stem}.work",
        )
        engine = get_engine(engine_name)
        target.workdir.mkdir(parents=True, exist_ok=True)
        engine.prepare(plan, target)
        spec = engine.launch_spec(plan, target)
        pid = self.engine_process.start(spec)
        endpoint = f"http://{host}:{target.port}"
        self.health_url = endpoint + spec.health_path if spec.health_path else ""
        self._next_health_check = 0.0
        self.started = {
            "host": host,
            "port": target.port,
            "pid": pid,
            "endpoint": endpoint,
            "readiness_path": spec.readiness_path,
            "readiness_body": spec.readiness_body,
            "node_id": node_id,
            "actor_name": ray.get_runtime_context().get_actor_name() or "",
        }
        return self.started

    def running(self) -> dict | None:
        """What start returned, while the engine it started still runs; else None."""
        if self.started is None or self.engine_process.returncode() is not None:
            return None
        return self.started

    def returncode(self) -> int | None:
        """Return the engine's exit status, or None while it runs.

        An engine whose health URL answers an error status is broken although its process
        lives (a server whose worker thread died): it is ended here, and so reported exited.
        """
        if (
            self.engine_process.returncode() is None
            and self.health_url
            and time.monotonic() >= self._next_health_check
        ):
            self._next_health_check = time.monotonic() + HEALTH_INTERVAL
            status = answer_status(self.health_url)
            if status is not None and status >= 500:
                self.engine_process.note(
                    f"[kz] the engine answered its health check with HTTP {status}: ending it"
                )
                self.engine_process.stop()
        return self.engine_process.returncode()

    def tail(self, lines: int) -> list[str]:
        """Return the last lines of the engine's log."""
        return self.engine_process.tail(lines)

    def follow(self, offset: int | None) -> tuple[int, list[str]]:
        """Return the log lines written after offset (None: start at the end now)."""
        if offset is None:
            return self.engine_process.log_size(), []
        return read_lines_from(self.engine_process.log_path, offset)

    def stop(self) -> int | None:
        """Stop the engine process and return its exit status."""
        return self.engine_process.stop()


@dataclass
class ReplicaHandle:
    """The controller's handle on one placed replica."""

    actor: ray.actor.ActorHandle
    info: dict


class PlacementError(RuntimeError):
    """Ray could not place a replica: no node has the resources, or the actor died."""


class RayPool:
    """Starts (or joins) Ray lazily and places replica actors on nodes with the resources.

    Engines listen on `engine_host`: loopback for a local Ray; for a cluster, each node's address
    as Ray knows it, unless `engine_host` names one (e.g. 127.0.0.1 for a single-host cluster).
    """

    def __init__(
        self,
        address: str | None = None,
        engine_host: str | None = None,
        placement_timeout: float = 60.0,
    ):
        self.address = address or os.environ.get("KZ_RAY_ADDRESS") or None
        self.engine_host = engine_host or (None if self.address else LOCAL_NODE_IP)
        self.placement_timeout = placement_timeout

    def ensure_started(self) -> None:
        """Start a local Ray, or connect to the configured cluster, unless already connected."""
        global _ray_owner
        with _RAY_INIT_LOCK:
            if not ray.is_initialized():
                _ray_owner = _ray_owner or RayOwnerThread()
                _ray_owner.run(self._init_ray)

    def _init_ray(self) -> None:
        """Call ray.init (on the Ray owner thread)."""
        if self.address:
            ray.init(
                address=self.address,
                namespace=RAY_NAMESPACE,
                log_to_driver=False,
                logging_level=logging.ERROR,
            )
        else:
            ray.init(
                address="local",  # a new local Ray; never a cluster found in /tmp/ray
                namespace=RAY_NAMESPACE,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
                _node_ip_address=LOCAL_NODE_IP,
            )

    def start_replica(
        self, engine_name: str, plan: Plan, served_name: str, log_path: Path, num_cpus: float
    ) -> ReplicaHandle:
        """Place a replica actor and start its engine; raise PlacementError when Ray cannot."""
        self.ensure_started()
        options = {
            "num_cpus": num_cpus,
            "num_gpus": plan.num_gpus or None,
            "resources": plan.resources or None,
            "max_restarts": 0,
            "max_concurrency": 1,
            "name": f"{served_name}-{uuid.uuid4().hex[:12]}",
        }
        if plan.memory.get("fits") and plan.memory.get("total"):
            options["memory"] = plan.memory["total"]  # Ray places it where it fits
        if self.address:  # on a cluster, engines outlive a server restart and are adopted
            options["lifetime"] = "detached"
        actor = ray.remote(ReplicaActor).options(**options).remote(str(log_path))
        try:
            info = self._start_engine(actor, engine_name, plan, served_name)
        except GetTimeoutError:
            ray.kill(actor)
            wanted = {"CPU": num_cpus, "GPU": plan.num_gpus, **plan.resources}
            asked = ", ".join(f"{k} {v:g}" for k, v in wanted.items() if v)
            raise PlacementError(
                f"Ray found no node with {asked} free (and memory for "
                f"{plan.memory.get('total', 0) / 2**20:.0f} MiB) within "
                f"{self.placement_timeout:.0f} s: stop another deployment, ask for other "
                "resources, or add a node."
            ) from None
        except RayActorError as error:
            raise PlacementError(f"The replica actor died while starting: {error}") from None
        return ReplicaHandle(actor=actor, info=info)

    def restart_engine(
        self, handle: ReplicaHandle, engine_name: str, plan: Plan, served_name: str
    ) -> ReplicaHandle:
        """Start a new engine in the replica's existing actor (its engine died, not the actor)."""
        try:
            info = self._start_engine(handle.actor, engine_name, plan, served_name)
        except (RayActorError, GetTimeoutError) as error:
            raise PlacementError(f"The replica actor is gone: {error}") from None
        return ReplicaHandle(actor=handle.actor, info=info)

    def _start_engine(
        self, actor: ray.actor.ActorHandle, engine_name: str, plan: Plan, served_name: str
    ) -> dict:
        """Have an actor start its engine; wait at most the placement timeout."""
        started = actor.start.remote(engine_name, plan, served_name, self.engine_host)
        return ray.get(started, timeout=self.placement_timeout)

    def find_replica(self, actor_name: str) -> ReplicaHandle | None:
        """The replica whose actor has this name, if it and its engine still run."""
        self.ensure_started()
        try:
            actor = ray.get_actor(actor_name, namespace=RAY_NAMESPACE)
            info = ray.get(actor.running.remote(), timeout=30)
        except (ValueError, RayActorError, GetTimeoutError):
            return None
        return ReplicaHandle(actor=actor, info=info) if info else None

    @property
    def engines_outlive_server(self) -> bool:
        """True on a cluster: replicas are detached actors a restarted server adopts."""
        return bool(self.address)

    def returncode(self, handle: ReplicaHandle) -> int | None:
        """Return the engine's exit status (None while running); -1 when the actor is gone."""
        try:
            return ray.get(handle.actor.returncode.remote(), timeout=30)
        except (RayActorError, GetTimeoutError):
            return -1

    def tail(self, handle: ReplicaHandle, lines: int) -> list[str]:
        """Return the last lines of the replica's engine log."""
        try:
            return ray.get(handle.actor.tail.remote(lines), timeout=30)
        except (RayActorError, GetTimeoutError):
            return []

    def follow(self, handle: ReplicaHandle, offset: int | None) -> tuple[int, list[str]]:
        """Return the replica's log lines after offset, and the new offset."""
        try:
            return ray.get(handle.actor.follow.remote(offset), timeout=30)
        except (RayActorError, GetTimeoutError):
            return offset or 0, []

    def stop_replica(self, handle: ReplicaHandle) -> None:
        """Stop the engine, then end the actor so its resources return to the pool."""
        try:
            ray.get(handle.actor.stop.remote(), timeout=30)
        except (RayActorError, GetTimeoutError):
            pass
        ray.kill(handle.actor)
