"""The shape of a model, from a GGUF header or from safetensors headers and config.json."""

from __future__ import annotations

import json
import struct
from dataclasses import asdict, dataclass

from kz_jupyter.models.gguf_header import GgufMetadata

SAFETENSORS_DTYPE_BYTES = {
    "F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2,
    "I16": 2, "U16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I8": 1, "U8": 1, "BOOL": 1,
}  # fmt: skip
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024
# llama.cpp's `general.file_type` values (LLAMA_FTYPE_MOSTLY_*): the quant most tensors have.
GGUF_FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS",
    23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S",
    29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4",
}  # fmt: skip
# Encoder-only families: their checkpoints embed text, they do not generate it.
ENCODER_MODEL_TYPES = frozenset(
    {"bert", "roberta", "xlm-roberta", "distilbert", "mpnet", "nomic_bert", "modernbert"}
)


class ShapeError(ValueError):
    """Model metadata that cannot be read; the message says which file and why."""


@dataclass(frozen=True)
class ModelShape:
    """What memory estimates need to know about a model."""

    architecture: str
    layers: int
    hidden_size: int
    heads: int
    kv_heads: int
    head_dim_k: int
    head_dim_v: int
    vocab_size: int
    context_length: int
    weights_bytes: int
    parameters: int = 0
    dtype: str = ""
    has_chat_template: bool = False
    sliding_window: int = 0
    feed_forward: int = 0  # the MLP's inner size (0: not known)
    # GGUF: bytes of the tensors llama.cpp's CPU backend repacks (-1: not read; 0: none).
    repackable_bytes: int = 0
    # or "embed" (an embedding model, served on /v1/embeddings), or "rerank" (/v1/rerank)
    task: str = "generate"

    def to_dict(self) -> dict:
        """Return JSON-ready data."""
        return asdict(self)

    @classmethod
    def from_gguf(cls, meta: GgufMetadata, weights_bytes: int) -> ModelShape:
        """The shape a GGUF header describes; weights_bytes counts every shard."""
        return cls(
            architecture=meta.architecture,
            layers=meta.block_count,
            hidden_size=meta.embedding_length,
            heads=meta.head_count,
            kv_heads=meta.head_count_kv,
            head_dim_k=meta.key_length,
            head_dim_v=meta.value_length,
            vocab_size=meta.vocab_size,
            context_length=meta.context_length,
            weights_bytes=weights_bytes,
            has_chat_template=meta.has_chat_template,
            sliding_window=meta.sliding_window,
            feed_forward=meta.feed_forward_length,
            repackable_bytes=meta.repackable_bytes,
            dtype=GGUF_FILE_TYPES.get(meta.file_type, ""),
            task=meta.task,
        )

    @classmethod
    def from_hf_config(
        cls,
        config: dict,
        weights: SafetensorsSummary,
        has_chat_template: bool,
        sentence_config: dict | None = None,
    ) -> ModelShape:
        """The shape a transformers config.json and the safetensors headers describe; a
        sentence-transformers model (its sentence_bert_config.json) or an encoder embeds, with
        the sequence length it was trained for as its context."""
        text = config.get("text_config") or config
        embeds = sentence_config is not None or config.get("model_type") in ENCODER_MODEL_TYPES
        positions = int(text.get("max_position_embeddings") or 0)
        context = int((sentence_config or {}).get("max_seq_length") or positions)
        heads = int(text.get("num_attention_heads") or 0)
        hidden = int(text.get("hidden_size") or 0)
        head_dim = int(text.get("head_dim") or (hidden // heads if heads else 0))
        architectures = config.get("architectures") or [config.get("model_type", "")]
        return cls(
            architecture=str(config.get("model_type") or architectures[0]),
            layers=int(text.get("num_hidden_layers") or 0),
            hidden_size=hidden,
            heads=heads,
            kv_heads=int(text.get("num_key_value_heads") or heads),
            head_dim_k=head_dim,
            head_dim_v=head_dim,
            vocab_size=int(text.get("vocab_size") or 0),
            context_length=min(context, positions) if positions else context,
            weights_bytes=weights.tensor_bytes,
            parameters=weights.parameters,
            dtype=weights.dtype or str(config.get("torch_dtype") or ""),
            has_chat_template=has_chat_template,
            sliding_window=int(text.get("sliding_window") or 0),
            task="embed" if embeds else "generate",
        )


@dataclass(frozen=True)
class SafetensorsSummary:
    """What the headers of a model's safetensors files say: parameters, bytes, main dtype."""

    parameters: int
    tensor_bytes: int
    dtype: str

    @classmethod
    def combine(cls, parts: list[SafetensorsSummary]) -> SafetensorsSummary:
        """Join the summaries of a model's shards."""
        by_dtype: dict[str, int] = {}
        for part in parts:
            by_dtype[part.dtype] = by_dtype.get(part.dtype, 0) + part.tensor_bytes
        main = max(by_dtype, key=by_dtype.get) if by_dtype else ""
        return cls(
            parameters=sum(p.parameters for p in parts),
            tensor_bytes=sum(p.tensor_bytes for p in parts),
            dtype=main,
        )


def safetensors_header_length(prefix: bytes) -> int:
    """Bytes needed to read a safetensors header (the 8-byte length and the JSON after it)."""
    if len(prefix) < 8:
        raise ShapeError("truncated safetensors file")
    (length,) = struct.unpack("<Q", prefix[:8])
    if length > MAX_SAFETENSORS_HEADER:
        raise ShapeError("not a safetensors file (impossible header length)")
    return 8 + length


def parse_safetensors_header(data: bytes) -> SafetensorsSummary:
    """Summarise a safetensors header given the file's first bytes."""
    needed = safetensors_header_length(data)
    if len(data) < needed:
        raise ShapeError("truncated safetensors header")
    try:
        header = json.loads(data[8:needed])
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ShapeError(f"not a safetensors file ({error})") from None
    parameters, by_dtype = 0, {}
    for name, tensor in header.items():
        if name == "__metadata__":
            continue
        count = 1
        for dim in tensor.get("shape", []):
            count *= int(dim)
        size = count * SAFETENSORS_DTYPE_BYTES.get(tensor.get("dtype", ""), 2)
        parameters += count
        by_dtype[tensor.get("dtype", "")] = by_dtype.get(tensor.get("dtype", ""), 0) + size
    main = max(by_dtype, key=by_dtype.get) if by_dtype else ""
    return SafetensorsSummary(parameters, sum(by_dtype.values()), main)
