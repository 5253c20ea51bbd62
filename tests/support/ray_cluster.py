"""A Ray head node of the tests' own, and how to end only its processes."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import psutil

RAY = str(Path(sys.executable).with_name("ray"))
# Ray sends its cluster token only in token mode, and rewrites a loopback head address to the
# machine's address unless this is off: both are needed for a cluster kept on 127.0.0.1.
RAY_ENV = {"RAY_AUTH_MODE": "token", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


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
