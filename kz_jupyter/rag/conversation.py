"""A chat grounded in an index, turn after turn: each turn retrieves with the conversation so
far (the new question and the user's recent turns, so that "and who built it?" finds what the
conversation is about), and sends the sources that fit beside the earlier turns."""

from __future__ import annotations

from kz_jupyter.rag.prompt import CHARS_PER_TOKEN, GroundedPrompt, grounded_prompt

HISTORY_TURNS = 3  # the user's earlier turns that join the retrieval query
HISTORY_SHARE = 0.5  # at most this share of the context goes to earlier turns


def retrieval_query(history: list[dict], question: str) -> str:
    """What a turn retrieves with: the user's last HISTORY_TURNS turns, then the question."""
    earlier = [m["content"] for m in history if m.get("role") == "user"][-HISTORY_TURNS:]
    return "\n".join([*earlier, question])


def fitting_history(history: list[dict], context_tokens: int) -> list[dict]:
    """The latest earlier turns whose text fits HISTORY_SHARE of the context."""
    budget = int(context_tokens * HISTORY_SHARE) * CHARS_PER_TOKEN
    kept: list[dict] = []
    for message in reversed(history):
        budget -= len(message.get("content") or "")
        if budget < 0:
            break
        kept.insert(0, {"role": message["role"], "content": message["content"]})
    return kept


def grounded_turn(
    history: list[dict], question: str, hits: list, context_tokens: int, answer_tokens: int
) -> GroundedPrompt:
    """The messages of one grounded turn: the grounding instructions, the earlier turns that
    fit, then the question with the sources that fit what is left of the context."""
    earlier = fitting_history(history, context_tokens)
    used = sum(len(m["content"]) for m in earlier) // CHARS_PER_TOKEN
    prompt = grounded_prompt(question, hits, context_tokens - used, answer_tokens)
    system, user = prompt.messages
    return GroundedPrompt([system, *earlier, user], prompt.used, prompt.dropped)
