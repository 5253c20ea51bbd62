"""Deploy -> chat (streamed and not) -> stop of SmolLM2 through the REST API and `openai`."""

from __future__ import annotations

import asyncio
import json

import openai
import psutil
import pytest

from tests.support.metric_samples import has_sample, samples
from tests.support.rest_calls import QUESTION, error_of, json_of, post_json, wait_for_status

pytestmark = pytest.mark.slow


async def test_deploy_chat_stop_through_rest_and_openai(
    jp_fetch, jp_serverapp, jp_http_port, jp_base_url
):
    response = await post_json(jp_fetch, "kz/api/deployments", body={"model": "smollm2"})
    assert response.code == 202 and json_of(response)["status"] == "REQUESTED"
    record = await wait_for_status(jp_fetch, "smollm2", {"DEPLOYED", "FAILED"})
    assert record["status"] == "DEPLOYED", record
    assert [h["status"] for h in record["history"]] == [
        "REQUESTED",
        "DEPLOYING",
        "INITIALIZING",
        "DEPLOYED",
    ]
    assert record["engine"] == "llamacpp" and record["plan"]["can_chat"]
    (replica,) = record["replicas"]
    assert replica["status"] == "DEPLOYED"
    assert replica["endpoint"].startswith("http://127.0.0.1:")  # engines listen on loopback
    engine = psutil.Process(replica["pid"])

    models = json_of(await jp_fetch("kz/v1/models"))
    assert [m["id"] for m in models["data"]] == ["smollm2"]

    # non-streamed chat through the proxy
    reply = json_of(
        await post_json(
            jp_fetch,
            "kz/v1/chat/completions",
            body={"model": "smollm2", "messages": QUESTION, "max_tokens": 24, "temperature": 0},
        )
    )
    assert "Paris" in reply["choices"][0]["message"]["content"]

    # streamed chat: server-sent events relayed as they come
    chunks: list[bytes] = []
    await post_json(
        jp_fetch,
        "kz/v1/chat/completions",
        body={
            "model": "smollm2",
            "messages": QUESTION,
            "max_tokens": 24,
            "temperature": 0,
            "stream": True,
        },
        streaming_callback=chunks.append,
    )
    events = [
        line[6:] for line in b"".join(chunks).decode().splitlines() if line.startswith("data: ")
    ]
    assert events[-1] == "[DONE]" and len(events) > 3
    text = "".join(json.loads(e)["choices"][0]["delta"].get("content") or "" for e in events[:-1])
    assert "Paris" in text

    # two users streaming at once: the engine queues the second request, and neither answer
    # is cut short (llama-cpp-python's server ends a stream early when another request waits,
    # unless told not to)
    async def stream_events(body: dict) -> list[dict]:
        pieces: list[bytes] = []
        await post_json(jp_fetch, "kz/v1/chat/completions", body=body,
                        streaming_callback=pieces.append)  # fmt: skip
        data = [line[6:] for line in b"".join(pieces).decode().splitlines()
                if line.startswith("data: ")]  # fmt: skip
        assert data[-1] == "[DONE]"
        return [json.loads(event) for event in data[:-1]]

    body = {"model": "smollm2", "messages": QUESTION, "max_tokens": 24, "temperature": 0,
            "stream": True}  # fmt: skip
    for events in await asyncio.gather(stream_events(body), stream_events(body)):
        assert events[-1]["choices"][0]["finish_reason"] in ("stop", "length"), events[-1]
        answer = "".join(e["choices"][0]["delta"].get("content") or "" for e in events)
        assert "Paris" in answer

    # tokens come from the engine's usage: the proxy asks for it in every stream and takes it
    # out again where the client did not ask; the engine's queue is read from its /metrics
    async def scrape() -> str:
        return (await jp_fetch("kz/metrics")).body.decode()

    before = await scrape()
    asked = await stream_events(body | {"stream_options": {"include_usage": True}})
    usage = asked[-1]["usage"]
    assert asked[-1]["choices"] == [] and usage["prompt_tokens"] > 10
    assert all("usage" not in event for event in await stream_events(body))
    after = await scrape()
    tokens = {
        kind: samples(after, f"kz_{kind}_tokens_total", deployment="smollm2")
        - samples(before, f"kz_{kind}_tokens_total", deployment="smollm2")
        for kind in ("prompt", "completion")
    }
    assert tokens["prompt"] == 2 * usage["prompt_tokens"]
    assert tokens["completion"] > usage["completion_tokens"]
    for _ in range(20):  # read from the engine at most once a second
        if has_sample(after, "kz_engine_requests_waiting", deployment="smollm2"):
            break
        await asyncio.sleep(0.25)
        after = await scrape()
    assert has_sample(after, "kz_engine_requests_waiting", deployment="smollm2",
                      replica="smollm2-0"), after  # fmt: skip
    assert has_sample(after, "kz_engine_requests_running", deployment="smollm2")

    # plain completions
    completion = json_of(
        await post_json(
            jp_fetch,
            "kz/v1/completions",
            body={
                "model": "smollm2",
                "prompt": "The capital of France is",
                "max_tokens": 8,
                "temperature": 0,
            },
        )
    )
    assert completion["choices"][0]["text"]

    # a text generation deployment serves no embeddings: a clear OpenAI-style refusal
    status, error = await error_of(
        jp_fetch, "kz/v1/embeddings", method="POST",
        body=json.dumps({"model": "smollm2", "input": ["hello"]}),
    )  # fmt: skip
    assert status == 400 and error["error"]["code"] == "embeddings_not_supported"
    assert "deploy an embedding model" in error["error"]["message"]

    # the official openai client, streamed and not (blocking: run it off the server's loop)
    token = jp_serverapp.identity_provider.token
    client = openai.OpenAI(
        base_url=f"http://localhost:{jp_http_port}{jp_base_url}kz/v1", api_key=token
    )

    def openai_calls() -> tuple[str, str, list[str]]:
        plain = client.chat.completions.create(
            model="smollm2", messages=QUESTION, max_tokens=24, temperature=0
        )
        streamed = client.chat.completions.create(
            model="smollm2", messages=QUESTION, max_tokens=24, temperature=0, stream=True
        )
        pieces = [c.choices[0].delta.content or "" for c in streamed if c.choices]
        listed = [m.id for m in client.models.list()]
        return plain.choices[0].message.content, "".join(pieces), listed

    plain, streamed, listed = await asyncio.to_thread(openai_calls)
    assert "Paris" in plain and "Paris" in streamed and listed == ["smollm2"]

    def openai_unknown_model() -> None:
        client.chat.completions.create(model="ghost", messages=QUESTION)

    with pytest.raises(openai.NotFoundError, match="No deployment named 'ghost'"):
        await asyncio.to_thread(openai_unknown_model)

    # logs of the running engine
    logs = json_of(await jp_fetch("kz/api/deployments/smollm2/logs", params={"lines": 400}))
    lines = logs["replicas"]["smollm2-0"]["lines"]
    assert any("listening on http://127.0.0.1" in line for line in lines)

    # a second deploy under the same name is refused while the first runs
    status, error = await error_of(
        jp_fetch, "kz/api/deployments", method="POST", body=json.dumps({"model": "smollm2"})
    )
    assert status == 409 and "already DEPLOYED" in error["message"]

    # restart: the old engine ends, a new one serves the same request with a fresh history
    restarted = json_of(
        await jp_fetch("kz/api/deployments/smollm2/restart", method="POST", body="")
    )
    assert restarted["status"] == "REQUESTED" and not engine.is_running()
    record = await wait_for_status(jp_fetch, "smollm2", {"DEPLOYED", "FAILED"})
    assert record["status"] == "DEPLOYED" and record["history"][0]["status"] == "REQUESTED"
    engine = psutil.Process(record["replicas"][0]["pid"])
    status, error = await error_of(jp_fetch, "kz/api/deployments/ghost/restart", method="POST",
                                   body="")  # fmt: skip
    assert status == 404 and "No deployment named 'ghost'" in error["message"]

    # stop: STOPPED, engine process gone, traffic refused clearly, logs still readable
    stopped = json_of(await jp_fetch("kz/api/deployments/smollm2", method="DELETE"))
    assert stopped["status"] == "STOPPED"
    assert not engine.is_running()
    status, error = await error_of(
        jp_fetch,
        "kz/v1/chat/completions",
        method="POST",
        body=json.dumps({"model": "smollm2", "messages": QUESTION}),
    )
    assert status == 503 and "STOPPED" in error["error"]["message"]
    logs = json_of(await jp_fetch("kz/api/deployments/smollm2/logs"))
    assert logs["replicas"]["smollm2-0"]["lines"]


async def test_engine_that_exits_at_startup_fails_with_its_log_line(jp_fetch, tmp_path):
    truncated = tmp_path / "truncated.gguf"
    from kz_jupyter.models.references import find_pip_shipped

    data = find_pip_shipped("smollm2").path.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])  # header intact, tensors cut off
    await post_json(jp_fetch, "kz/api/deployments", body={"model": str(truncated)})
    record = await wait_for_status(jp_fetch, "truncated", {"FAILED", "DEPLOYED"})
    assert record["status"] == "FAILED", record
    assert record["error"]["code"] == "MODEL_LOADING_FAILURE"
    assert "exited with status" in record["error"]["message"]
    statuses = [h["status"] for h in record["history"]]
    assert statuses[:2] == ["REQUESTED", "DEPLOYING"] and statuses[-1] == "FAILED"
    logs = json_of(await jp_fetch("kz/api/deployments/truncated/logs"))
    issues = logs["replicas"]["truncated-0"]["issues"]
    assert issues and issues[0][1] == "MODEL_LOADING_FAILURE"
    assert logs["remedies"] == {"MODEL_LOADING_FAILURE": record["error"]["remediation"]}
