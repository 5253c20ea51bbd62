"""Placement by resources on a real two-node Ray cluster (head + worker on this machine, inside
a network namespace of their own so every address stays on loopback), as root or as a normal
user."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.support.paths import ROOT, SUPPORT

pytestmark = pytest.mark.slow

SCENARIO = SUPPORT / "multinode_scenario.py"


@pytest.fixture(scope="module")
def report() -> dict:
    """Run the scenario in a fresh network namespace; return what it saw. A normal user may
    make one inside a user namespace of their own, where they are root (`--map-root-user`)."""
    assert shutil.which("unshare") and shutil.which("ip"), "needs util-linux unshare and iproute2"
    own_user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    done = subprocess.run(
        ["unshare", *own_user, "--net", "sh", "-c",
         f'ip link set lo up && exec "{sys.executable}" "{SCENARIO}"'],
        capture_output=True, text=True, timeout=600, cwd=SCENARIO.parent,
        env=os.environ | {"RAY_AUTH_MODE": "token", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1",
                          "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_replicas_land_on_the_node_with_the_requested_resource(report):
    nodes = report["nodes"]
    assert set(nodes) == {"kz_head", "kz_worker"} and nodes["kz_head"] != nodes["kz_worker"]
    assert report["on-worker"]["status"] == "DEPLOYED"
    assert report["on-worker"]["node_id"] == nodes["kz_worker"]
    assert report["on-head"]["node_id"] == nodes["kz_head"]


def test_the_proxy_reaches_a_replica_on_another_node(report):
    assert report["on-worker"]["endpoint"].startswith("http://127.0.0.1:")
    assert "Paris" in report["on-worker"]["answer"]
    assert "Paris" in report["on-head"]["answer"]


def test_resources_no_node_has_fail_with_a_clear_message(report):
    nowhere = report["nowhere"]
    assert nowhere["status"] == "FAILED"
    assert "Ray found no node with CPU 0.5, kz_gpu_box 1 free" in nowhere["error"]["message"]
