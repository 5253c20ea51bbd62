"""Warm spare replica actors: one per node, started ahead of need, so placing a replica does not
wait for a new Ray worker process (each new worker imports ray first: seconds)."""

from __future__ import annotations

import contextlib
import threading
import uuid

import ray
from ray.exceptions import RayActorError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from kz_jupyter.engines.replica_actor import ReplicaActor

ACTOR_PREFIX = "kz-replica-"


def actor_options(detached: bool) -> dict:
    """Ray options every replica actor has: one engine, no Ray restarts (kz heals), a name
    to find it by, detached when engines outlive the server. It reserves no resources of
    its own: its placement group holds the replica's."""
    options = {
        "num_cpus": 0,
        "max_restarts": 0,
        "max_concurrency": 1,
        "name": f"{ACTOR_PREFIX}{uuid.uuid4().hex[:12]}",
    }
    if detached:
        options["lifetime"] = "detached"
    return options


class SpareActors:
    """At most one idle replica actor per node, handed out once and replaced afterwards."""

    def __init__(self, detached: bool):
        self.detached = detached
        self._spares: dict[str, ray.actor.ActorHandle] = {}
        self._lock = threading.Lock()
        self.short = True  # a spare was handed out (or none started yet): refill

    def take(self, node_id: str | None) -> ray.actor.ActorHandle | None:
        """The spare on node_id (any node's when None), now no longer a spare; None if none."""
        with self._lock:
            self.short = True
            if node_id is None:
                node_id = next(iter(self._spares), None)
            return self._spares.pop(node_id, None) if node_id else None

    def refill(self) -> None:
        """Start a spare on every live node without one; returns at once (Ray starts the
        worker processes in the background)."""
        with self._lock:
            self.short = False
            for node in ray.nodes():
                node_id = node["NodeID"]
                if node["Alive"] and node_id not in self._spares:
                    strategy = NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)
                    self._spares[node_id] = (
                        ray.remote(ReplicaActor)
                        .options(**actor_options(self.detached), scheduling_strategy=strategy)
                        .remote()
                    )

    def waiting(self) -> list[ray.actor.ActorHandle]:
        """The spares not handed out yet."""
        with self._lock:
            return list(self._spares.values())

    def close(self) -> None:
        """End every spare (a detached one would otherwise outlive the server)."""
        with self._lock:
            spares, self._spares = list(self._spares.values()), {}
        for actor in spares:
            with contextlib.suppress(RayActorError, ValueError):
                ray.kill(actor)
