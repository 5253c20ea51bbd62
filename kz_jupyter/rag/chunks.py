"""Chunking for retrieval: sections joined up to a size, under one heading, with overlap."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

from kz_jupyter.rag.documents import Section

MAX_CHARS = 1000
OVERLAP_CHARS = 200


@dataclass(frozen=True)
class Chunk:
    """A piece of text as it is embedded and retrieved, with where it came from."""

    text: str
    source: str
    location: str
    heading: str = ""

    def to_dict(self) -> dict:
        """Return JSON-ready data."""
        return asdict(self)

    def embedding_text(self) -> str:
        """What is embedded: the heading gives a paragraph its context."""
        return f"{self.heading}\n{self.text}" if self.heading else self.text


def _pieces(text: str, limit: int) -> list[str]:
    """A text cut at line (else word) boundaries into pieces of at most limit characters."""
    pieces, current = [], ""
    for word in text.replace("\n", "\n ").split(" "):
        if current and len(current) + len(word) + 1 > limit:
            pieces.append(current.strip())
            current = ""
        current = f"{current} {word}" if current else word
    if current.strip():
        pieces.append(current.strip())
    return pieces


def chunk_sections(
    sections: Iterable[Section], max_chars: int = MAX_CHARS, overlap_chars: int = OVERLAP_CHARS
) -> list[Chunk]:
    """Join consecutive sections of one source and heading up to max_chars; code never joins
    prose; a chunk begins with the end of the one before it (at most overlap_chars)."""
    chunks: list[Chunk] = []
    group: list[Section] = []

    def close() -> None:
        if not group:
            return
        first = group[0]
        text = "\n\n".join(s.text for s in group)
        for piece in _pieces(text, max_chars) if len(text) > max_chars else [text]:
            chunks.append(Chunk(piece, first.source, first.location, first.heading))
        group.clear()

    for section in sections:
        if group and (
            section.source != group[0].source
            or section.heading != group[0].heading
            or section.code != group[0].code
            or sum(len(s.text) + 2 for s in group) + len(section.text) > max_chars
        ):
            carried = group[-1] if len(group[-1].text) <= overlap_chars else None
            same_part = section.source == group[0].source and section.heading == group[0].heading
            close()
            if carried is not None and same_part and not section.code and not carried.code:
                group.append(carried)
        group.append(section)
    close()
    return chunks
