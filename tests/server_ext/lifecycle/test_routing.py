"""Routing over a deployment's replicas: requests go to the replica with the fewest in flight, so
two replicas share concurrent streams evenly; a stop waits for a stream in flight to end whole."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.support.metric_samples import samples
from tests.support.rest_calls import json_of, post_json, wait_for_status
from tests.support.server_config import kz_server_config

pytestmark = pytest.mark.slow
WORDS = "one two three four five six seven eight nine ten"


@pytest.fixture
def jp_server_config(tmp_path):
    """The extension, with no limit on requests in flight."""
    return kz_server_config(tmp_path)


async def test_replicas_share_streams_and_a_stop_drains_the_one_in_flight(jp_fetch, smollm2_path):
    # the echo engine streams a word every 0.2 s: each answer holds its replica for about 2 s
    body = {"model": str(smollm2_path), "engine": "echo", "name": "pair", "replicas": 2,
            "extra_args": ["--word-delay", "0.2"]}  # fmt: skip
    assert (await post_json(jp_fetch, "kz/api/deployments", body=body)).code == 202
    record = await wait_for_status(jp_fetch, "pair", {"DEPLOYED", "FAILED"})
    assert record["status"] == "DEPLOYED" and len(record["replicas"]) == 2, record
    chat = {"model": "pair", "messages": [{"role": "user", "content": WORDS}], "stream": True}

    async def stream() -> tuple[str, float]:
        chunks: list[bytes] = []
        await post_json(jp_fetch, "kz/v1/chat/completions", body=chat,
                        streaming_callback=chunks.append)  # fmt: skip
        return b"".join(chunks).decode(), time.monotonic()

    answers = await asyncio.gather(*(stream() for _ in range(4)))
    assert all(text.rstrip().endswith("data: [DONE]") for text, _ in answers)
    metrics = (await jp_fetch("kz/metrics")).body.decode()
    replicas = [r["id"] for r in record["replicas"]]
    served = [samples(metrics, "kz_requests_total", deployment="pair", replica=r) for r in replicas]
    assert served == [2, 2], served  # four at once: two each, never three on one

    in_flight = asyncio.create_task(stream())
    await asyncio.sleep(0.5)  # streaming now, about 1.5 s to go
    stopped = json_of(await jp_fetch("kz/api/deployments", "pair", method="DELETE"))
    stop_returned = time.monotonic()
    text, ended = await in_flight
    assert "ten" in text and text.rstrip().endswith("data: [DONE]"), text  # whole, not cut
    assert stopped["status"] == "STOPPED" and stop_returned >= ended
