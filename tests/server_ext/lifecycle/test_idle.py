"""Idle unload: a deployment idle past its keep_alive is UNLOADED (its engine ends) and the next
requests load it again, waiting rather than failing."""

from __future__ import annotations

import asyncio
import json

import psutil
import pytest

from tests.support.rest_calls import QUESTION, error_of, json_of, wait_for_status

pytestmark = pytest.mark.slow


async def ask(jp_fetch, name: str) -> str:
    body = {"model": name, "messages": QUESTION, "max_tokens": 16, "temperature": 0}
    reply = await jp_fetch(
        "kz/v1/chat/completions", method="POST", body=json.dumps(body), request_timeout=120
    )
    return json_of(reply)["choices"][0]["message"]["content"]


async def test_idle_deployment_unloads_then_reloads_on_request(jp_fetch):
    body = {"model": "smollm2", "name": "sleepy", "keep_alive": 2}
    await jp_fetch("kz/api/deployments", method="POST", body=json.dumps(body))
    record = await wait_for_status(jp_fetch, "sleepy", {"DEPLOYED", "FAILED"})
    engine = psutil.Process(record["replicas"][0]["pid"])
    assert "Paris" in await ask(jp_fetch, "sleepy")

    record = await wait_for_status(jp_fetch, "sleepy", {"UNLOADED"}, timeout=30)
    assert "keep_alive 2 s): engine unloaded" in record["history"][-1]["detail"]
    gone, _ = psutil.wait_procs([engine], timeout=30)
    assert gone  # the engine ended: its memory is free
    models = json_of(await jp_fetch("kz/v1/models"))
    assert [m["id"] for m in models["data"]] == ["sleepy"]  # still offered: loads on request

    answers = await asyncio.gather(ask(jp_fetch, "sleepy"), ask(jp_fetch, "sleepy"))
    assert all("Paris" in a for a in answers)
    record = json_of(await jp_fetch("kz/api/deployments/sleepy"))
    assert record["status"] == "DEPLOYED" and len(record["replicas"]) == 1
    loads = [h for h in record["history"] if h["detail"].startswith("loaded again in")]
    assert len(loads) == 1  # two waiting requests, one load

    await wait_for_status(jp_fetch, "sleepy", {"UNLOADED"}, timeout=30)
    stopped = json_of(await jp_fetch("kz/api/deployments/sleepy", method="DELETE"))
    assert stopped["status"] == "STOPPED"


async def test_keep_alive_must_be_a_number_of_seconds(jp_fetch):
    body = {"model": "smollm2", "keep_alive": "5m"}
    status, error = await error_of(
        jp_fetch, "kz/api/deployments", method="POST", body=json.dumps(body)
    )
    assert status == 400 and "'keep_alive' must be an integer from -1" in error["message"]
