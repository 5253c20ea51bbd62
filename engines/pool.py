"""The Ray pool: reserves each replica's resources (a placement group) and starts its engine in
a replica actor of its own, taken warm from the spares where it can."""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import ray
from ray.exceptions import GetTimeoutError, RayActorError
from ray.util.placement_group import (
    PlacementGroup,
    get_placement_group,
    placement_group,
    placement_group_table,
    remove_placement_group,
)
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from kz_jupyter.engines.replica_actor import ReplicaActor
from kz_jupyter.engines.spare_actors import SpareActors, actor_options
from kz_jupyter.planning.plan import Plan

RAY_NAMESPACE = "kz_jupyter"
LOCAL_NODE_IP = "127.0.0.1"
LOG = logging.getLogger("kz_jupyter")

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


@dataclass
class ReplicaHandle:
    """The controller's handle on one placed replica."""

    actor: ray.actor.ActorHandle
    info: dict
    room: PlacementGroup | None = None  # the resources Ray holds for it


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
        self.spares = SpareActors(detached=self.engines_outlive_server)

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

    def warm_up(self) -> None:
        """Start Ray and the spare actors now (blocking), so that the first deploy finds them
        ready; a failure is logged, and met again by the first deploy, which reports it."""
        try:
            self.ensure_started()
            self.refill_spares()
        except Exception:  # the deploy that needs Ray reports the error to its user
            LOG.exception("kz: starting Ray ahead of the first deploy failed")

    @property
    def spares_short(self) -> bool:
        """True when Ray runs and a spare actor was handed out (or none started yet)."""
        return ray.is_initialized() and self.spares.short

    def refill_spares(self) -> None:
        """Replace the spare actors handed out (no-op before Ray runs, or when none was)."""
        if self.spares_short:
            self.spares.refill()

    def close(self) -> None:
        """End the spare actors (the replicas are stopped, or kept, by their owner)."""
        if ray.is_initialized():
            self.spares.close()

    def start_replica(
        self, engine_name: str, plan: Plan, served_name: str, log_path: Path, num_cpus: float
    ) -> ReplicaHandle:
        """Reserve the replica's resources (a placement group), start its engine in a spare
        actor on the node Ray chose (a new actor there when there is none, or when the plan
        wants GPUs, which Ray hands only to an actor inside the reservation); raise
        PlacementError when Ray cannot."""
        self.ensure_started()
        room = self._reserve(plan, num_cpus)
        try:
            actor, info = self._start_in(room, engine_name, plan, served_name, str(log_path))
        except BaseException:
            if room is not None:
                remove_placement_group(room)
            raise
        return ReplicaHandle(actor=actor, info=info, room=room)

    def _reserve(self, plan: Plan, num_cpus: float) -> PlacementGroup | None:
        """A placement group holding the replica's CPUs, GPUs, custom resources and memory on
        one node, placed within the placement timeout; None when it asks for nothing."""
        bundle = {"CPU": num_cpus, "GPU": plan.num_gpus or 0, **plan.resources}
        if plan.memory.get("fits") and plan.memory.get("total"):
            bundle["memory"] = plan.memory["total"]  # Ray places it where it fits
        bundle = {key: value for key, value in bundle.items() if value}
        if not bundle:
            return None
        lifetime = "detached" if self.engines_outlive_server else None
        room = placement_group(
            [bundle], strategy="STRICT_PACK", name=f"kz-room-{uuid.uuid4().hex[:12]}",
            lifetime=lifetime,
        )  # fmt: skip
        if not room.wait(self.placement_timeout):
            remove_placement_group(room)
            asked = ", ".join(f"{k} {v:g}" for k, v in bundle.items() if k != "memory")
            raise PlacementError(
                f"Ray found no node with {asked} free (and memory for "
                f"{plan.memory.get('total', 0) / 2**20:.0f} MiB) within "
                f"{self.placement_timeout:.0f} s: stop another deployment, ask for other "
                "resources, or add a node."
            )
        return room

    def _start_in(
        self,
        room: PlacementGroup | None,
        engine_name: str,
        plan: Plan,
        served_name: str,
        log_path: str,
    ) -> tuple[ray.actor.ActorHandle, dict]:
        """Start the engine in the spare on the room's node, or (no spare, a dead one, GPUs
        wanted) in a new actor scheduled into the room."""
        table = placement_group_table(room) if room is not None else {}
        room_name = table.get("name", "")
        if not plan.num_gpus:
            node_id = table["bundles_to_node_id"][0] if table else None
            spare = self.spares.take(node_id)
            if spare is not None:
                try:
                    return spare, self._start_engine(
                        spare, engine_name, plan, served_name, log_path, room_name
                    )
                except (RayActorError, GetTimeoutError):
                    ray.kill(spare)  # a spare that died or hangs: a new actor instead
        options = actor_options(self.engines_outlive_server)
        if plan.num_gpus:
            options["num_gpus"] = plan.num_gpus
        if room is not None:
            options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(room, 0)
        actor = ray.remote(ReplicaActor).options(**options).remote()
        try:
            return actor, self._start_engine(
                actor, engine_name, plan, served_name, log_path, room_name
            )
        except GetTimeoutError:
            ray.kill(actor)
            raise PlacementError(
                f"The replica actor did not start within {self.placement_timeout:.0f} s."
            ) from None
        except RayActorError as error:
            raise PlacementError(f"The replica actor died while starting: {error}") from None

    def restart_engine(
        self, handle: ReplicaHandle, engine_name: str, plan: Plan, served_name: str
    ) -> ReplicaHandle:
        """Start a new engine in the replica's existing actor (its engine died, not the actor)."""
        info = handle.info
        try:
            info = self._start_engine(
                handle.actor, engine_name, plan, served_name, info["log_path"], info["room"]
            )
        except (RayActorError, GetTimeoutError) as error:
            raise PlacementError(f"The replica actor is gone: {error}") from None
        return ReplicaHandle(actor=handle.actor, info=info, room=handle.room)

    def _start_engine(
        self,
        actor: ray.actor.ActorHandle,
        engine_name: str,
        plan: Plan,
        served_name: str,
        log_path: str,
        room_name: str,
    ) -> dict:
        """Have an actor start its engine; wait at most the placement timeout."""
        started = actor.start.remote(
            engine_name, plan, served_name, self.engine_host, log_path, room_name
        )
        return ray.get(started, timeout=self.placement_timeout)

    def find_replica(self, actor_name: str) -> ReplicaHandle | None:
        """The replica whose actor has this name, if it and its engine still run."""
        self.ensure_started()
        try:
            actor = ray.get_actor(actor_name, namespace=RAY_NAMESPACE)
            info = ray.get(actor.running.remote(), timeout=30)
            room = get_placement_group(info["room"]) if info and info.get("room") else None
        except (ValueError, RayActorError, GetTimeoutError):
            return None
        return ReplicaHandle(actor=actor, info=info, room=room) if info else None

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
        """Stop the engine, then end the actor and free its reservation."""
        with contextlib.suppress(RayActorError, GetTimeoutError):
            ray.get(handle.actor.stop.remote(), timeout=30)
        ray.kill(handle.actor)
        if handle.room is not None:
            remove_placement_group(handle.room)
