"""Deploy onto an existing Ray cluster named by KZ_RAY_ADDRESS (a head node on loopback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_demo_deploys_on_the_named_cluster(ray_head, tmp_path):
    address, env = ray_head
    env = {**env, "KZ_RAY_ADDRESS": address, "KZ_STATE_DIR": str(tmp_path / "state")}
    env.pop("KZ_SERVER_URL", None)
    sessions_before = ray_sessions()
    done = subprocess.run(
        [sys.executable, "-m", "kz_jupyter.demo"],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "DEPLOYED" in done.stdout and "Paris" in done.stdout
    assert "smollm2: STOPPED" in done.stdout
    assert ray_sessions() == sessions_before  # joined the cluster, started no Ray of its own


def ray_sessions() -> set[str]:
    """Ray's session folders: a Ray started locally adds one, joining a cluster does not."""
    return {p.name for p in Path("/tmp/ray").glob("session_2*")}
