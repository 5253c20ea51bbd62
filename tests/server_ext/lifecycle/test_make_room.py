"""Making room: with a memory budget that holds one deployment, a second one unloads the idle
first (and says so), but never one serving a request, a pinned one, or one still starting."""

from __future__ import annotations

import asyncio
import json

import pytest

from kz_jupyter.server_ext.lifecycle.room import RoomSettings
from tests.support.rest_calls import QUESTION, json_of, wait_for_status
from tests.support.server_config import kz_server_config

pytestmark = pytest.mark.slow

SMALL = {"model": "smollm2", "parallel": 2, "context_length": 2048}  # about 240 MiB planned
BUDGET_GIB = 0.35  # room for one of them, not two


@pytest.fixture
def jp_server_config(tmp_path):
    """A memory budget of one deployment; make_room is on by default outside a hub."""
    return kz_server_config(tmp_path, memory_budget=BUDGET_GIB)


async def post(jp_fetch, name: str, **options) -> None:
    body = SMALL | {"name": name} | options
    await jp_fetch("kz/api/deployments", method="POST", body=json.dumps(body))


async def deploy(jp_fetch, name: str, **options) -> dict:
    await post(jp_fetch, name, **options)
    return await wait_for_status(jp_fetch, name, {"DEPLOYED", "FAILED"})


async def ask(jp_fetch, name: str, **options) -> str:
    body = {"model": name, "messages": QUESTION, "max_tokens": 16, "temperature": 0, **options}
    reply = await jp_fetch(
        "kz/v1/chat/completions", method="POST", body=json.dumps(body), request_timeout=120
    )
    return reply.body.decode()


async def test_a_second_deploy_unloads_the_idle_first_and_says_so(jp_fetch):
    assert (await deploy(jp_fetch, "first"))["status"] == "DEPLOYED"
    second = await deploy(jp_fetch, "second")
    assert second["status"] == "DEPLOYED", second
    assert any("made room: unloaded 'first'" in h["detail"] for h in second["history"])
    first = json_of(await jp_fetch("kz/api/deployments", "first"))
    assert first["status"] == "UNLOADED"
    assert "unloaded to make room for 'second'" in first["history"][-1]["detail"]
    audit = json_of(await jp_fetch("kz/api/audit"))
    assert {"action": "unload", "target": "first", "made_room_for": "second"}.items() <= (
        audit[-1].items()
    )

    # a request to the unloaded one loads it again, making room in turn
    assert "Paris" in await ask(jp_fetch, "first")
    second = json_of(await jp_fetch("kz/api/deployments", "second"))
    assert second["status"] == "UNLOADED"
    assert "unloaded to make room for 'first'" in second["history"][-1]["detail"]


async def test_a_deployment_serving_a_stream_is_not_unloaded(jp_fetch):
    assert (await deploy(jp_fetch, "busy"))["status"] == "DEPLOYED"
    stream = asyncio.create_task(ask(jp_fetch, "busy", stream=True, max_tokens=1500))
    for _ in range(200):
        record = json_of(await jp_fetch("kz/api/deployments", "busy"))
        if record["replicas"][0]["outstanding"]:
            break
        await asyncio.sleep(0.05)
    refused = await deploy(jp_fetch, "newcomer")
    assert refused["status"] == "FAILED"
    assert refused["error"]["code"] == "OOM"
    assert "'busy' is serving 1 request" in refused["error"]["message"]
    assert json_of(await jp_fetch("kz/api/deployments", "busy"))["status"] == "DEPLOYED"
    assert "data: [DONE]" in await stream  # the stream was never cut


async def test_a_pinned_deployment_stays(jp_fetch):
    assert (await deploy(jp_fetch, "kept", pin=True))["status"] == "DEPLOYED"
    refused = await deploy(jp_fetch, "other")
    assert refused["status"] == "FAILED" and refused["error"]["code"] == "OOM"
    assert "'kept' is pinned (--pin)" in refused["error"]["message"]
    assert json_of(await jp_fetch("kz/api/deployments", "kept"))["status"] == "DEPLOYED"


async def test_two_concurrent_deploys_into_room_for_one_do_not_both_start(jp_fetch):
    await asyncio.gather(post(jp_fetch, "left", pin=True), post(jp_fetch, "right", pin=True))
    records = [
        await wait_for_status(jp_fetch, name, {"DEPLOYED", "FAILED"}) for name in ("left", "right")
    ]
    assert sorted(r["status"] for r in records) == ["DEPLOYED", "FAILED"]
    (refused,) = [r for r in records if r["status"] == "FAILED"]
    assert refused["error"]["code"] == "OOM"
    assert (
        "No room for" in refused["error"]["message"]
        or "Will not fit" in (refused["error"]["message"])
    )
    assert all(not r["replicas"] or r["replicas"][0]["pid"] is None for r in [refused])


async def test_max_loaded_makes_room_by_count(jp_fetch, jp_serverapp):
    controller = jp_serverapp.web_app.settings["kz_controller"]
    controller.room.settings = RoomSettings(max_loaded=1)  # no memory budget: a count
    assert (await deploy(jp_fetch, "one"))["status"] == "DEPLOYED"
    two = await deploy(jp_fetch, "two")
    assert two["status"] == "DEPLOYED", two
    one = json_of(await jp_fetch("kz/api/deployments", "one"))
    assert one["status"] == "UNLOADED"
    assert "at most 1 deployments may be loaded at once" in one["history"][-1]["detail"]
