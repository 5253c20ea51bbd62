"""The notebooks' saved outputs hold what differs by machine (the user who ran them, the GPUs):
nbval's sanitize rules make the same tables from another user, or from a machine with GPUs,
compare equal, so the notebooks pass for a user who is not root and on a GPU machine."""

from __future__ import annotations

import re
import time

from nbval.plugin import get_sanitize_patterns

from kz_jupyter.magics.text import format_audit, format_deployments, format_hardware
from tests.support.paths import ROOT

PATTERNS = get_sanitize_patterns((ROOT / "notebooks" / "nbval_sanitize.cfg").read_text())


def sanitized(text: str) -> str:
    """The text as nbval compares it."""
    for regex, replace in PATTERNS:
        text = re.sub(regex, replace, text)
    return text


def deployment(owner: str, age: float) -> dict:
    """A deployment record as %kz ps gets it."""
    return {"name": "smollm2", "status": "DEPLOYED", "engine": "llamacpp", "model": "smollm2",
            "replicas": [{"status": "DEPLOYED"}], "created_at": time.time() - age,
            "owner": owner, "visibility": "all"}  # fmt: skip


def audit(user: str) -> list[dict]:
    """Audit entries as %kz audit gets them."""
    return [
        {"at": time.time(), "user": user, "action": "deploy", "target": "smollm2", "share": "all"},
        {"at": time.time(), "user": user, "action": "stop", "target": "smollm2", "owner": user},
    ]


def hardware(gpus: list[dict]) -> dict:
    """A hardware profile with these GPUs."""
    return {"cpu_model": "Some CPU", "cpu_cores_physical": 2, "cpu_cores_logical": 4,
            "ram_available": 2**33, "ram_total": 2**34, "gpus": gpus, "apple_silicon": False,
            "gpu_note": "no NVIDIA driver or GPU", "engines": []}  # fmt: skip


def test_the_user_who_ran_them_is_not_compared():
    assert sanitized(format_deployments([deployment("root", 18)])) == sanitized(
        format_deployments([deployment("a-longer-name", 75)])
    )
    assert sanitized(format_audit(audit("root"))) == sanitized(format_audit(audit("alice")))
    assert "alice" not in sanitized(format_audit(audit("alice")))


def test_the_machines_gpus_are_not_compared():
    gpu = {"index": 0, "name": "H100", "memory_free": 2**36, "memory_total": 2**36}
    two = [gpu, {**gpu, "index": 1}]
    assert sanitized(format_hardware(hardware([]))) == sanitized(format_hardware(hardware(two)))


def test_the_time_each_indexing_step_took_is_not_compared():
    assert sanitized("reading 46 files... (+0.4 s)") == sanitized("reading 46 files... (+12.9 s)")
