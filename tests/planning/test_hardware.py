"""The hardware profile: a normal answer with or without GPUs."""

from __future__ import annotations

import json

from kz_jupyter.planning.hardware import probe_hardware
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
