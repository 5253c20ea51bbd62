"""Chunking for retrieval: sections joined up to what the embedder reads (in its own tokens when
its tokenizer is here, else in characters), under one heading, with overlap; never longer."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import PurePath
from typing import Protocol

from kz_jupyter.rag.documents import Section

MAX_CHARS = 1000
OVERLAP_CHARS = 200
OVERLAP_SHARE = 5  # a chunk's overlap with the one before: a fifth of its size
GENERIC_NAMES = {"readme", "index", "__init__"}  # files titled by their folder
SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def document_title(source: str) -> str:
    """What a file is about, by its name: its stem, or its folder's name for README, index..."""
    path = PurePath(source.replace("\\", "/"))
    if path.stem.lower() in GENERIC_NAMES and path.parent.name:
        return path.parent.name
    return path.stem


def context_line(source: str, heading: str) -> str:
    """The line that puts a chunk in context: its document's title, then its heading."""
    title = document_title(source)
    return f"{title} › {heading}" if heading else title


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
        """What is embedded: the document's title and the heading give a paragraph its
        context."""
        return f"{context_line(self.source, self.heading)}\n{self.text}"

    def lead_text(self) -> str:
        """Its context and first sentence, embedded apart: a topic sentence matches a question
        better than a whole chunk of details does."""
        paragraph = self.text.strip().split("\n\n", 1)[0]
        sentence = SENTENCE_END.split(paragraph, maxsplit=1)[0]
        return f"{context_line(self.source, self.heading)}\n{sentence}"


class Budget(Protocol):
    """How long a text is, in the units of the most a chunk may hold (`limit`), and how much
    of the chunk before one begins it (`overlap`)."""

    limit: int
    overlap: int

    def size(self, text: str) -> int:
        """A text's length in the budget's units."""

    def word_sizes(self, words: list[str]) -> list[int]:
        """Each word's length (with the space before it), in the budget's units."""

    def describe(self) -> str:
        """The budget in a few words, kept with an index (another budget rebuilds it)."""


@dataclass(frozen=True)
class CharBudget:
    """Lengths in characters: for an embedder whose tokenizer is not here (a deployment)."""

    limit: int = MAX_CHARS
    overlap: int = OVERLAP_CHARS

    def size(self, text: str) -> int:
        """The text's characters."""
        return len(text)

    def word_sizes(self, words: list[str]) -> list[int]:
        """Each word's characters and its space."""
        return [len(word) + 1 for word in words]

    def describe(self) -> str:
        """`chars:LIMIT`."""
        return f"chars:{self.limit}"


class TokenBudget:
    """Lengths in the embedder's own tokens: a chunk and its heading fit its window (what it
    reads, less its special tokens), so no word of a chunk goes unread."""

    def __init__(self, tokenizer, window: int):
        self._tokenizer = tokenizer
        self.limit = window - tokenizer.num_special_tokens_to_add()
        self.overlap = self.limit // OVERLAP_SHARE

    def size(self, text: str) -> int:
        """The text's tokens."""
        return len(self._tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def word_sizes(self, words: list[str]) -> list[int]:
        """Each word's tokens (words are tokenized apart: their tokens add up)."""
        if not words:
            return []
        ids = self._tokenizer(words, add_special_tokens=False, verbose=False)["input_ids"]
        return [len(word_ids) for word_ids in ids]

    def describe(self) -> str:
        """`tokens:LIMIT`."""
        return f"tokens:{self.limit}"


def budget_for(embedder) -> Budget:
    """The embedder's window in its own tokens when it has a tokenizer here, else characters."""
    tokenizer = getattr(embedder, "tokenizer", None)
    window = getattr(embedder, "max_seq_length", None)
    if tokenizer is None or not window:
        return CharBudget()
    return TokenBudget(tokenizer, int(window))


def _pieces(text: str, limit: int, budget: Budget) -> list[str]:
    """A text cut at line (else word) boundaries into pieces of at most limit, each beginning
    with the end of the one before (at most budget.overlap); a word longer than limit is cut."""
    words = [w for w in text.replace("\n", "\n ").split(" ") if w]
    sizes = budget.word_sizes(words)
    split_words: list[tuple[str, int]] = []
    for word, size in zip(words, sizes, strict=True):
        if size <= limit:
            split_words.append((word, size))
            continue
        step = max(1, len(word) * limit // (size + 1))
        split_words += [(word[i : i + step], budget.size(word[i : i + step]))
                        for i in range(0, len(word), step)]  # fmt: skip
    pieces, current, total = [], [], 0
    for word, size in split_words:
        if current and total + size > limit:
            pieces.append(current)
            carried, total = [], 0
            for tail in reversed(current):
                if total + tail[1] > budget.overlap:
                    break
                carried.insert(0, tail)
                total += tail[1]
            if total + size > limit:
                carried, total = [], 0
            current = carried
        current.append((word, size))
        total += size
    if current:
        pieces.append(current)
    return [" ".join(word for word, _ in piece).replace("\n ", "\n").strip() for piece in pieces]


def chunk_sections(sections: Iterable[Section], budget: Budget | None = None) -> list[Chunk]:
    """Join consecutive sections of one source and heading up to the budget (heading
    included); code never joins prose; a chunk begins with the end of the one before it (at
    most budget.overlap); what is longer is cut into pieces that fit."""
    budget = budget or CharBudget()
    chunks: list[Chunk] = []
    group: list[Section] = []

    def room(section: Section) -> int:
        """What a chunk under this section's heading may hold besides its context line."""
        return budget.limit - budget.size(context_line(section.source, section.heading)) - 1

    def close() -> None:
        if not group:
            return
        first = group[0]
        text = "\n\n".join(s.text for s in group)
        limit = room(first)
        pieces = [text] if budget.size(text) <= limit else _pieces(text, limit, budget)
        chunks.extend(Chunk(p, first.source, first.location, first.heading) for p in pieces)
        group.clear()

    for section in sections:
        if group and (
            section.source != group[0].source
            or section.heading != group[0].heading
            or section.code != group[0].code
            or budget.size("\n\n".join([*(s.text for s in group), section.text])) > room(group[0])
        ):
            last = group[-1]
            carried = last if budget.size(last.text) <= budget.overlap else None
            same_part = section.source == group[0].source and section.heading == group[0].heading
            close()
            if carried is not None and same_part and not section.code and not carried.code:
                group.append(carried)
        group.append(section)
    close()
    return chunks
