"""Grounded prompts: the retrieved chunks that fit a model's context, numbered as sources."""

from __future__ import annotations

from dataclasses import dataclass

from kz_jupyter.rag.index import Hit

CHARS_PER_TOKEN = 4  # a cautious average for English text with these tokenizers
SYSTEM = (
    "Answer the question using only the numbered sources below. Cite the sources you use as "
    "[1], [2]. If the sources do not contain the answer, say that you do not know."
)


@dataclass(frozen=True)
class GroundedPrompt:
    """Chat messages carrying the sources that fit, and which hits they are."""

    messages: list[dict]
    used: list[Hit]
    dropped: int

    def source_lines(self) -> list[str]:
        """The sources, numbered as the model cites them, and how many did not fit."""
        lines = [f"[{number}] {hit.chunk.source}, {hit.chunk.location} ({hit.chunk.heading})"
                 for number, hit in enumerate(self.used, start=1)]  # fmt: skip
        if self.dropped:
            lines.append(f"({self.dropped} more retrieved chunks did not fit the context)")
        return lines


def grounded_prompt(
    question: str, hits: list[Hit], context_tokens: int, answer_tokens: int
) -> GroundedPrompt:
    """Put as many hits (best first) as fit in context_tokens, leaving room for the answer."""
    budget = (context_tokens - answer_tokens) * CHARS_PER_TOKEN - len(SYSTEM) - len(question)
    sources, used = [], []
    for hit in hits:
        where = f"{hit.chunk.source}, {hit.chunk.location}"
        block = f"[{len(used) + 1}] ({where}) {hit.chunk.embedding_text()}"
        if len(block) + 2 > budget:
            break
        budget -= len(block) + 2
        sources.append(block)
        used.append(hit)
    content = "Sources:\n\n" + "\n\n".join(sources) + f"\n\nQuestion: {question}"
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}]
    return GroundedPrompt(messages, used, len(hits) - len(used))
