"""The hardware profile: a normal answer with or without GPUs."""

from __future__ import annotations

import json
import sys
import types

from kz_jupyter.magics.stats_text import machine_line
from kz_jupyter.planning.hardware import probe_hardware, sample_utilization
from kz_jupyter.planning.machine import HardwareProfile


def test_profile_describes_this_machine():
    profile = probe_hardware()
    assert profile.cpu_cores_logical >= 1
    assert 0 < profile.ram_available <= profile.ram_total
    assert profile.cpu_model
    if not profile.gpus:
        assert profile.gpu_note  # no GPU is explained, not an error
    llamacpp = next(e for e in profile.engines if e.name == "llamacpp")
    assert llamacpp.available and llamacpp.version


def test_profile_round_trips_through_json():
    profile = probe_hardware()
    again = HardwareProfile.from_dict(json.loads(json.dumps(profile.to_dict())))
    assert again == profile


class FakeNvml(types.ModuleType):
    """NVML as a machine with two GPUs reports it (none can be reached from here): the second
    does not report its utilization, as MIG slices do not."""

    class NVMLError(Exception):
        """NVML's error."""

    def __init__(self):
        super().__init__("pynvml")
        self.memory = types.SimpleNamespace(total=80 * 2**30, used=20 * 2**30, free=60 * 2**30)

    def nvmlInit(self):
        return None

    def nvmlShutdown(self):
        return None

    def nvmlSystemGetDriverVersion(self):
        return b"550.54"

    def nvmlDeviceGetCount(self):
        return 2

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetMemoryInfo(self, handle):
        return self.memory

    def nvmlDeviceGetName(self, handle):
        return "NVIDIA H100"

    def nvmlDeviceGetUtilizationRates(self, handle):
        if handle == 1:
            raise self.NVMLError("Not Supported")
        return types.SimpleNamespace(gpu=37, memory=12)


def test_the_machine_sample_has_each_gpus_memory_and_utilization(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml())
    sample = sample_utilization()
    assert 0 <= sample.cpu_percent <= 100 and 0 < sample.ram_used < sample.ram_total
    assert [(g.index, g.memory_used, g.utilization) for g in sample.gpus] == [
        (0, 20 * 2**30, 37), (1, 20 * 2**30, None)
    ]  # fmt: skip
    line = machine_line(json.loads(json.dumps(sample.to_dict())))
    assert "GPU 0 20.0 GiB used of 80.0 GiB, 37% busy  GPU 1 20.0 GiB used of 80.0 GiB" in line
