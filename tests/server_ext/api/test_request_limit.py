"""A deployment takes at most c.KzApp.max_requests_per_deployment requests at once through the
proxy (those waiting for an unloaded one to load count too); past that, a clear 429 with
Retry-After, and nothing is lost once load falls."""

from __future__ import annotations

import asyncio
import json

import pytest
from tornado.httpclient import HTTPClientError

from kz_jupyter.server_ext.lifecycle.routing import RETRY_AFTER_SECONDS
from tests.support.rest_calls import json_of, post_json, wait_for_status

pytestmark = pytest.mark.slow
WORDS = "one two three four five six seven eight nine ten"


@pytest.fixture
def jp_server_config(tmp_path):
    """The extension, taking two requests per deployment at once."""
    return {
        "ServerApp": {"jpserver_extensions": {"kz_jupyter.server_ext": True}},
        "KzApp": {"state_dir": str(tmp_path / "kz-state"), "max_requests_per_deployment": 2},
    }


async def test_requests_past_the_limit_are_refused_with_429_then_served(jp_fetch, smollm2_path):
    # the echo engine streams a word every 0.2 s: each answer holds its request for about 2 s
    body = {"model": str(smollm2_path), "engine": "echo", "name": "slow",
            "extra_args": ["--word-delay", "0.2"]}  # fmt: skip
    assert (await post_json(jp_fetch, "kz/api/deployments", body=body)).code == 202
    record = await wait_for_status(jp_fetch, "slow", {"DEPLOYED", "FAILED"})
    assert record["status"] == "DEPLOYED", record
    chat = {"model": "slow", "messages": [{"role": "user", "content": WORDS}], "stream": True}

    async def stream() -> str:
        chunks: list[bytes] = []
        await post_json(jp_fetch, "kz/v1/chat/completions", body=chat,
                        streaming_callback=chunks.append)  # fmt: skip
        return b"".join(chunks).decode()

    first = [asyncio.create_task(stream()) for _ in range(2)]
    await asyncio.sleep(0.5)  # both are streaming now
    with pytest.raises(HTTPClientError) as refused:
        await jp_fetch("kz/v1/chat/completions", method="POST", body=json.dumps(chat))
    assert refused.value.code == 429
    assert refused.value.response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    error = json.loads(refused.value.response.body)
    assert error["error"]["code"] == "too_many_requests"
    assert "max_requests_per_deployment" in error["error"]["message"]
    for text in await asyncio.gather(*first):  # the two in flight were not disturbed
        assert text.rstrip().endswith("data: [DONE]") and "ten" in text
    assert "ten" in await stream()  # the limit frees as requests end
    record = json_of(await jp_fetch("kz/api/deployments", "slow"))
    assert record["status"] == "DEPLOYED"


async def test_requests_waiting_for_an_unloaded_deployment_count_against_the_limit(
    jp_fetch, smollm2_path
):
    body = {"model": str(smollm2_path), "engine": "echo", "name": "sleepy", "keep_alive": 1}
    assert (await post_json(jp_fetch, "kz/api/deployments", body=body)).code == 202
    assert (await wait_for_status(jp_fetch, "sleepy", {"DEPLOYED"}))["status"] == "DEPLOYED"
    await wait_for_status(jp_fetch, "sleepy", {"UNLOADED"}, timeout=30)
    chat = {"model": "sleepy", "messages": [{"role": "user", "content": "one two"}]}

    async def ask() -> int:
        try:
            return (await post_json(jp_fetch, "kz/v1/chat/completions", body=chat)).code
        except HTTPClientError as error:
            return error.code

    # all three arrive while it is unloaded: two wait for the load and are served, one is not
    assert sorted(await asyncio.gather(*(ask() for _ in range(3)))) == [200, 200, 429]
