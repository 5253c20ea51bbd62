"""A two-node Ray cluster on this machine (a head and a worker with distinct custom resources),
a Jupyter server joined to it, and replicas placed by resources. Run inside a network namespace
of its own (`unshare -n`), where loopback is the only interface, so that Ray's multi-node mode
keeps every address on 127.0.0.1; with RAY_AUTH_MODE=token and
RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=1 in its environment (Ray reads them on import). Prints one
JSON line with what it saw.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import ray

from kz_jupyter.engines.process import free_port
from tests.support.ray_cluster import stop_cluster
from tests.support.server_process import JupyterServer

RAY = str(Path(sys.executable).with_name("ray"))
ENV = {"RAY_AUTH_MODE": "token", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"}


def ray_start(*args: str) -> None:
    subprocess.run(
        [RAY, "start", "--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats",
         *args],
        env=os.environ | ENV, check=True, capture_output=True, timeout=120,
    )  # fmt: skip


def main() -> None:
    """Start the cluster and the server; place replicas by resources; report."""
    port = free_port("127.0.0.1")
    address = f"127.0.0.1:{port}"
    ray_start("--head", f"--port={port}", "--include-dashboard=false",
              '--resources={"kz_head": 1}')  # fmt: skip
    ray_start(f"--address={address}", '--resources={"kz_worker": 1}')
    ray.init(address=address, logging_level="ERROR")
    nodes = {
        name: node["NodeID"]
        for node in ray.nodes()
        for name in ("kz_head", "kz_worker")
        if node["Alive"] and name in node["Resources"]
    }
    home = Path(tempfile.mkdtemp(prefix="kz-multinode-"))
    server = JupyterServer(
        home,
        {**ENV, "KZ_RAY_ADDRESS": address, "KZ_ENGINE_HOST": ""},
        ["--KzApp.placement_timeout=15", "--KzApp.replica_num_cpus=0.5"],
    )
    server.start()
    report: dict = {"nodes": nodes}
    try:
        for name, resource in (("on-worker", "kz_worker"), ("on-head", "kz_head")):
            body = {"model": "smollm2", "name": name, "resources": {resource: 0.5}}
            server.api("POST", "api/deployments", json=body)
        for name in ("on-worker", "on-head"):
            record = server.wait_deployed(name)
            replica = record["replicas"][0] if record["replicas"] else {}
            report[name] = {
                "status": record["status"],
                "node_id": replica.get("node_id"),
                "endpoint": replica.get("endpoint"),
                "answer": server.ask(name) if record["status"] == "DEPLOYED" else "",
            }
        body = {"model": "smollm2", "name": "nowhere", "resources": {"kz_gpu_box": 1}}
        server.api("POST", "api/deployments", json=body)
        record = server.wait_deployed("nowhere", timeout=120)
        report["nowhere"] = {"status": record["status"], "error": record["error"]}
        for name in ("on-worker", "on-head"):
            server.api("DELETE", f"api/deployments/{name}")
    finally:
        server.stop()
        ray.shutdown()
        stop_cluster(port)  # never `ray stop`: it would end every Ray on the machine
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
