"""Read what a GGUF file says about itself: architecture, shape, context length, chat template.

Only the key-value header is read, skipping array values (the tokenizer's vocabulary holds tens
of thousands of strings) by offset arithmetic. gguf's GGUFReader parses every array element and
every tensor description in Python, which takes seconds for a 100 MB model, and it needs the whole
file: this reader also works on the first bytes of a remote file (`parse_gguf_header`).
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

GGUF_MAGIC = b"GGUF"
STRING, ARRAY = 8, 9
LENGTH = struct.Struct("<Q")  # what prefixes a string, and an array's count
MAX_LENGTH = 1 << 40
SCALAR_FORMATS = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
    10: "<Q", 11: "<q", 12: "<d",
}  # fmt: skip
SHAPE_SUFFIXES = (
    ".context_length",
    ".block_count",
    ".embedding_length",
    ".feed_forward_length",
    ".attention.head_count",
    ".attention.head_count_kv",
    ".attention.key_length",
    ".attention.value_length",
    ".attention.sliding_window",
    ".pooling_type",
    ".attention.causal",
)
# ggml types llama.cpp's x86 CPU backend keeps a repacked copy of: type -> (block values, bytes).
REPACKABLE_TYPES = {2: (32, 18), 12: (256, 144), 20: (32, 18)}  # Q4_0, Q4_K, IQ4_NL
REPACKABLE_KEY = "kz.repackable_bytes"
RANK_POOLING = 4  # llama.cpp's LLAMA_POOLING_TYPE_RANK
WANTED_KEYS = {
    "general.architecture",
    "general.name",
    "general.file_type",
    "general.size_label",
    "general.type",
    "tokenizer.chat_template",
    "tokenizer.ggml.tokens",
}


@dataclass(frozen=True)
class GgufMetadata:
    """The GGUF header fields that planning and memory estimates need."""

    architecture: str
    name: str
    context_length: int
    chat_template: str | None
    file_type: int | None
    size_bytes: int
    block_count: int = 0
    embedding_length: int = 0
    feed_forward_length: int = 0
    head_count: int = 0
    head_count_kv: int = 0
    key_length: int = 0
    value_length: int = 0
    vocab_size: int = 0
    sliding_window: int = 0
    # Bytes of tensors the CPU backend repacks (a second copy in RAM); -1: not read.
    repackable_bytes: int = -1
    general_type: str = "model"  # or "adapter" (a LoRA), "mmproj"
    pooling_type: int = 0  # llama.cpp's pooling: 0 none, 1 mean, 2 cls, 3 last, 4 rank
    causal: bool = True  # False for encoders (BERT and kin)

    @property
    def has_chat_template(self) -> bool:
        """True when the file carries its own chat template."""
        return bool(self.chat_template)

    @property
    def task(self) -> str:
        """What the model does: 'rerank' (rank pooling: a cross-encoder scoring query and
        document), 'embed' (other pooling, or an encoder) or 'generate'."""
        if self.pooling_type == RANK_POOLING:
            return "rerank"
        return "embed" if self.pooling_type or not self.causal else "generate"


class GgufReadError(ValueError):
    """A file that is not a readable GGUF model."""


class GgufTruncatedError(GgufReadError):
    """The bytes given end inside the header: read more of the file."""


class _HeaderCursor:
    """Walks the GGUF key-value header in a buffer (a memory map or the first bytes of a file)."""

    def __init__(self, data: bytes | mmap.mmap):
        self.data = data
        self.offset = 0

    def advance(self, size: int) -> int:
        """Move past size bytes and return where they start; a buffer too short is an error."""
        start = self.offset
        if size < 0 or size > MAX_LENGTH:
            raise GgufReadError("corrupt header (impossible length)")
        if start + size > len(self.data):
            raise GgufTruncatedError("truncated header")
        self.offset = start + size
        return start

    def unpack(self, fmt: str) -> int | float | bool:
        """Read one little-endian scalar."""
        (value,) = struct.unpack_from(fmt, self.data, self.advance(struct.calcsize(fmt)))
        return value

    def string(self) -> str:
        """Read a length-prefixed UTF-8 string."""
        length = self.unpack("<Q")
        start = self.advance(length)
        return self.data[start : start + length].decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        """Move past count length-prefixed strings (a vocabulary: tens of thousands)."""
        data, offset, end = self.data, self.offset, len(self.data)
        for _ in range(count):
            if offset + LENGTH.size > end:
                raise GgufTruncatedError("truncated header")
            (length,) = LENGTH.unpack_from(data, offset)
            if length > MAX_LENGTH:
                raise GgufReadError("corrupt header (impossible length)")
            offset += LENGTH.size + length
        if offset > end:
            raise GgufTruncatedError("truncated header")
        self.offset = offset

    def value(self, value_type: int, keep: bool) -> object:
        """Read a value, or skip it (None) when keep is False; a kept array gives its length."""
        if value_type == STRING:
            if keep:
                return self.string()
            self.advance(self.unpack("<Q"))
            return None
        if value_type == ARRAY:
            element_type, count = self.unpack("<I"), self.unpack("<Q")
            if element_type in SCALAR_FORMATS:
                self.advance(count * struct.calcsize(SCALAR_FORMATS[element_type]))
            elif element_type == STRING:
                self.skip_strings(count)
            elif element_type == ARRAY:
                for _ in range(count):
                    self.value(element_type, keep=False)
            else:
                raise GgufReadError(f"unknown GGUF array type {element_type}")
            return count if keep else None
        if value_type not in SCALAR_FORMATS:
            raise GgufReadError(f"unknown GGUF value type {value_type}")
        return self.unpack(SCALAR_FORMATS[value_type])


def _read_fields(data: bytes | mmap.mmap) -> dict[str, object]:
    """Return the wanted header fields of a GGUF file."""
    if len(data) < 4:
        raise GgufTruncatedError("truncated header")
    if data[:4] != GGUF_MAGIC:
        raise GgufReadError("no GGUF magic number")
    cursor = _HeaderCursor(data)
    cursor.advance(len(GGUF_MAGIC))
    version = cursor.unpack("<I")
    if version not in (2, 3):
        raise GgufReadError(f"unsupported GGUF version {version}")
    tensor_count = cursor.unpack("<Q")
    fields: dict[str, object] = {}
    for _ in range(cursor.unpack("<Q")):
        key = cursor.string()
        keep = key in WANTED_KEYS or key.endswith(SHAPE_SUFFIXES)
        value = cursor.value(cursor.unpack("<I"), keep)
        if keep:
            fields[key] = value
    try:
        fields[REPACKABLE_KEY] = _repackable_bytes(cursor, int(tensor_count))
    except GgufTruncatedError:  # only the key-value header was given: not known
        pass
    return fields


def _repackable_bytes(cursor: _HeaderCursor, tensor_count: int) -> int:
    """Bytes of the tensors in the quant types llama.cpp's CPU backend repacks, from the tensor
    descriptions after the key-value header (token embeddings, read by row, are left out)."""
    total = 0
    for _ in range(tensor_count):
        name = cursor.string()
        elements = 1
        for _ in range(cursor.unpack("<I")):
            elements *= cursor.unpack("<Q")
        ggml_type = cursor.unpack("<I")
        cursor.unpack("<Q")  # offset
        if ggml_type in REPACKABLE_TYPES and name != "token_embd.weight":
            block, size = REPACKABLE_TYPES[ggml_type]
            total += elements // block * size
    return total


def _number(fields: dict[str, object], key: str) -> int:
    """An integer header field, 0 when absent (a per-layer array counts as absent)."""
    value = fields.get(key)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def parse_gguf_header(data: bytes | mmap.mmap, size_bytes: int) -> GgufMetadata:
    """Parse a GGUF header from the file's first bytes; GgufTruncatedError asks for more."""
    fields = _read_fields(data)
    arch = str(fields.get("general.architecture") or "")
    heads = _number(fields, f"{arch}.attention.head_count")
    embedding = _number(fields, f"{arch}.embedding_length")
    head_dim = embedding // heads if heads else 0
    file_type = fields.get("general.file_type")
    return GgufMetadata(
        architecture=arch,
        name=str(fields.get("general.name") or ""),
        context_length=_number(fields, f"{arch}.context_length"),
        chat_template=fields.get("tokenizer.chat_template") or None,
        file_type=int(file_type) if file_type is not None else None,
        size_bytes=size_bytes,
        block_count=_number(fields, f"{arch}.block_count"),
        embedding_length=embedding,
        feed_forward_length=_number(fields, f"{arch}.feed_forward_length"),
        head_count=heads,
        head_count_kv=_number(fields, f"{arch}.attention.head_count_kv") or heads,
        key_length=_number(fields, f"{arch}.attention.key_length") or head_dim,
        value_length=_number(fields, f"{arch}.attention.value_length") or head_dim,
        vocab_size=_number(fields, "tokenizer.ggml.tokens"),
        sliding_window=_number(fields, f"{arch}.attention.sliding_window"),
        repackable_bytes=int(fields.get(REPACKABLE_KEY, -1)),
        general_type=str(fields.get("general.type") or "model"),
        pooling_type=_number(fields, f"{arch}.pooling_type"),
        causal=fields.get(f"{arch}.attention.causal", True) is not False,
    )


def read_gguf_metadata(path: Path) -> GgufMetadata:
    """Read the GGUF header of path, raising GgufReadError when it is not a GGUF model."""
    try:
        with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return parse_gguf_header(data, path.stat().st_size)
    except (OSError, ValueError, struct.error) as error:
        raise GgufReadError(f"{path} is not a readable GGUF file ({error}).") from None
