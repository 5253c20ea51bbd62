"""The machine as a record: its CPU, memory, GPUs and which engines can run on it (what
kz_jupyter.planning.hardware probes, and what the planner and the engines read)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass(frozen=True)
class GpuInfo:
    """One NVIDIA GPU as NVML reports it."""

    index: int
    name: str
    memory_total: int
    memory_used: int
    memory_free: int
    driver: str = ""
    utilization: int | None = None  # percent of the last sample period a kernel ran


@dataclass(frozen=True)
class Utilization:
    """How busy the machine is now: CPU percent (since the previous sample), RAM used and
    total, and each GPU's memory and utilization."""

    cpu_percent: float
    ram_used: int
    ram_total: int
    gpus: tuple[GpuInfo, ...] = ()

    def to_dict(self) -> dict:
        """Return the sample as plain JSON-ready data."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class EngineAvailability:
    """Whether one engine can run here, and why not when it cannot."""

    name: str
    available: bool
    version: str = ""
    reason: str = ""
    environment: str = ""


@dataclass(frozen=True)
class HardwareProfile:
    """A snapshot of the machine a deployment would run on."""

    system: str
    machine: str
    cpu_model: str
    cpu_cores_physical: int
    cpu_cores_logical: int
    ram_total: int
    ram_available: int
    apple_silicon: bool
    gpus: tuple[GpuInfo, ...] = ()
    gpu_note: str = ""
    engines: tuple[EngineAvailability, ...] = field(default=())

    def to_dict(self) -> dict:
        """Return the profile as plain JSON-ready data."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> HardwareProfile:
        """Rebuild a profile from `to_dict` output (as received over the REST API)."""
        values = dict(data)
        values["gpus"] = tuple(GpuInfo(**gpu) for gpu in data.get("gpus", ()))
        values["engines"] = tuple(EngineAvailability(**e) for e in data.get("engines", ()))
        return cls(**values)
