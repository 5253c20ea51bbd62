"""A GGUF model as float32 safetensors, for the engines that serve safetensors (vLLM, MLX):
transformers dequantizes it and saves the weights with the tokenizer and chat template. Made
once and kept in the data folder ($KZ_CONVERTED_DIR, default ~/.local/share/kz-jupyter/converted).
Needs transformers, gguf and accelerate (the `test` extra has them)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from kz_jupyter.data_dirs import data_dir
from kz_jupyter.models.references import find_pip_shipped
from kz_jupyter.models.transformers_progress import no_progress_bars


def converted_dir() -> Path:
    """Where converted models are kept."""
    return data_dir("KZ_CONVERTED_DIR", "converted")


def as_safetensors(model: str = "smollm2") -> Path:
    """The float32 safetensors folder of a pip-shipped GGUF model (or a .gguf path), made on
    first use; written whole or not at all."""
    shipped = find_pip_shipped(model)
    gguf = shipped.path if shipped is not None else Path(model).expanduser()
    if gguf.suffix.lower() != ".gguf" or not gguf.is_file():
        raise ValueError(f"{model} is not a pip-shipped GGUF model or a .gguf file.")
    target = converted_dir() / f"{gguf.stem}-f32"
    if (target / "model.safetensors").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        with no_progress_bars():
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
