"""Model files the tests write themselves: tiny GGUFs with real headers, safetensors of
zero-filled tensors, and a filler that leaves a disk full."""

from __future__ import annotations

import json
from pathlib import Path

import gguf


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


def write_cross_encoder(folder: Path, words: list[str]) -> Path:
    """A random-weight BERT cross-encoder (one relevance score per query and text) that
    sentence-transformers' CrossEncoder loads from folder; its vocabulary is words."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(words))]
    (folder / "vocab.txt").write_text("\n".join(vocabulary) + "\n")
    config = BertConfig(
        vocab_size=len(vocabulary), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, num_labels=1, max_position_embeddings=512,
    )  # fmt: skip
    torch.manual_seed(7)
    BertForSequenceClassification(config).save_pretrained(folder)
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    return folder
