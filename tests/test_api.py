"""The REST API in a real Jupyter server: auth on every route, bad input, the lifecycle."""

from __future__ import annotations

import asyncio
import json

import pytest
from tornado.httpclient import HTTPClientError

from conftest import json_of

ROUTES = [
    ("GET", "kz/api/deployments"),
    ("POST", "kz/api/deployments"),
    ("GET", "kz/api/deployments/x"),
    ("DELETE", "kz/api/deployments/x"),
    ("GET", "kz/api/deployments/x/logs"),
    ("GET", "kz/api/hardware"),
    ("POST", "kz/api/deployments/smollm2/restart"),
    ("PATCH", "kz/api/deployments/smollm2"),
    ("GET", "kz/api/audit"),
    ("GET", "kz/api/search"),
    ("POST", "kz/api/plan"),
    ("GET", "kz/api/pulls"),
    ("POST", "kz/api/pulls"),
    ("GET", "kz/api/pulls/1"),
    ("GET", "kz/api/models"),
    ("DELETE", "kz/api/models/org/name"),
    ("GET", "kz/api/engines"),
    ("POST", "kz/api/engines/mlx/install"),
    ("GET", "kz/api/engines/mlx/install"),
    ("GET", "kz/v1/models"),
    ("POST", "kz/v1/chat/completions"),
    ("POST", "kz/v1/completions"),
    ("POST", "kz/v1/embeddings"),
]


def body_for(method: str) -> dict:
    return {"body": json.dumps({"model": "smollm2"})} if method in ("POST", "PATCH") else {}


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


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_route_refuses_requests_without_a_token(jp_fetch, method, path):
    status, _ = await error_of(
        jp_fetch, path, method=method, headers={"Authorization": ""}, **body_for(method)
    )
    assert status == 403


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_route_refuses_a_wrong_token(jp_fetch, method, path):
    status, _ = await error_of(
        jp_fetch,
        path,
        method=method,
        headers={"Authorization": "token not-the-token"},
        **body_for(method),
    )
    assert status == 403


async def test_hardware(jp_fetch):
    profile = json_of(await jp_fetch("kz/api/hardware"))
    assert profile["cpu_cores_logical"] >= 1
    assert any(e["name"] == "llamacpp" and e["available"] for e in profile["engines"])


async def test_empty_listings(jp_fetch):
    assert json_of(await jp_fetch("kz/api/deployments")) == []
    assert json_of(await jp_fetch("kz/v1/models")) == {"object": "list", "data": []}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ("{}", "'model' is required"),
        ('{"model": "smollm2", "name": "Bad Name!"}', "Invalid deployment name"),
        ('{"model": "smollm2", "replicas": 0}', "'replicas'"),
        ('{"model": "smollm2", "context_length": "big"}', "'context_length'"),
        ('{"model": "not a repo!"}', "neither a local path"),
    ],
)
async def test_bad_deploy_requests_are_400_with_a_message(jp_fetch, body, message):
    status, error = await error_of(jp_fetch, "kz/api/deployments", method="POST", body=body)
    assert status == 400
    assert message in error["message"]


async def test_unknown_deployment_is_404(jp_fetch):
    for method, path in [
        ("GET", "kz/api/deployments/ghost"),
        ("DELETE", "kz/api/deployments/ghost"),
        ("GET", "kz/api/deployments/ghost/logs"),
    ]:
        status, error = await error_of(jp_fetch, path, method=method)
        assert status == 404 and "No deployment named 'ghost'" in error["message"]


async def test_chat_with_unknown_model_is_an_openai_style_404(jp_fetch):
    status, error = await error_of(
        jp_fetch,
        "kz/v1/chat/completions",
        method="POST",
        body=json.dumps({"model": "ghost", "messages": [{"role": "user", "content": "hi"}]}),
    )
    assert status == 404 and error["error"]["code"] == "model_not_found"


async def test_proxy_rejects_bad_json_with_400(jp_fetch):
    status, error = await error_of(jp_fetch, "kz/v1/chat/completions", method="POST", body="{oops")
    assert status == 400 and "Invalid JSON" in error["error"]["message"]


async def test_deploy_of_missing_file_fails_clearly(jp_fetch, tmp_path):
    missing = tmp_path / "nowhere" / "model.gguf"
    request = {"model": str(missing), "name": "missing"}
    response = await jp_fetch("kz/api/deployments", method="POST", body=json.dumps(request))
    assert response.code == 202
    assert response.headers["Location"].endswith("/kz/api/deployments/missing")
    record = await wait_for_status(jp_fetch, "missing", {"FAILED"})
    assert record["error"]["code"] == "MODEL_LOADING_FAILURE"
    assert str(missing) in record["error"]["message"]
    assert record["error"]["remediation"]
    assert [h["status"] for h in record["history"]] == ["REQUESTED", "FAILED"]
    # a failed name can be deployed again
    await jp_fetch("kz/api/deployments", method="POST", body=json.dumps(request))
    await wait_for_status(jp_fetch, "missing", {"FAILED"})


async def test_deploy_of_a_corrupt_gguf_fails_with_loading_failure(jp_fetch, tmp_path):
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(b"GGUF" + b"\x00" * 64)
    await jp_fetch("kz/api/deployments", method="POST", body=json.dumps({"model": str(corrupt)}))
    record = await wait_for_status(jp_fetch, "corrupt", {"FAILED"})
    assert record["error"]["code"] == "MODEL_LOADING_FAILURE"
