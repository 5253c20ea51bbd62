"""Health and healing with real engines: kill -9, restarts with backoff, replicas, FAILED."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal

import psutil
import pytest

from tests.support.rest_calls import QUESTION, json_of, wait_for_status
from tests.support.server_config import kz_server_config

pytestmark = pytest.mark.slow


@pytest.fixture
def jp_server_config(tmp_path):
    """Fast healing so the tests see restarts within seconds."""
    return kz_server_config(tmp_path, max_restarts=2, restart_backoff=0.5)


async def wait_healed(jp_fetch, name: str) -> dict:
    """Wait until the deployment has been through ERROR and is DEPLOYED again."""
    deadline = asyncio.get_running_loop().time() + 120
    while True:
        record = json_of(await jp_fetch("kz/api/deployments", name))
        statuses = [h["status"] for h in record["history"]]
        if "ERROR" in statuses and record["status"] == "DEPLOYED":
            return record
        assert record["status"] != "FAILED", record
        assert asyncio.get_running_loop().time() < deadline, record
        await asyncio.sleep(0.25)


async def deploy(jp_fetch, **body) -> dict:
    await jp_fetch("kz/api/deployments", method="POST", body=json.dumps(body))
    record = await wait_for_status(jp_fetch, body.get("name", "smollm2"), {"DEPLOYED", "FAILED"})
    assert record["status"] == "DEPLOYED", record
    return record


async def chat(jp_fetch, name: str, streaming_callback=None, **options):
    body = {"model": name, "messages": QUESTION, "max_tokens": 16, "temperature": 0, **options}
    return await jp_fetch(
        "kz/v1/chat/completions",
        method="POST",
        body=json.dumps(body),
        streaming_callback=streaming_callback,
        request_timeout=120,
    )


async def test_engine_killed_mid_stream_errors_cleanly_then_heals(jp_fetch):
    record = await deploy(jp_fetch, model="smollm2")
    pid = record["replicas"][0]["pid"]
    chunks: list[bytes] = []

    def kill_on_first_chunk(chunk: bytes) -> None:
        if not chunks:
            os.kill(pid, signal.SIGKILL)
        chunks.append(chunk)

    response = await chat(
        jp_fetch, "smollm2", stream=True, max_tokens=400, streaming_callback=kill_on_first_chunk
    )
    assert response.code == 200
    events = [line[6:] for line in b"".join(chunks).decode().splitlines()
              if line.startswith("data: ")]  # fmt: skip
    assert "[DONE]" not in events
    error = json.loads(events[-1])["error"]
    assert error["code"] == "engine_stream_broken" and "mid-response" in error["message"]

    healed = await wait_healed(jp_fetch, "smollm2")
    statuses = [h["status"] for h in healed["history"]]
    assert statuses[-2:] == ["ERROR", "DEPLOYED"]
    error_entry = healed["history"][-2]
    assert (
        error_entry["detail"].startswith("CONTAINER_EXITED")
        and "restart 1/2" in error_entry["detail"]
    )
    (replica,) = healed["replicas"]
    assert replica["restarts"] == 1 and replica["pid"] != pid
    assert healed["error"] is None
    reply = json_of(await chat(jp_fetch, "smollm2"))
    assert "Paris" in reply["choices"][0]["message"]["content"]


async def test_engine_that_keeps_failing_becomes_failed_with_its_code(jp_fetch, tmp_path):
    from kz_jupyter.models.references import find_pip_shipped

    model = tmp_path / "vanishing.gguf"
    shutil.copy(find_pip_shipped("smollm2").path, model)
    record = await deploy(jp_fetch, model=str(model), name="vanishing")
    data = model.read_bytes()
    model.write_bytes(data[: len(data) // 2])  # the weights get corrupted under the deployment
    os.kill(record["replicas"][0]["pid"], signal.SIGKILL)

    failed = await wait_for_status(jp_fetch, "vanishing", {"FAILED"}, timeout=120)
    assert failed["error"]["code"] == "MODEL_LOADING_FAILURE"
    assert "still failing after 2 restarts" in failed["error"]["message"]
    assert failed["error"]["remediation"]
    statuses = [h["status"] for h in failed["history"]]
    assert statuses.count("ERROR") == 2 and statuses[-1] == "FAILED"
    assert all(r["status"] == "STOPPED" for r in failed["replicas"])


async def test_traffic_continues_when_one_of_two_replicas_dies(jp_fetch):
    record = await deploy(jp_fetch, model="smollm2", replicas=2)
    first, second = record["replicas"]
    assert first["endpoint"] != second["endpoint"]
    os.kill(first["pid"], signal.SIGKILL)
    for _ in range(4):  # some land on the dead replica before the monitor notices
        reply = json_of(await chat(jp_fetch, "smollm2"))
        assert "Paris" in reply["choices"][0]["message"]["content"]
    healed = await wait_healed(jp_fetch, "smollm2")
    assert [r["restarts"] for r in healed["replicas"]] == [1, 0]


async def test_a_killed_ray_actor_takes_its_engine_and_is_replaced(jp_fetch):
    record = await deploy(jp_fetch, model="smollm2")
    (replica,) = record["replicas"]
    engine = psutil.Process(replica["pid"])
    actor = engine.parent()  # the Ray worker process that holds the replica's actor
    assert "ray" in " ".join(actor.cmdline()).lower(), actor.cmdline()
    actor.kill()
    engine.wait(timeout=30)  # the engine does not outlive its actor (PR_SET_PDEATHSIG)

    healed = await wait_healed(jp_fetch, "smollm2")
    (new,) = healed["replicas"]
    assert new["actor_name"] != replica["actor_name"] and new["pid"] != replica["pid"]
    assert "restart 1/2" in healed["history"][-2]["detail"]
    reply = json_of(await chat(jp_fetch, "smollm2"))
    assert "Paris" in reply["choices"][0]["message"]["content"]
