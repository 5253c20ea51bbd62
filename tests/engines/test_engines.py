"""Every engine through the same REST API, proxy and `openai` client: llama.cpp, vLLM (CPU),
MLX (CPU) and a fourth engine added by a plugin package; the same answer format from all."""

from __future__ import annotations

import asyncio
import json

import openai
import psutil
import pytest

from tests.support.enginetools.lora import write_lora_adapter
from tests.support.rest_calls import QUESTION, error_of, json_of, post_json, wait_for_status

pytestmark = pytest.mark.slow

ENGINE_FORMATS = {
    "llamacpp": "gguf",
    "llama-cpp-python": "gguf",
    "vllm": "safetensors",
    "mlx": "safetensors",
    "echo": "gguf",
}


@pytest.fixture
def jp_server_config(tmp_path):
    """The extension with room for vLLM's 30-60 s start on two busy cores."""
    return {
        "ServerApp": {"jpserver_extensions": {"kz_jupyter.server_ext": True}},
        "KzApp": {"state_dir": str(tmp_path / "kz-state"), "startup_timeout": 300.0},
    }


def check_chat_completion(reply: dict, name: str) -> str:
    """The OpenAI chat.completion shape every engine must answer in; returns the text."""
    assert reply["object"] == "chat.completion" and reply["model"] == name, reply
    (choice,) = reply["choices"]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] in (
        "stop",
        "length",
    )
    assert isinstance(choice["message"]["content"], str) and choice["message"]["content"].strip()
    return choice["message"]["content"]


def streamed_text(chunks: list[bytes]) -> str:
    """Join a chat stream's deltas, checking every event is a chat.completion.chunk."""
    events = [
        line[6:] for line in b"".join(chunks).decode().splitlines() if line.startswith("data: ")
    ]
    assert events and events[-1] == "[DONE]", events[-3:]
    pieces = []
    for event in map(json.loads, events[:-1]):
        assert event["object"] == "chat.completion.chunk", event
        pieces += [c["delta"].get("content") or "" for c in event["choices"]]
    return "".join(pieces)


@pytest.mark.parametrize("engine", list(ENGINE_FORMATS))
async def test_deploy_chat_stop_on_each_engine(
    engine,
    jp_fetch,
    jp_serverapp,
    jp_http_port,
    jp_base_url,
    smollm2_path,
    smollm2_safetensors_path,
    tmp_path,
):
    model = smollm2_path if ENGINE_FORMATS[engine] == "gguf" else smollm2_safetensors_path
    body = {"model": str(model), "engine": engine, "name": engine, "context_length": 1024}
    served = [engine]
    if engine == "vllm":  # with a LoRA adapter, served beside the base model
        adapter = write_lora_adapter(smollm2_safetensors_path, tmp_path / "tiny-lora", rank=12)
        body["lora_adapters"] = {"tiny": str(adapter)}
        served.append("vllm/tiny")
    response = await post_json(jp_fetch, "kz/api/deployments", body=body)
    assert response.code == 202
    record = await wait_for_status(jp_fetch, engine, {"DEPLOYED", "FAILED"}, timeout=330)
    assert record["status"] == "DEPLOYED", record
    plan = record["plan"]
    assert plan["engine"] == engine and plan["format"] == ENGINE_FORMATS[engine]
    assert plan["engine_version"]
    if engine in ("vllm", "mlx"):  # from their own environments, not the server's
        assert plan["engine_program"].endswith(f".engines/{engine}/bin/python")
    if engine == "llamacpp":  # the llama-server kz built
        assert plan["engine_program"].endswith(".engines/llamacpp/bin/llama-server")
    engine_process = psutil.Process(record["replicas"][0]["pid"])

    request = {"model": engine, "messages": QUESTION, "max_tokens": 24, "temperature": 0}
    reply = json_of(await post_json(jp_fetch, "kz/v1/chat/completions", body=request))
    text = check_chat_completion(reply, engine)
    if engine == "echo":
        assert text == "echo: What is the capital of France? Answer in one word."
    else:  # the real engines answer the question, from the same weights
        assert "Paris" in text, text

    chunks: list[bytes] = []
    await post_json(
        jp_fetch,
        "kz/v1/chat/completions",
        body=request | {"stream": True},
        streaming_callback=chunks.append,
    )
    assert streamed_text(chunks).strip()

    token = jp_serverapp.identity_provider.token
    client = openai.OpenAI(
        base_url=f"http://localhost:{jp_http_port}{jp_base_url}kz/v1", api_key=token
    )

    def openai_calls() -> tuple[str, str, list[str]]:
        plain = client.chat.completions.create(**request)
        streamed = client.chat.completions.create(**request, stream=True)
        pieces = [c.choices[0].delta.content or "" for c in streamed if c.choices]
        return (
            plain.choices[0].message.content,
            "".join(pieces),
            [m.id for m in client.models.list()],
        )

    plain, streamed, listed = await asyncio.to_thread(openai_calls)
    assert plain.strip() and streamed.strip() and listed == served

    if engine == "llama-cpp-python":  # what it lacks is refused before it reaches it
        for feature, extra in (("logprobs", {"logprobs": True}), ("n", {"n": 2})):
            status, error = await error_of(
                jp_fetch, "kz/v1/chat/completions", method="POST",
                body=json.dumps(request | extra),
            )  # fmt: skip
            assert status == 400 and error["error"]["code"] == "unsupported_feature"
            assert (
                f"runs on llama-cpp-python, which does not support '{feature}'"
                in (error["error"]["message"])
            )

    if engine == "vllm":
        assert record["plan"]["lora_rank"] == 12
        request = request | {"model": "vllm/tiny"}
        reply = json_of(await post_json(jp_fetch, "kz/v1/chat/completions", body=request))
        check_chat_completion(reply, "vllm/tiny")
        status, error = await error_of(
            jp_fetch,
            "kz/v1/chat/completions",
            method="POST",
            body=json.dumps(request | {"model": "vllm/ghost"}),
        )
        assert status == 404 and "No deployment named 'vllm/ghost'" in error["error"]["message"]

    stopped = json_of(await jp_fetch("kz/api/deployments", engine, method="DELETE"))
    assert stopped["status"] == "STOPPED"
    assert not engine_process.is_running()


async def test_engines_are_listed_with_version_and_environment(jp_fetch):
    engines = {e["name"]: e for e in json_of(await jp_fetch("kz/api/engines"))}
    assert set(engines) >= {"llamacpp", "llama-cpp-python", "vllm", "mlx", "echo"}
    assert all(e["available"] and e["version"] for e in engines.values()), engines
    assert engines["llamacpp"]["environment"].startswith("built by kz: ")
    assert engines["llamacpp"]["environment"].endswith(".engines/llamacpp/bin/llama-server")
    assert "commit" in engines["llamacpp"]["version"]  # llama.cpp's version, build and commit
    assert engines["llama-cpp-python"]["environment"] == "this environment"
    assert engines["vllm"]["environment"].startswith("own environment: ")
    assert engines["vllm"]["environment"].endswith(".engines/vllm/bin/python")


@pytest.fixture
def no_engine_envs(jp_server_config, tmp_path):
    """A server whose engines have no environments of their own (none installed)."""
    jp_server_config["KzApp"]["engine_envs_dir"] = str(tmp_path / "no-engines")
    return jp_server_config


async def test_a_missing_engine_says_how_to_install_it(
    no_engine_envs, jp_fetch, smollm2_safetensors_path
):
    engines = {e["name"]: e for e in json_of(await jp_fetch("kz/api/engines"))}
    assert not engines["vllm"]["available"]
    assert engines["vllm"]["reason"] == (
        "vLLM is not installed in its environment: %kz engines install vllm"
    )
    body = {"model": str(smollm2_safetensors_path), "engine": "vllm"}
    status, error = await error_of(jp_fetch, "kz/api/plan", method="POST", body=json.dumps(body))
    assert status == 422 and "%kz engines install vllm" in error["message"]
    status, error = await error_of(
        jp_fetch, "kz/api/engines/nonesuch/install", method="POST", body=""
    )
    assert (
        status == 404
        and "Known engines: echo, llama-cpp-python, llamacpp, mlx, vllm" in (error["message"])
    )


def broken_copy(source, destination, config_change: dict | None = None, cut_weights=False):
    """A copy of a safetensors model folder with its config changed or its weights cut short
    (the header intact, so only the engine finds out)."""
    destination.mkdir()
    for item in source.iterdir():
        if item.name == "model.safetensors" and cut_weights:
            with open(item, "rb") as weights:
                header = int.from_bytes(weights.read(8), "little")
                weights.seek(0)
                (destination / item.name).write_bytes(weights.read(8 + header + 1_000_000))
        elif item.name == "config.json" and config_change:
            config = json.loads(item.read_text()) | config_change
            (destination / item.name).write_text(json.dumps(config))
        else:
            (destination / item.name).symlink_to(item)
    return destination


@pytest.mark.parametrize(
    ("engine", "breakage", "code", "flagged"),
    [
        ("mlx", "weights", "MODEL_LOADING_FAILURE", "[load_safetensors]"),
        ("vllm", "weights", "MODEL_LOADING_FAILURE", "Error while deserializing header"),
        ("vllm", "architecture", "MODEL_LOADING_FAILURE", "are not supported"),
    ],
)
async def test_an_engine_that_cannot_serve_the_model_fails_with_its_log_line(
    engine, breakage, code, flagged, jp_fetch, smollm2_safetensors_path, tmp_path
):
    model = broken_copy(
        smollm2_safetensors_path,
        tmp_path / f"broken-{breakage}",
        config_change={"architectures": ["NoSuchModelForCausalLM"]}
        if breakage == "architecture"
        else None,
        cut_weights=breakage == "weights",
    )
    name = f"{engine}-{breakage}"
    body = {"model": str(model), "engine": engine, "name": name, "context_length": 1024}
    await post_json(jp_fetch, "kz/api/deployments", body=body)
    record = await wait_for_status(
        jp_fetch, name, {"DEPLOYED", "FAILED", "MUST_REDOWNLOAD"}, timeout=330
    )
    assert record["status"] == "FAILED", record
    assert record["error"]["code"] == code, record["error"]
    logs = json_of(await jp_fetch("kz/api/deployments", name, "logs", params={"lines": 2000}))
    issues = logs["replicas"][f"{name}-0"]["issues"]
    assert any(flagged in line for _, _, line in issues), issues
