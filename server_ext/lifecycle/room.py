"""Making room: deploys and reloads are admitted one at a time against free memory (and
c.KzApp.max_loaded); with c.KzApp.make_room, idle deployments are unloaded, least recently used
first, until the newcomer fits."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from kz_jupyter.planning.hardware import probe_hardware
from kz_jupyter.planning.machine import HardwareProfile
from kz_jupyter.planning.memory import human_bytes
from kz_jupyter.planning.plan import Plan
from kz_jupyter.server_ext.lifecycle.records import Deployment
from kz_jupyter.states import DeploymentStatus

Unload = Callable[[Deployment, str], Awaitable[None]]
MayUnload = Callable[[Deployment], bool]
HardwareView = Callable[[HardwareProfile], HardwareProfile]


@dataclass(frozen=True)
class RoomSettings:
    """The admin's rules for sharing memory between deployments."""

    make_room: bool = True
    max_loaded: int = 0  # 0: no limit
    memory_budget: int = 0  # bytes all deployments may take together, as planned; 0: none


class RoomError(Exception):
    """No room for a deployment: what it needs, what holds the memory, what to do."""


def planned_bytes(plan: Plan | None) -> int:
    """The memory a deployment's plan takes: every replica's estimate."""
    if plan is None:
        return 0
    return int(plan.memory.get("total", 0)) * max(plan.replicas, 1)


def device_of(plan: Plan | None) -> str:
    """Where a plan keeps its model: 'RAM' or 'GPU'."""
    return plan.memory.get("device", "RAM") if plan is not None else "RAM"


def unloadable_by(owner: str, admin: bool) -> MayUnload:
    """Whom a requester may unload to make room: their own deployments, any for an admin."""
    return lambda deployment: admin or deployment.owner in ("", owner)


class Room:
    """Admits deploys and reloads one at a time, holding the memory of each admitted one until
    its engines run (so two at once never count the same free memory twice)."""

    def __init__(
        self,
        settings: RoomSettings,
        deployments: Callable[[], Iterable[Deployment]],
        unload: Unload,
    ):
        self.settings = settings
        self.deployments = deployments
        self.unload = unload
        self._lock = asyncio.Lock()
        self._reserved: dict[str, tuple[str, int]] = {}  # name -> (device, bytes)

    def holds(self, deployment: Deployment) -> bool:
        """True while a deployment's engines run, or it was admitted and they are starting."""
        return deployment.name in self._reserved or any(
            replica.handle is not None for replica in deployment.replicas
        )

    def candidates(self, newcomer: Deployment, may_unload: MayUnload) -> list[Deployment]:
        """What may be unloaded for newcomer, least recently used first: deployments that are
        DEPLOYED, serving no request, not pinned, and the requester's to unload."""
        if not self.settings.make_room:
            return []
        found = [
            d
            for d in self.deployments()
            if d is not newcomer
            and d.status is DeploymentStatus.DEPLOYED
            and not any(r.outstanding for r in d.replicas)
            and not d.pinned
            and may_unload(d)
        ]
        return sorted(found, key=lambda d: d.last_used)

    def planning_view(self, newcomer: Deployment, may_unload: MayUnload) -> HardwareView:
        """How a plan for newcomer should see this machine: free memory less what admitted
        deployments will take (and within the budget), plus what making room could free."""
        reclaimable: dict[str, int] = {"RAM": 0, "GPU": 0}
        for deployment in self.candidates(newcomer, may_unload):
            reclaimable[device_of(deployment.plan)] += planned_bytes(deployment.plan)
        reserved = {device: self._reserved_on(device) for device in reclaimable}
        budget_left = self._budget_left(newcomer)

        def view(hardware: HardwareProfile) -> HardwareProfile:
            ram = hardware.ram_available - reserved["RAM"]
            if budget_left is not None:
                ram = min(ram, budget_left)
            gpus = tuple(
                dataclasses.replace(
                    gpu, memory_free=gpu.memory_free - reserved["GPU"] + reclaimable["GPU"]
                )
                for gpu in hardware.gpus
            )
            return dataclasses.replace(hardware, ram_available=ram + reclaimable["RAM"], gpus=gpus)

        return view

    def _budget_left(self, newcomer: Deployment) -> int | None:
        """What the memory budget leaves for newcomer (None: no budget)."""
        if not self.settings.memory_budget:
            return None
        taken = sum(
            planned_bytes(d.plan)
            for d in self.deployments()
            if d is not newcomer and d.name not in self._reserved and self.holds(d)
        )
        return self.settings.memory_budget - taken - self._reserved_on("RAM")

    def _reserved_on(self, device: str) -> int:
        """The bytes admitted deployments will still take on device."""
        return sum(size for where, size in self._reserved.values() if where == device)

    def free(self, hardware: HardwareProfile, newcomer: Deployment, device: str) -> int:
        """Memory free for newcomer on device: as measured in hardware, less what admitted
        deployments will still take, within the budget (RAM)."""
        if device == "GPU":
            measured = sum(gpu.memory_free for gpu in hardware.gpus)
        else:
            measured = hardware.ram_available
        measured -= self._reserved_on(device)
        budget_left = self._budget_left(newcomer) if device == "RAM" else None
        return measured if budget_left is None else min(measured, budget_left)

    async def admit(self, newcomer: Deployment, plan: Plan, may_unload: MayUnload) -> list[str]:
        """Hold room for newcomer's plan, unloading idle deployments where allowed until it
        fits in memory and under max_loaded; RoomError when it cannot. Returns the names of
        the deployments unloaded for it."""
        need, device = planned_bytes(plan), device_of(plan)
        unloaded: list[str] = []
        async with self._lock:
            while True:
                hardware = await asyncio.to_thread(probe_hardware, with_engines=False)
                free = self.free(hardware, newcomer, device)
                loaded = [d for d in self.deployments() if d is not newcomer and self.holds(d)]
                too_many = 0 < self.settings.max_loaded <= len(loaded)
                fits = plan.forced or need <= free
                if fits and not too_many:
                    break
                victims = self.candidates(newcomer, may_unload)
                if not victims:
                    raise RoomError(self.refusal(newcomer, need, free, too_many, may_unload))
                victim = victims[0]
                why = (
                    f"at most {self.settings.max_loaded} deployments may be loaded at once"
                    if too_many
                    else f"it needs {human_bytes(need)}, {human_bytes(max(free, 0))} were free"
                )
                await self.unload(victim, f"unloaded to make room for '{newcomer.name}' ({why})")
                unloaded.append(victim.name)
            self._reserved[newcomer.name] = (device, need)
        return unloaded

    def release(self, newcomer: Deployment) -> None:
        """Stop holding room for a deployment: its engines run (and are counted), or failed."""
        self._reserved.pop(newcomer.name, None)

    def refusal(
        self, newcomer: Deployment, need: int, free: int, too_many: bool, may_unload: MayUnload
    ) -> str:
        """Why there is no room, naming what holds it and why it stays."""
        if too_many:
            first = f"at most {self.settings.max_loaded} deployments may be loaded at once"
        else:
            first = f"it needs {human_bytes(need)} and {human_bytes(max(free, 0))} are free"
        return (
            f"No room for '{newcomer.name}': {first}.{self.held(newcomer, may_unload)} Stop a "
            "deployment, or deploy with less memory (a smaller --context or --parallel)."
        )

    def held(self, newcomer: Deployment, may_unload: MayUnload) -> str:
        """What is loaded besides newcomer, and why each was not unloaded for it ('' when
        nothing is)."""
        loaded = [d for d in self.deployments() if d is not newcomer and self.holds(d)]
        if not loaded:
            return ""
        kept = ", ".join(f"'{d.name}' {self._why_kept(d, may_unload)}" for d in loaded)
        return f" Loaded: {kept}."

    def _why_kept(self, deployment: Deployment, may_unload: MayUnload) -> str:
        """Why a loaded deployment is not unloaded to make room."""
        serving = deployment.in_flight
        if deployment.status is not DeploymentStatus.DEPLOYED:
            return f"is {deployment.status.value}"
        if serving:
            return f"is serving {serving} request{'s' if serving > 1 else ''}"
        if deployment.pinned:
            return "is pinned (--pin)"
        if not may_unload(deployment):
            return "belongs to another user"
        if not self.settings.make_room:
            return "is idle (c.KzApp.make_room would unload it)"
        return "is idle"
