"""Read what a GGUF file says about itself: architecture, context length, chat template.

Only the key-value header is read, through mmap, skipping array values (the tokenizer's vocabulary
holds tens of thousands of strings) by offset arithmetic. gguf's GGUFReader parses every array
element and every tensor description in Python, which takes seconds for a 100 MB model.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

GGUF_MAGIC = b"GGUF"
STRING, ARRAY = 8, 9
SCALAR_FORMATS = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
    10: "<Q", 11: "<q", 12: "<d",
}  # fmt: skip
WANTED_SUFFIXES = (".context_length",)
WANTED_KEYS = {
    "general.architecture",
    "general.name",
    "general.file_type",
    "tokenizer.chat_template",
}


@dataclass(frozen=True)
class GgufMetadata:
    """The few GGUF header fields that planning needs."""

    architecture: str
    name: str
    context_length: int
    chat_template: str | None
    file_type: int | None
    size_bytes: int

    @property
    def has_chat_template(self) -> bool:
        """True when the file carries its own chat template."""
        return bool(self.chat_template)


class GgufReadError(ValueError):
    """A file that is not a readable GGUF model."""


class _HeaderCursor:
    """Walks the GGUF key-value header in a memory map."""

    def __init__(self, data: mmap.mmap):
        self.data = data
        self.offset = 0

    def advance(self, size: int) -> int:
        """Move past size bytes and return where they start; a file too short is an error."""
        start = self.offset
        if size < 0 or start + size > len(self.data):
            raise GgufReadError("truncated or corrupt header")
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

    def value(self, value_type: int, keep: bool) -> object:
        """Read a value of value_type, or skip it (returning None) when keep is False."""
        if value_type == STRING:
            if keep:
                return self.string()
            self.advance(self.unpack("<Q"))
            return None
        if value_type == ARRAY:
            element_type, count = self.unpack("<I"), self.unpack("<Q")
            if element_type in SCALAR_FORMATS:
                self.advance(count * struct.calcsize(SCALAR_FORMATS[element_type]))
            else:
                for _ in range(count):
                    self.value(element_type, keep=False)
            return None
        if value_type not in SCALAR_FORMATS:
            raise GgufReadError(f"unknown GGUF value type {value_type}")
        return self.unpack(SCALAR_FORMATS[value_type])


def _read_header(data: mmap.mmap) -> dict[str, object]:
    """Return the wanted header fields of a GGUF file."""
    if data[:4] != GGUF_MAGIC:
        raise GgufReadError("no GGUF magic number")
    cursor = _HeaderCursor(data)
    cursor.advance(len(GGUF_MAGIC))
    version = cursor.unpack("<I")
    if version not in (2, 3):
        raise GgufReadError(f"unsupported GGUF version {version}")
    cursor.unpack("<Q")  # tensor count
    fields: dict[str, object] = {}
    for _ in range(cursor.unpack("<Q")):
        key = cursor.string()
        keep = key in WANTED_KEYS or key.endswith(WANTED_SUFFIXES)
        value = cursor.value(cursor.unpack("<I"), keep)
        if keep:
            fields[key] = value
    return fields


def read_gguf_metadata(path: Path) -> GgufMetadata:
    """Read the GGUF header of path, raising GgufReadError when it is not a GGUF model."""
    try:
        with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            fields = _read_header(data)
    except (OSError, ValueError, struct.error) as error:
        raise GgufReadError(f"{path} is not a readable GGUF file ({error}).") from None
    architecture = str(fields.get("general.architecture") or "")
    file_type = fields.get("general.file_type")
    return GgufMetadata(
        architecture=architecture,
        name=str(fields.get("general.name") or ""),
        context_length=int(fields.get(f"{architecture}.context_length") or 0),
        chat_template=fields.get("tokenizer.chat_template") or None,
        file_type=int(file_type) if file_type is not None else None,
        size_bytes=path.stat().st_size,
    )
