"""Deploy onto an existing Ray cluster named by KZ_RAY_ADDRESS (a head node on loopback)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from kz_jupyter.engines.process import free_port

pytestmark = pytest.mark.slow

RAY = str(Path(sys.executable).with_name("ray"))
# Ray sends its cluster token only in token mode, and rewrites a loopback head address to the
# machine's address unless this is off: both are needed for a cluster kept on 127.0.0.1.
RAY_ENV = {"RAY_AUTH_MODE": "token", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


@pytest.fixture
def ray_head():
    """A Ray head node started with `ray start`, listening on 127.0.0.1 only."""
    port = free_port("127.0.0.1")
    env = {**os.environ, **RAY_ENV}
    subprocess.run(
        [RAY, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
         "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats"],
        env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    yield f"127.0.0.1:{port}", env
    stop_cluster(port)


def stop_cluster(port: int) -> None:
    """Kill this cluster's processes only: `ray stop` would kill every Ray on the machine,
    including the local Ray other tests of this process use."""
    roots = [
        process
        for process in psutil.process_iter(["cmdline"])
        if any(f"127.0.0.1:{port}" in arg or arg == f"--gcs_server_port={port}"
               for arg in process.info["cmdline"] or ())
    ]  # fmt: skip
    tree = {p for root in roots for p in [root, *safe_children(root)]}
    for process in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(list(tree), timeout=30)


def safe_children(process: psutil.Process) -> list[psutil.Process]:
    """A process's descendants; none when it has already exited."""
    try:
        return process.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


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
