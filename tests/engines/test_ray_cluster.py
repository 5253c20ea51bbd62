"""Deploy onto an existing Ray cluster named by KZ_RAY_ADDRESS (a head node on loopback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from ray._common.utils import get_default_ray_temp_dir

pytestmark = pytest.mark.slow


def test_demo_deploys_on_the_named_cluster(ray_head, tmp_path):
    address, env = ray_head
    env = {**env, "KZ_RAY_ADDRESS": address, "KZ_STATE_DIR": str(tmp_path / "state")}
    env.pop("KZ_SERVER_URL", None)
    demo = subprocess.Popen(
        [sys.executable, "-m", "kz_jupyter.demo"], env=env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    stdout, stderr = demo.communicate(timeout=300)
    assert demo.returncode == 0, stdout + stderr
    assert "DEPLOYED" in stdout and "Paris" in stdout
    assert "smollm2: STOPPED" in stdout
    assert ray_sessions_of(demo.pid) == []  # joined the cluster, started no Ray of its own


def ray_sessions_of(pid: int) -> list[str]:
    """The Ray session folders a process started (a session is named after the process that
    started Ray: session_DATE_TIME_PID); joining a cluster starts none. They are in /tmp/ray
    unless RAY_TMPDIR or TMPDIR says otherwise: Ray's own function says where."""
    return [p.name for p in Path(get_default_ray_temp_dir()).glob(f"session_2*_{pid}")]
