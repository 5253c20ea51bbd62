"""Warm spare replica actors: a deploy takes the node's spare (no new Ray worker), Ray still
accounts the replica's resources, and a dead spare costs only speed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time

import psutil
import pytest
import ray

from tests.support.rest_calls import QUESTION, json_of, wait_for_status
from tests.support.server_process import JupyterServer

pytestmark = pytest.mark.slow


@pytest.fixture
def pool(jp_serverapp):
    """The Ray pool of the server's kz controller, warmed up as a server's start does (the
    in-process test server does not run the extension's start hook)."""
    controller = jp_serverapp.web_app.settings["kz_controller"]
    controller.warm_up()
    return controller.runner.pool


async def spare_pid(pool) -> int:
    """The worker process id of the node's spare, once the server started one."""
    for _ in range(600):
        spares = pool.spares.waiting()
        if spares:
            return await asyncio.to_thread(ray.get, spares[0].ping.remote(), timeout=120)
        await asyncio.sleep(0.1)
    raise AssertionError("no spare actor was started")


async def deploy(jp_fetch, name: str) -> dict:
    body = {"model": "smollm2", "name": name}
    await jp_fetch("kz/api/deployments", method="POST", body=json.dumps(body))
    record = await wait_for_status(jp_fetch, name, {"DEPLOYED", "FAILED"})
    assert record["status"] == "DEPLOYED", record
    return record


async def answer(jp_fetch, name: str) -> str:
    body = {"model": name, "messages": QUESTION, "max_tokens": 16, "temperature": 0}
    reply = await jp_fetch("kz/v1/chat/completions", method="POST", body=json.dumps(body))
    return json_of(reply)["choices"][0]["message"]["content"]


async def test_a_deploy_takes_the_spare_and_ray_accounts_its_resources(jp_fetch, pool):
    spare = await spare_pid(pool)
    free_before = ray.available_resources()

    record = await deploy(jp_fetch, "spared")
    engine = psutil.Process(record["replicas"][0]["pid"])
    assert engine.parent().pid == spare  # the engine runs under the warm spare
    plan = record["plan"]
    free = ray.available_resources()
    assert free_before["CPU"] - free["CPU"] == 1.0  # c.KzApp.replica_num_cpus
    assert free_before["memory"] - free.get("memory", 0) == plan["memory"]["total"]
    assert "Paris" in await answer(jp_fetch, "spared")
    assert await spare_pid(pool) != spare  # a new spare replaced it

    await jp_fetch("kz/api/deployments", "spared", method="DELETE")
    for _ in range(100):  # the reservation is given back
        if ray.available_resources()["CPU"] == free_before["CPU"]:
            break
        await asyncio.sleep(0.1)
    assert ray.available_resources()["CPU"] == free_before["CPU"]
    assert ray.available_resources()["memory"] == free_before["memory"]


async def test_a_killed_spare_is_replaced_and_the_deploy_still_succeeds(jp_fetch, pool):
    spare = await spare_pid(pool)
    os.kill(spare, signal.SIGKILL)
    psutil.wait_procs([psutil.Process(spare)], timeout=30)

    record = await deploy(jp_fetch, "after-kill")
    engine = psutil.Process(record["replicas"][0]["pid"])
    assert engine.parent().pid != spare
    assert "Paris" in await answer(jp_fetch, "after-kill")
    assert await spare_pid(pool) not in (spare, engine.parent().pid)
    await jp_fetch("kz/api/deployments", "after-kill", method="DELETE")


def test_a_server_starts_ray_and_a_spare_before_any_deploy(tmp_path):
    server = JupyterServer(tmp_path)
    server.start()
    try:
        root = psutil.Process(server.process.pid)
        deadline = time.monotonic() + 120
        while not any("ReplicaActor" in " ".join(p.cmdline()) for p in children(root)):
            assert time.monotonic() < deadline, [p.cmdline() for p in children(root)]
            time.sleep(0.5)
        assert server.api("GET", "api/deployments") == []
    finally:
        server.stop()


def children(process: psutil.Process) -> list[psutil.Process]:
    """The processes a process started, alive now."""
    found = []
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            child.cmdline()
            found.append(child)
    return found
