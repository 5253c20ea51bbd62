"""Following an engine's log live over the REST API, until the deployment stops."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.support.rest_calls import wait_for_status

pytestmark = pytest.mark.slow


def lines_of(received: list[bytes]) -> list[bytes]:
    """The NDJSON lines received, without the blank heartbeat lines of a quiet log."""
    return [line for line in b"".join(received).splitlines() if line.strip()]


async def test_follow_streams_the_tail_then_new_lines_until_stop(jp_fetch):
    await jp_fetch("kz/api/deployments", method="POST", body=json.dumps({"model": "smollm2"}))
    await wait_for_status(jp_fetch, "smollm2", {"DEPLOYED"})
    received: list[bytes] = []
    follow = asyncio.ensure_future(
        jp_fetch(
            "kz/api/deployments/smollm2/logs",
            params={"follow": "true", "lines": 5},
            streaming_callback=received.append,
            request_timeout=120,
        )
    )
    await asyncio.sleep(1.5)
    tail_count = len(lines_of(received))
    assert tail_count >= 1
    chat = {"model": "smollm2", "max_tokens": 4,
            "messages": [{"role": "user", "content": "Hi"}]}  # fmt: skip
    await jp_fetch(
        "kz/v1/chat/completions", method="POST", body=json.dumps(chat), request_timeout=120
    )
    await asyncio.sleep(1.5)  # the follower polls twice a second
    await jp_fetch("kz/api/deployments/smollm2", method="DELETE")
    response = await asyncio.wait_for(follow, timeout=30)  # ends once the deployment stops
    assert response.headers["Content-Type"] == "application/x-ndjson"
    events = [json.loads(line) for line in lines_of(received)]
    assert {e["replica"] for e in events} == {"smollm2-0"}
    new_lines = [e["line"] for e in events[tail_count:]]
    assert any("prompt eval time" in line for line in new_lines), new_lines  # the chat's timing
    assert all(e["issue"] is None for e in events)
