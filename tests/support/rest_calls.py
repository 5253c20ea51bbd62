"""Calls to the REST API of a test's Jupyter server (pytest-jupyter's jp_fetch)."""

from __future__ import annotations

import asyncio
import json

import pytest
from tornado.httpclient import HTTPClientError

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


async def post_json(jp_fetch, *parts, body: dict, **kwargs):
    kwargs.setdefault("request_timeout", 120)  # generation on 2 busy cores can be slow
    return await jp_fetch(*parts, method="POST", body=json.dumps(body), **kwargs)


def json_of(response) -> object:
    """Decode a tornado response body as JSON."""
    return json.loads(response.body.decode())


async def error_of(jp_fetch, *parts, **kwargs) -> tuple[int, dict]:
    """Fetch and return (status, JSON body) of an expected error response."""
    with pytest.raises(HTTPClientError) as raised:
        await jp_fetch(*parts, **kwargs)
    response = raised.value.response
    return raised.value.code, json.loads(response.body.decode()) if response.body else {}


async def wait_for_status(jp_fetch, name: str, wanted: set[str], timeout: float = 180) -> dict:
    """Poll a deployment until its status is one of wanted."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        record = json_of(await jp_fetch("kz/api/deployments", name))
        if record["status"] in wanted:
            return record
        assert asyncio.get_running_loop().time() < deadline, record
        await asyncio.sleep(0.25)
