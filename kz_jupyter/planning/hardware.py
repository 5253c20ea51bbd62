"""What this machine has: CPU, memory, GPUs, and which engines can run here."""

from __future__ import annotations

import platform

import psutil

from kz_jupyter.planning.engine_contract import engine_availability
from kz_jupyter.planning.engine_environments import EngineEnvironments
from kz_jupyter.planning.machine import EngineAvailability, GpuInfo, HardwareProfile, Utilization


def _cpu_model() -> str:
    """Return the CPU's marketing name, falling back to the architecture."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _nvidia_gpus() -> tuple[tuple[GpuInfo, ...], str]:
    """List NVIDIA GPUs through NVML; no driver or no GPU is a normal, explained answer."""
    try:
        import pynvml
    except ImportError:
        return (), "nvidia-ml-py is not installed"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as error:
        return (), f"no NVIDIA driver or GPU ({error})"
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            try:
                busy = int(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            except pynvml.NVMLError:  # some devices (MIG slices) do not report it
                busy = None
            gpus.append(
                GpuInfo(
                    index=index,
                    name=_text(pynvml.nvmlDeviceGetName(handle)),
                    memory_total=int(memory.total),
                    memory_used=int(memory.used),
                    memory_free=int(memory.free),
                    driver=_text(driver),
                    utilization=busy,
                )
            )
        return tuple(gpus), "" if gpus else "NVIDIA driver found, no GPU"
    except pynvml.NVMLError as error:
        return (), f"NVML error: {error}"
    finally:
        pynvml.nvmlShutdown()


def _text(value: str | bytes) -> str:
    """Decode NVML strings, which older bindings return as bytes."""
    return value.decode() if isinstance(value, bytes) else value


def probe_hardware(
    environments: EngineEnvironments | None = None, with_engines: bool = True
) -> HardwareProfile:
    """Probe this machine and return its profile; with_engines also looks each engine up in its
    environment (a subprocess per separate environment: planning, which checks the engines it
    ranks itself, leaves it out)."""
    memory = psutil.virtual_memory()
    gpus, gpu_note = _nvidia_gpus()
    system = platform.system()
    machine = platform.machine()
    return HardwareProfile(
        system=system,
        machine=machine,
        cpu_model=_cpu_model(),
        cpu_cores_physical=psutil.cpu_count(logical=False) or 0,
        cpu_cores_logical=psutil.cpu_count(logical=True) or 0,
        ram_total=int(memory.total),
        ram_available=int(memory.available),
        apple_silicon=system == "Darwin" and machine == "arm64",
        gpus=gpus,
        gpu_note=gpu_note,
        engines=tuple(EngineAvailability(**a) for a in engine_availability(environments))
        if with_engines
        else (),
    )


def sample_utilization() -> Utilization:
    """How busy CPU, RAM and GPUs are now (CPU: since the previous call in this process)."""
    memory = psutil.virtual_memory()
    return Utilization(
        cpu_percent=psutil.cpu_percent(interval=None),
        ram_used=int(memory.total - memory.available),
        ram_total=int(memory.total),
        gpus=_nvidia_gpus()[0],
    )
