"""Random-weight GGUFs that llama.cpp loads and runs: decoder shapes of real models (held out
from the memory calibration), BERT embedding and reranking models, and LoRA adapters."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

from kz_jupyter.models.references import find_pip_shipped

Q = gguf.GGMLQuantizationType
FILE_TYPES = {"F16": 1, "Q4_0": 2, "Q8_0": 7}  # llama.cpp's general.file_type of each
WEIGHT_SCALE = 0.02


@dataclass(frozen=True)
class DecoderShape:
    """A decoder-only transformer's shape, as its Hugging Face config gives it."""

    label: str
    architecture: str  # llama, qwen2 or qwen3
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    feed_forward: int
    head_dim: int = 0  # 0: hidden // heads
    tied_embeddings: bool = True


# Held out: shapes the llama-server memory model was not calibrated on (SmolLM2's vocabulary).
HELD_OUT = (
    DecoderShape("Qwen2-0.5B shape", "qwen2", 24, 896, 14, 2, 4864),
    DecoderShape("Llama-3.2-1B shape", "llama", 16, 2048, 32, 8, 8192),
    DecoderShape("Qwen3-0.6B shape", "qwen3", 28, 1024, 16, 8, 3072, head_dim=128),
)


def random_tensor(rows: int, columns: int, qtype: str, rng: np.random.Generator) -> tuple:
    """(data, raw dtype) of a rows x columns weight in qtype: F16 values, or Q8_0/Q4_0
    blocks whose scales are small and whose quants are random."""
    if qtype == "F16":
        values = rng.standard_normal((rows, columns), dtype=np.float32) * WEIGHT_SCALE
        return values.astype(np.float16), None
    kind = Q[qtype]
    block, size = gguf.GGML_QUANT_SIZES[kind]
    blocks = rng.integers(0, 256, (rows, columns // block, size), dtype=np.uint8)
    blocks[:, :, :2] = np.frombuffer(np.float16(WEIGHT_SCALE / 8).tobytes(), dtype=np.uint8)
    return blocks.reshape(rows, -1), kind


def copy_tokenizer(writer: gguf.GGUFWriter, source: Path) -> int:
    """Copy a GGUF's tokenizer (its vocabulary, merges, special tokens, chat template) into
    writer; returns the vocabulary size."""
    reader = gguf.GGUFReader(str(source))
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        value = field.contents()
        sub_type = field.types[1] if len(field.types) > 1 else None
        writer.add_key_value(key, value, field.types[0], sub_type)
    return len(reader.fields["tokenizer.ggml.tokens"].data)


def write_decoder(path: Path, shape: DecoderShape, qtype: str, seed: int = 0) -> Path:
    """A random-weight decoder GGUF of shape in qtype (norms f32), with SmolLM2's tokenizer."""
    rng = np.random.default_rng(seed)
    arch = shape.architecture
    writer = gguf.GGUFWriter(str(path), arch)
    vocab = copy_tokenizer(writer, find_pip_shipped("smollm2").path)
    head_dim = shape.head_dim or shape.hidden // shape.heads
    writer.add_name(f"random {shape.label} {qtype}")
    writer.add_file_type(FILE_TYPES[qtype])
    writer.add_context_length(32768)
    writer.add_block_count(shape.layers)
    writer.add_embedding_length(shape.hidden)
    writer.add_feed_forward_length(shape.feed_forward)
    writer.add_head_count(shape.heads)
    writer.add_head_count_kv(shape.kv_heads)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(1_000_000.0)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_vocab_size(vocab)
    ones = np.ones(shape.hidden, dtype=np.float32)

    def add(name: str, rows: int, columns: int) -> None:
        data, raw = random_tensor(rows, columns, qtype, rng)
        writer.add_tensor(name, data, raw_dtype=raw)

    # the token embeddings stay Q8_0 in quantized files, as llama.cpp's quantizer leaves them
    embed_type = "F16" if qtype == "F16" else "Q8_0"
    data, raw = random_tensor(vocab, shape.hidden, embed_type, rng)
    writer.add_tensor("token_embd.weight", data, raw_dtype=raw)
    writer.add_tensor("output_norm.weight", ones)
    q_size, kv_size = shape.heads * head_dim, shape.kv_heads * head_dim
    for layer in range(shape.layers):
        block = f"blk.{layer}"
        writer.add_tensor(f"{block}.attn_norm.weight", ones)
        writer.add_tensor(f"{block}.ffn_norm.weight", ones)
        add(f"{block}.attn_q.weight", q_size, shape.hidden)
        add(f"{block}.attn_k.weight", kv_size, shape.hidden)
        add(f"{block}.attn_v.weight", kv_size, shape.hidden)
        add(f"{block}.attn_output.weight", shape.hidden, q_size)
        add(f"{block}.ffn_gate.weight", shape.feed_forward, shape.hidden)
        add(f"{block}.ffn_up.weight", shape.feed_forward, shape.hidden)
        add(f"{block}.ffn_down.weight", shape.hidden, shape.feed_forward)
        if arch == "qwen2":
            for name, size in (("attn_q", q_size), ("attn_k", kv_size), ("attn_v", kv_size)):
                writer.add_tensor(f"{block}.{name}.bias", np.zeros(size, dtype=np.float32))
        if arch == "qwen3":
            writer.add_tensor(f"{block}.attn_q_norm.weight", np.ones(head_dim, dtype=np.float32))
            writer.add_tensor(f"{block}.attn_k_norm.weight", np.ones(head_dim, dtype=np.float32))
    return _finish(writer, path)


BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
BERT_WORDS = (
    "the a of to and in is it for on that with as was are be this by from at or an not "
    "cat dog paris france capital city river cheese bread wine music film book"
).split()


def write_bert(path: Path, reranker: bool = False, layers: int = 2, hidden: int = 64) -> Path:
    """A random-weight BERT GGUF with a small word-piece vocabulary: an embedding model (mean
    pooling), or with reranker a cross-encoder that scores query-document pairs."""
    rng = np.random.default_rng(1)
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    words = ["\u2581" + w for w in dict.fromkeys(BERT_WORDS + letters)]
    pieces = BERT_SPECIALS + words + letters + [str(d) for d in range(10)] + list(".,?!'-")
    writer = gguf.GGUFWriter(str(path), "bert")
    writer.add_name("random bert reranker" if reranker else "random bert embedder")
    writer.add_file_type(0)
    writer.add_context_length(512)
    writer.add_block_count(layers)
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(hidden * 4)
    writer.add_head_count(4)
    writer.add_layer_norm_eps(1e-12)
    writer.add_causal_attention(False)
    writer.add_pooling_type(gguf.PoolingType.RANK if reranker else gguf.PoolingType.MEAN)
    if reranker:
        writer.add_classifier_output_labels(["LABEL_0"])
    writer.add_tokenizer_model("bert")
    writer.add_token_list(pieces)
    writer.add_token_types([3 if p in BERT_SPECIALS else 1 for p in pieces])
    writer.add_token_type_count(2)
    for setter, token in (
        (writer.add_pad_token_id, "[PAD]"), (writer.add_unk_token_id, "[UNK]"),
        (writer.add_bos_token_id, "[CLS]"), (writer.add_eos_token_id, "[SEP]"),
        (writer.add_sep_token_id, "[SEP]"), (writer.add_mask_token_id, "[MASK]"),
    ):  # fmt: skip
        setter(pieces.index(token))

    def weight(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32) * WEIGHT_SCALE

    ones, zeros = np.ones(hidden, dtype=np.float32), np.zeros(hidden, dtype=np.float32)
    writer.add_tensor("token_embd.weight", weight(len(pieces), hidden))
    writer.add_tensor("token_types.weight", weight(2, hidden))
    writer.add_tensor("position_embd.weight", weight(512, hidden))
    writer.add_tensor("token_embd_norm.weight", ones)
    writer.add_tensor("token_embd_norm.bias", zeros)
    for layer in range(layers):
        block = f"blk.{layer}"
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"{block}.{name}.weight", weight(hidden, hidden))
            writer.add_tensor(f"{block}.{name}.bias", zeros)
        for name in ("attn_output_norm", "layer_output_norm"):
            writer.add_tensor(f"{block}.{name}.weight", ones)
            writer.add_tensor(f"{block}.{name}.bias", zeros)
        writer.add_tensor(f"{block}.ffn_up.weight", weight(hidden * 4, hidden))
        writer.add_tensor(f"{block}.ffn_up.bias", np.zeros(hidden * 4, dtype=np.float32))
        writer.add_tensor(f"{block}.ffn_down.weight", weight(hidden, hidden * 4))
        writer.add_tensor(f"{block}.ffn_down.bias", zeros)
    if reranker:
        writer.add_tensor("cls.weight", weight(hidden, hidden))
        writer.add_tensor("cls.bias", zeros)
        writer.add_tensor("cls.output.weight", weight(1, hidden) * 50)
        writer.add_tensor("cls.output.bias", np.zeros(1, dtype=np.float32))
    return _finish(writer, path)


def write_lora(path: Path, base: Path, rank: int = 8, seed: int = 2) -> Path:
    """A random LoRA adapter GGUF for base's attention queries and values: strong enough that
    the adapted model answers differently from the base."""
    reader = gguf.GGUFReader(str(base))
    arch = str(reader.fields["general.architecture"].contents())
    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_type("adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(rank))
    for tensor in reader.tensors:
        if not tensor.name.endswith(("attn_q.weight", "attn_v.weight")):
            continue
        columns, rows = (int(n) for n in tensor.shape)  # ggml order: inputs, outputs
        stem = tensor.name
        writer.add_tensor(f"{stem}.lora_a", rng.standard_normal((rank, columns), np.float32))
        writer.add_tensor(f"{stem}.lora_b", rng.standard_normal((rows, rank), np.float32) * 0.1)
    return _finish(writer, path)


def _finish(writer: gguf.GGUFWriter, path: Path) -> Path:
    """Write the header, metadata and tensors; return the file's path."""
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
