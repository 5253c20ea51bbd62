"""The REST API in a real Jupyter server: auth on every route, bad input, the lifecycle."""

from __future__ import annotations

import json

import pytest
from tornado.httpclient import HTTPClientError

from kz_jupyter.server_ext.api.openapi import openapi
from tests.support.rest_calls import error_of, json_of, wait_for_status

# Every route the extension registers (tests/test_openapi.py keeps the description equal to
# them), its path parameters filled in.
EXAMPLE_PARAMETERS = {"name": "smollm2", "job_id": "1"}
ROUTES = [
    (method.upper(), path.lstrip("/").format(**EXAMPLE_PARAMETERS))
    for path, item in openapi()["paths"].items()
    for method in item
    if method != "parameters"
]


def body_for(method: str) -> dict:
    return {"body": json.dumps({"model": "smollm2"})} if method in ("POST", "PATCH") else {}


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
        ('{"model": "smollm2", "context_length": -1}', "'context_length' must be an integer"),
        ('{"model": "smollm2", "context_length": 1e308}', "'context_length' must be an integer"),
        ('{"model": "smollm2", "context_length": 10000000000000000000000}', "'context_length'"),
        ('{"model": "smollm2", "replicas": 100000}', "'replicas' must be an integer from 1"),
        ('{"model": "smollm2", "keep_alive": -5}', "'keep_alive'"),
        ('{"model": "smollm2", "force": "yes"}', "'force' must be true or false"),
        ('{"model": "smollm2", "gpu_memory_utilization": 2}', "'gpu_memory_utilization'"),
        ('{"model": "smollm2", "extra_args": "--seed 1"}', "'extra_args' must be a list"),
        ('{"model": "smollm2", "name": "../../etc"}', "Invalid deployment name"),
        (r'{"model": "smollm2", "name": "caf\u00e9\u0000"}', "Invalid deployment name"),
        ('{"model": "smollm2", "name": "' + "a" * 64 + '"}', "at most 63 characters"),
        (r'{"model": "\u0000\u202e"}', "neither a local path"),
        ('{"model": "~nobody-here/model.gguf"}', "'~nobody-here' names no user"),  # fuzzing
        ('{"model": "smollm2", "lora_adapters": {"fr": "~nobody-here/fr"}}', "names no user"),
        ('{"model": "smollm2", "kv_cache_type": "q3"}', "'kv_cache_type' must be one of f32"),
        ('{"model": "smollm2", "draft_model": 7}', "'draft_model' must be a string"),
        ('{"model": "smollm2", "draft_model": "~nobody-here/d.gguf"}', "names no user"),
    ],
)
async def test_bad_deploy_requests_are_400_with_a_message(jp_fetch, body, message):
    status, error = await error_of(jp_fetch, "kz/api/deployments", method="POST", body=body)
    assert status == 400
    assert message in error["message"]


async def test_a_huge_body_is_refused_without_harm(jp_fetch):
    body = json.dumps({"model": "x" * 5_000_000})
    status, error = await error_of(jp_fetch, "kz/api/deployments", method="POST", body=body)
    assert status == 400 and "'model' is 5000000 characters long" in error["message"]
    assert len(error["message"]) < 1000  # the message does not echo the body back
    assert json_of(await jp_fetch("kz/api/deployments")) == []


async def test_unknown_deployment_is_404(jp_fetch):
    status, error = await error_of(jp_fetch, "kz/api/deployments/..%2F..%2Fetc%2Fpasswd")
    assert status == 404 and error["message"].startswith("No deployment named")
    status, error = await error_of(jp_fetch, "kz/api/deployments/ghost")
    assert error["message"] == "No deployment named 'ghost'. List them with %kz ps."
    for method, path in [
        ("GET", "kz/api/deployments/ghost"),
        ("DELETE", "kz/api/deployments/ghost"),
        ("GET", "kz/api/deployments/ghost/logs"),
    ]:
        status, error = await error_of(jp_fetch, path, method=method)
        assert status == 404 and "No deployment named 'ghost'" in error["message"]


async def test_unknown_routes_methods_and_flags_are_explained(jp_fetch):
    for method, path in [("GET", "kz/api/nothing"), ("POST", "kz/v1/nothing"),
                         ("GET", "kz/api/pulls/not-a-number")]:  # fmt: skip
        body = "{}" if method == "POST" else None
        status, error = await error_of(jp_fetch, path, method=method, body=body)
        assert status == 404 and "/kz/api/openapi.json" in error["message"], error
    status, _ = await error_of(jp_fetch, "kz/api/nothing", headers={"Authorization": ""})
    assert status == 403
    with pytest.raises(HTTPClientError) as raised:
        await jp_fetch("kz/api/hardware", method="DELETE")
    assert raised.value.code == 405 and raised.value.response.headers["Allow"] == "GET, OPTIONS"
    status, error = await error_of(jp_fetch, "kz/api/hardware", params={"engines": "maybe"})
    assert status == 400 and error["message"] == "'engines' takes true or false, not 'maybe'."


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
    # a FAILED record is removed from the list with forget=true (a plain DELETE keeps it)
    status, error = await error_of(jp_fetch, "kz/api/deployments/missing", method="DELETE",
                                   params={"forget": "maybe"})  # fmt: skip
    assert status == 400 and error["message"] == "'forget' takes true or false, not 'maybe'."
    await jp_fetch("kz/api/deployments/missing", method="DELETE")
    assert [r["name"] for r in json_of(await jp_fetch("kz/api/deployments"))] == ["missing"]
    removed = await jp_fetch("kz/api/deployments/missing", method="DELETE",
                             params={"forget": "true"})  # fmt: skip
    assert json_of(removed)["status"] == "FAILED"
    assert json_of(await jp_fetch("kz/api/deployments")) == []
    status, _ = await error_of(jp_fetch, "kz/api/deployments/missing")
    assert status == 404


async def test_deploy_of_a_corrupt_gguf_fails_with_loading_failure(jp_fetch, tmp_path):
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(b"GGUF" + b"\x00" * 64)
    await jp_fetch("kz/api/deployments", method="POST", body=json.dumps({"model": str(corrupt)}))
    record = await wait_for_status(jp_fetch, "corrupt", {"FAILED"})
    assert record["error"]["code"] == "MODEL_LOADING_FAILURE"


async def test_a_browser_session_needs_the_xsrf_token_to_change_anything(
    jp_serverapp, jp_base_url, http_server_client
):
    from http.cookies import SimpleCookie
    from urllib.parse import urlencode

    http = http_server_client  # the test server's own client, on its loop
    base = jp_base_url  # the client adds the server's address
    cookies: SimpleCookie = SimpleCookie()

    def keep(response) -> None:
        for header in response.headers.get_list("Set-Cookie"):
            cookies.load(header)

    def cookie_header() -> str:
        return "; ".join(f"{key}={morsel.value}" for key, morsel in cookies.items())

    keep(await http.fetch(base + "login"))
    xsrf = cookies["_xsrf"].value
    form = urlencode({"_xsrf": xsrf, "password": jp_serverapp.identity_provider.token})
    login = await http.fetch(base + "login", method="POST", body=form, follow_redirects=False,
                             headers={"Cookie": cookie_header()}, raise_error=False)  # fmt: skip
    assert login.code == 302
    keep(login)

    async def call(method: str, path: str, **headers) -> int:
        kwargs = {"body": json.dumps({"model": ""})} if method in ("POST", "PATCH") else {}
        headers = {"Cookie": cookie_header(), **headers}
        answer = await http.fetch(base + path, method=method, raise_error=False, headers=headers,
                                  **kwargs)  # fmt: skip
        return answer.code

    assert await call("GET", "kz/api/deployments") == 200  # reading needs the session only
    for method, path in [r for r in ROUTES if r[0] != "GET"]:
        assert await call(method, path) == 403, (method, path)  # no XSRF token: refused
    # with the token, the request gets through to the handler (which refuses the empty model)
    assert await call("POST", "kz/api/deployments", **{"X-XSRFToken": xsrf}) == 400
