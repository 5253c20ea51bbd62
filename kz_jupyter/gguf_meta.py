"""Read what a GGUF file says about itself: architecture, context length, chat template."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gguf import GGUFReader, GGUFValueType


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


def _field_value(reader: GGUFReader, key: str) -> str | int | None:
    """Return a scalar or string field of the GGUF header, or None when it is absent."""
    field = reader.fields.get(key)
    if field is None or not field.types:
        return None
    value = field.parts[field.data[0]]
    if field.types[0] == GGUFValueType.STRING:
        return bytes(value).decode("utf-8", errors="replace")
    return int(value[0])


def read_gguf_metadata(path: Path) -> GgufMetadata:
    """Read the GGUF header of path (memory-mapped, so cheap even for large files)."""
    try:
        reader = GGUFReader(path)
    except (ValueError, OSError, IndexError) as error:
        raise GgufReadError(f"{path} is not a readable GGUF file ({error}).") from None
    architecture = str(_field_value(reader, "general.architecture") or "")
    context_length = _field_value(reader, f"{architecture}.context_length")
    file_type = _field_value(reader, "general.file_type")
    return GgufMetadata(
        architecture=architecture,
        name=str(_field_value(reader, "general.name") or ""),
        context_length=int(context_length or 0),
        chat_template=_field_value(reader, "tokenizer.chat_template") or None,
        file_type=int(file_type) if file_type is not None else None,
        size_bytes=path.stat().st_size,
    )
