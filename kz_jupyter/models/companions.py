"""The models a deployment loads beside its own: LoRA adapters and a speculative-decoding draft,
checked and measured before the plan counts them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from kz_jupyter.models.gguf_header import GgufReadError, read_gguf_metadata
from kz_jupyter.models.references import expand_home, find_pip_shipped
from kz_jupyter.models.shapes import ModelShape

# Characters llama-server's adapter list syntax (FILE:SCALE,FILE:SCALE) cannot carry in a path.
ADAPTER_LIST_SEPARATORS = (":", ",")


class CompanionError(ValueError):
    """An adapter or draft that cannot be used; the message says which and what to give."""


@dataclass(frozen=True)
class Draft:
    """A draft model for speculative decoding: its GGUF file and shape."""

    path: str
    shape: ModelShape


@dataclass(frozen=True)
class Companions:
    """What a deployment loads beside its model: the largest PEFT adapter rank, the bytes of
    GGUF adapters (loaded into memory, not mapped), and a draft model."""

    lora_rank: int = 0
    adapter_bytes: int = 0
    draft: Draft | None = None


def peft_rank(name: str, folder: Path) -> int:
    """The rank of a PEFT adapter folder (adapter_config.json's `r`)."""
    config_path = folder / "adapter_config.json"
    try:
        return int(json.loads(config_path.read_text())["r"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CompanionError(
            f"LoRA adapter '{name}': {config_path} is not a readable PEFT adapter config "
            f"({error}): give the folder that holds adapter_config.json and the weights."
        ) from None


def gguf_adapter_bytes(name: str, path: Path) -> int:
    """The size of a GGUF LoRA adapter file, once it is known to be one."""
    hint = (
        "give a GGUF LoRA adapter file (llama.cpp's convert_lora_to_gguf.py makes one from a "
        "PEFT folder)"
    )
    if any(mark in str(path) for mark in ADAPTER_LIST_SEPARATORS):
        raise CompanionError(
            f"LoRA adapter '{name}': llama-server cannot take a path with ':' or ',' "
            f"({path}): move or link the file to a path without them."
        )
    try:
        meta = read_gguf_metadata(path)
    except GgufReadError as error:
        raise CompanionError(f"LoRA adapter '{name}': {error} {hint}.") from None
    if meta.general_type != "adapter":
        raise CompanionError(
            f"LoRA adapter '{name}': {path} is a GGUF {meta.general_type}, not an adapter: {hint}."
        )
    return meta.size_bytes


def check_companions(
    adapters: dict[str, str], lora_format: str, draft_model: str | None
) -> Companions:
    """Check the adapters (PEFT folders or GGUF files, as the engine takes them) and the draft
    model, and measure what they add."""
    rank, adapter_bytes = 0, 0
    for name, given in adapters.items():
        path = expand_home(given)
        if lora_format == "gguf":
            adapter_bytes += gguf_adapter_bytes(name, path)
        else:
            rank = max(rank, peft_rank(name, path))
    draft = find_draft(draft_model) if draft_model else None
    return Companions(rank, adapter_bytes, draft)


def find_draft(text: str) -> Draft:
    """A draft model: a GGUF file, or a pip-shipped GGUF model by name; it must generate text
    with the same vocabulary as the model it drafts for."""
    shipped = find_pip_shipped(text)
    path = shipped.path if shipped is not None and shipped.format == "gguf" else expand_home(text)
    if not path.is_file():
        raise CompanionError(
            f"Draft model '{text}' is neither a GGUF file nor a pip-shipped GGUF model: give "
            "the .gguf file of a small model of the same family (the same vocabulary)."
        )
    try:
        meta = read_gguf_metadata(path)
    except GgufReadError as error:
        raise CompanionError(f"Draft model '{text}': {error}") from None
    if meta.general_type != "model" or meta.task != "generate":
        raise CompanionError(
            f"Draft model '{text}' does not generate text: give a small chat or base model "
            "of the same family."
        )
    return Draft(str(path), ModelShape.from_gguf(meta, meta.size_bytes))
