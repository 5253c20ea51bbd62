"""Plain-text forms of `%kz compare`: each deployment's figures, then its answer; or over rows,
each deployment's summary, then the answers side by side."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kz_jupyter.magics.stats_text import millis, rate
from kz_jupyter.magics.text import format_table

if TYPE_CHECKING:  # the batch room (httpx, diskcache) loads when a comparison runs
    from kz_jupyter.batch import Comparison, Reply

REPLY_HEADER = ("DEPLOYMENT", "TTFT", "TOKENS", "SPEED", "TIME", "LENGTH")


def reply_cells(reply: Reply) -> tuple[str, ...]:
    """A reply's figures as table cells: TTFT, tokens, tokens/s, seconds, characters."""
    if reply.error:
        return (reply.deployment, "-", "-", "-", f"{reply.seconds:.2f} s", reply.error)
    return (
        reply.deployment,
        millis(reply.ttft),
        str(reply.completion_tokens),
        rate(reply.tokens_per_s, "tok/s"),
        f"{reply.seconds:.2f} s",
        f"{len(reply.text)} chars",
    )


def format_figures(replies: list[Reply]) -> str:
    """The replies' figures as a table."""
    return format_table([REPLY_HEADER, *(reply_cells(r) for r in replies)])


def format_replies(replies: list[Reply]) -> str:
    """The replies as text: their figures, then each answer under its deployment's name."""
    lines = [format_figures(replies)]
    for reply in replies:
        lines += [f"--- {reply.deployment} ---", reply.error or reply.text]
    return "\n".join(lines)


def format_comparison(comparison: Comparison) -> str:
    """A comparison over rows as text: each deployment's summary, then the answers."""
    header = ("DEPLOYMENT", "ROWS", "ERRORS", "LATENCY P50", "LATENCY P95", "TOKENS/ANSWER",
              "SPEED")  # fmt: skip
    rows = [
        (s["deployment"], str(s["rows"]), str(s["errors"]),
         millis(s["latency_p50"]), millis(s["latency_p95"]),
         "-" if s["tokens_per_answer"] is None else f"{s['tokens_per_answer']:.1f}",
         rate(s["tokens_per_s"], "tok/s"))
        for s in comparison.summary
    ]  # fmt: skip
    answers = comparison.answers
    shown = answers.to_string() if hasattr(answers, "to_string") else "\n".join(map(str, answers))
    return format_table([header, *rows]) + "\n" + shown
