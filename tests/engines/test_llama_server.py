"""llama.cpp's `llama-server` as the llamacpp engine, through /kz/v1 with the official `openai`
client: the OpenAI features it serves, parallel slots, cancellation, refused features."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import openai
import psutil
import pytest

from tests.support.paths import FIXTURES
from tests.support.rest_calls import json_of, wait_for_status

pytestmark = pytest.mark.slow


ASK = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
CAPITAL = {
    "type": "object",
    "properties": {"capital": {"type": "string"}},
    "required": ["capital"],
    "additionalProperties": False,
}


def feature_calls(client: openai.OpenAI) -> dict:
    """Every everyday OpenAI feature once, through kz (blocking: run it in a thread)."""
    chat = client.chat.completions.create
    seen: dict = {}
    seen["plain"] = chat(model="smol", messages=ASK, max_tokens=16, temperature=0)
    stream = chat(
        model="smol", messages=ASK, max_tokens=16, temperature=0, stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    seen["stream"] = list(stream)
    seen["stop"] = chat(model="smol", messages=ASK, max_tokens=16, temperature=0, stop=["Paris"])
    seen["length"] = chat(model="smol", messages=ASK, max_tokens=2, temperature=0)
    seen["logprobs"] = chat(
        model="smol", messages=ASK, max_tokens=4, temperature=0, logprobs=True, top_logprobs=3
    )
    seen["json_object"] = chat(
        model="smol", messages=ASK, max_tokens=48, temperature=0,
        response_format={"type": "json_object"},
    )  # fmt: skip
    seen["json_schema"] = chat(
        model="smol", messages=ASK, max_tokens=48, temperature=0,
        response_format={"type": "json_schema",
                         "json_schema": {"name": "capital", "schema": CAPITAL, "strict": True}},
    )  # fmt: skip
    seen["n"] = chat(model="smol", messages=ASK, max_tokens=8, temperature=0.8, n=2)
    seen["seeded"] = [
        chat(model="smol", messages=ASK, max_tokens=12, temperature=1.0, seed=7).choices[0]
        for _ in range(2)
    ]
    seen["completion"] = client.completions.create(
        model="smol", prompt="The capital of France is", max_tokens=6, temperature=0
    )
    seen["completion_stream"] = list(
        client.completions.create(
            model="smol", prompt="The capital of France is", max_tokens=6, temperature=0,
            stream=True,
        )
    )  # fmt: skip
    try:
        client.completions.create(model="smol", prompt="Hello", max_tokens=2, echo=True)
    except openai.BadRequestError as error:
        seen["echo"] = error
    picture = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}}]
    try:  # llama-server answers a 500 for it: the model has no vision
        chat(model="smol", messages=[{"role": "user", "content": picture}], max_tokens=2)
    except openai.BadRequestError as error:
        seen["image"] = error
    return seen


def concurrent_streams(client: openai.OpenAI, users: int) -> list[tuple[float, float, str]]:
    """users streamed chats started together: (first token time, end time, finish reason)."""
    results: list = [None] * users

    def one(index: int) -> None:
        first = None
        reason = ""
        for chunk in client.chat.completions.create(
            model="smol", messages=[{"role": "user", "content": "Tell me about Paris."}],
            max_tokens=40, temperature=0, stream=True,
        ):  # fmt: skip
            if chunk.choices and chunk.choices[0].delta.content and first is None:
                first = time.monotonic()
            if chunk.choices and chunk.choices[0].finish_reason:
                reason = chunk.choices[0].finish_reason
        results[index] = (first, time.monotonic(), reason)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def cancel_a_stream(client: openai.OpenAI, engine_url: str) -> tuple[int, float]:
    """Start a long stream, read a few chunks, go away; (chunks read, seconds until the
    engine's slots are all idle again)."""
    stream = client.chat.completions.create(
        model="smol", messages=[{"role": "user", "content": "Count from 1 to 1000."}],
        max_tokens=2000, temperature=0, stream=True,
    )  # fmt: skip
    read = 0
    for _ in stream:
        read += 1
        if read == 3:
            break
    stream.close()
    gone = time.monotonic()
    while time.monotonic() - gone < 30:
        slots = httpx.get(f"{engine_url}/slots", timeout=5).json()
        if not any(slot["is_processing"] for slot in slots):
            return read, time.monotonic() - gone
        time.sleep(0.1)
    return read, float("inf")


async def test_llama_server_serves_the_openai_api_through_kz(
    jp_fetch, jp_serverapp, jp_http_port, jp_base_url
):
    body = {"model": "smollm2", "name": "smol"}
    await jp_fetch("kz/api/deployments", method="POST", body=json.dumps(body))
    record = await wait_for_status(jp_fetch, "smol", {"DEPLOYED", "FAILED"})
    assert record["status"] == "DEPLOYED", record
    plan = record["plan"]
    assert (plan["engine"], plan["parallel"], plan["context_length"]) == ("llamacpp", 8, 4096)
    (replica,) = record["replicas"]
    command = psutil.Process(replica["pid"]).cmdline()
    assert command[0].endswith("llama-server")
    assert command[command.index("--parallel") + 1] == "8"
    assert command[command.index("--ctx-size") + 1] == str(8 * 4096)  # 4096 tokens per slot

    token = jp_serverapp.identity_provider.token
    client = openai.OpenAI(
        base_url=f"http://127.0.0.1:{jp_http_port}{jp_base_url}kz/v1", api_key=token
    )
    seen = await asyncio.to_thread(feature_calls, client)

    plain = seen["plain"]
    assert "Paris" in plain.choices[0].message.content
    assert plain.choices[0].finish_reason == "stop" and plain.usage.completion_tokens > 0
    streamed = seen["stream"]
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert "Paris" in text
    assert streamed[-1].usage is not None and streamed[-1].usage.completion_tokens > 0
    assert "Paris" not in seen["stop"].choices[0].message.content
    assert seen["stop"].choices[0].finish_reason == "stop"
    length = seen["length"]
    assert length.choices[0].finish_reason == "length" and length.usage.completion_tokens == 2
    top = seen["logprobs"].choices[0].logprobs.content[0]
    assert len(top.top_logprobs) == 3 and top.logprob <= 0
    assert isinstance(json.loads(seen["json_object"].choices[0].message.content), dict)
    assert "capital" in json.loads(seen["json_schema"].choices[0].message.content)
    assert [c.index for c in seen["n"].choices] == [0, 1]
    first, second = seen["seeded"]
    assert first.message.content == second.message.content  # the same seed, the same sample
    assert "Paris" in seen["completion"].choices[0].text
    assert "".join(c.choices[0].text for c in seen["completion_stream"] if c.choices).strip()
    refused = seen["echo"]
    assert refused.status_code == 400 and refused.code == "unsupported_feature"
    assert "llamacpp" in refused.message and "'echo'" in refused.message
    refused = seen["image"]  # the engine's own 500 for what it does not do, as the 400 it is
    assert refused.status_code == 400 and refused.code == "unsupported_feature"
    assert "'smol' runs on llamacpp" in refused.message
    assert "image input is not supported" in refused.message

    # four users at once are served together: every first token comes before any answer ends
    streams = await asyncio.to_thread(concurrent_streams, client, 4)
    assert all(reason in ("stop", "length") for _, _, reason in streams), streams
    assert max(first for first, _, _ in streams) < min(end for _, end, _ in streams), streams

    # a client that goes away frees its slot at once
    read, freed_after = await asyncio.to_thread(cancel_a_stream, client, replica["endpoint"])
    assert read == 3 and freed_after < 5, freed_after

    # the engine's own Prometheus metrics are on
    metrics = httpx.get(f"{replica['endpoint']}/metrics", timeout=5).text
    assert "llamacpp:prompt_tokens_total" in metrics

    logs = json_of(await jp_fetch("kz/api/deployments/smol/logs", params={"lines": 400}))
    assert any("listening on http://127.0.0.1" in line
               for line in logs["replicas"]["smol-0"]["lines"])  # fmt: skip
    await jp_fetch("kz/api/deployments/smol", method="DELETE")


WEATHER_ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def adapter_calls(client: openai.OpenAI) -> dict:
    """The base model, its LoRA adapter and a tool call through kz (blocking)."""
    chat = client.chat.completions.create
    seen: dict = {"models": [m.id for m in client.models.list()]}
    seen["base"] = chat(model="smolx", messages=ASK, max_tokens=12, temperature=0)
    seen["adapted"] = chat(model="smolx/noisy", messages=ASK, max_tokens=12, temperature=0)
    # the assistant's answer begun with the template's tool-call tag (a prefill): a model this
    # small then completes the call, in the arguments the tool's schema allows
    opened = [*WEATHER_ASK, {"role": "assistant", "content": "<tool_call>\n"}]
    seen["tool"] = chat(
        model="smolx", messages=opened, tools=[WEATHER_TOOL], tool_choice="required",
        max_tokens=48, temperature=0,
    )  # fmt: skip
    try:
        client.post("/rerank", cast_to=object, body={"model": "smolx", "query": "q",
                                                    "documents": ["d"]})  # fmt: skip
    except openai.BadRequestError as error:
        seen["rerank_of_a_generator"] = error
    return seen


def task_calls(client: openai.OpenAI) -> dict:
    """Embeddings and reranking through kz, and a chat asked of a reranker (blocking)."""
    seen: dict = {"embeddings": client.embeddings.create(model="emb", input=["the cat", "paris"])}
    seen["rerank"] = client.post(
        "/rerank",
        cast_to=object,
        body={"model": "rr", "query": "capital of france", "documents": ["paris", "the cat"]},
    )
    try:
        client.chat.completions.create(model="rr", messages=ASK, max_tokens=2)
    except openai.BadRequestError as error:
        seen["chat_with_a_reranker"] = error
    return seen


def rag_reranked_by_the_deployment(base_url: str, token: str, folder) -> dict:
    """A small index searched with `rerank="deployment:rr"`, the deployment's own scores of
    the same candidates, and a rerank asked of the embedding deployment (blocking)."""
    from kz_jupyter.client import KzClient
    from kz_jupyter.client.connection import ServerConnection
    from kz_jupyter.errors import KzError
    from kz_jupyter.rag.index import RagIndex

    kz = KzClient(ServerConnection(base_url, token, "test"))
    docs = folder / "notes"
    docs.mkdir()
    notes = ["the capital of france is paris", "the cat sat on the mat", "paris has a river",
             "a dog and a cat", "the river of paris"]  # fmt: skip
    for number, text in enumerate(notes):
        (docs / f"note{number}.md").write_text(f"# Note {number}\n\n{text}\n")
    index = RagIndex("notes", folder / "rag", client=lambda: kz)
    index.update([docs])
    seen = {"candidates": index.search("capital of france", k=5)}
    texts = [hit.chunk.embedding_text() for hit in seen["candidates"]]
    seen["scores"] = kz.rerank("rr", "capital of france", texts)
    seen["reranked"] = index.search("capital of france", k=3, rerank="deployment:rr")
    try:
        index.search("capital of france", rerank="deployment:emb")
    except KzError as error:
        seen["rerank_by_an_embedder"] = str(error)
    return seen


async def deploy_all(jp_fetch, deployments: dict[str, dict]) -> dict[str, dict]:
    """Deploy each {name: body} and wait until they all serve."""
    for name, body in deployments.items():
        await jp_fetch("kz/api/deployments", method="POST", body=json.dumps(body | {"name": name}))
    records = {n: await wait_for_status(jp_fetch, n, {"DEPLOYED", "FAILED"}) for n in deployments}
    failed = {n: r.get("error") for n, r in records.items() if r["status"] != "DEPLOYED"}
    assert not failed, failed
    return records


async def test_llama_server_embeddings_reranking_adapters_draft_and_tools_through_kz(
    jp_fetch, jp_serverapp, jp_http_port, jp_base_url, smollm2_path, tmp_path
):
    from bench.synthetic_ggufs import write_bert, write_lora

    token = jp_serverapp.identity_provider.token
    base_url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}kz/v1"
    client = openai.OpenAI(base_url=base_url, api_key=token)
    # an embedding and a reranker GGUF (random BERTs), planned as their tasks from the header
    records = await deploy_all(jp_fetch, {
        "emb": {"model": str(write_bert(tmp_path / "embedder.gguf"))},
        "rr": {"model": str(write_bert(tmp_path / "reranker.gguf", reranker=True))},
    })  # fmt: skip
    assert (records["emb"]["plan"]["task"], records["rr"]["plan"]["task"]) == ("embed", "rerank")
    seen = await asyncio.to_thread(task_calls, client)
    vectors = [item.embedding for item in seen["embeddings"].data]
    assert len(vectors) == 2 and len(vectors[0]) == 64 and vectors[0] != vectors[1]
    scores = {r["index"]: r["relevance_score"] for r in seen["rerank"]["results"]}
    assert set(scores) == {0, 1} and scores[0] != scores[1]
    assert seen["chat_with_a_reranker"].code == "rerank_only"
    # retrieval reranked through the reranker deployment: its scores order the candidates
    seen = await asyncio.to_thread(
        rag_reranked_by_the_deployment, f"http://127.0.0.1:{jp_http_port}{jp_base_url}", token,
        tmp_path,
    )  # fmt: skip
    by_score = sorted(zip(seen["scores"], seen["candidates"], strict=True), key=lambda p: -p[0])
    assert [h.chunk for h in seen["reranked"]] == [hit.chunk for _, hit in by_score[:3]]
    assert [h.score for h in seen["reranked"]] == [score for score, _ in by_score[:3]]
    assert seen["rerank_by_an_embedder"] == "'emb' is an embedding model: use /v1/embeddings."
    for name in records:
        await jp_fetch("kz/api/deployments", name, method="DELETE")

    # SmolLM2 with a LoRA adapter, itself as its draft, a q8_0 cache, a tool-calling template
    adapter = write_lora(tmp_path / "noisy-lora.gguf", smollm2_path)
    template = FIXTURES / "llamacpp" / "chatml-tools.jinja"
    records = await deploy_all(jp_fetch, {"smolx": {
        "model": "smollm2", "parallel": 2, "lora_adapters": {"noisy": str(adapter)},
        "draft_model": "smollm2", "kv_cache_type": "q8_0",
        "extra_args": ["--chat-template-file", str(template)],
    }})  # fmt: skip
    plan = records["smolx"]["plan"]
    assert plan["draft_model_path"] == str(smollm2_path) and plan["kv_cache_type"] == "q8_0"
    (replica,) = records["smolx"]["replicas"]
    command = psutil.Process(replica["pid"]).cmdline()
    assert command[command.index("--model-draft") + 1] == str(smollm2_path)
    assert command[command.index("--cache-type-v") + 1] == "q8_0"
    assert command[command.index("--lora-scaled") + 1] == f"{adapter}:0"
    seen = await asyncio.to_thread(adapter_calls, client)
    assert "smolx/noisy" in seen["models"]
    base = seen["base"]
    assert "Paris" in base.choices[0].message.content
    assert base.model_extra["timings"]["draft_n_accepted"] > 0  # the draft's tokens were taken
    adapted = seen["adapted"].choices[0].message.content
    assert adapted and "Paris" not in adapted  # the (random) adapter changes the answer
    (call, *_) = seen["tool"].choices[0].message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert seen["rerank_of_a_generator"].code == "rerank_not_supported"
    await jp_fetch("kz/api/deployments", "smolx", method="DELETE")
