"""The same inputs to several deployments side by side: one prompt streamed from each at once
(time to first token, tokens, tokens/s and length per deployment), or a template over rows
(each deployment's answers as a column, with a summary per deployment)."""

from __future__ import annotations

import statistics
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from kz_jupyter.batch.run import run_batch
from kz_jupyter.client import KzClient
from kz_jupyter.client.replies import Reply, TextCallback, stream_reply
from kz_jupyter.errors import KzError


def compare(
    deployments: list[str],
    prompt: str,
    *,
    system: str | None = None,
    max_tokens: int = 256,
    temperature: float = 0.0,
    client: KzClient | None = None,
    on_text: TextCallback | None = None,
) -> list[Reply]:
    """Stream prompt from every deployment at once; their replies, in the order given."""
    if len(deployments) < 2:
        raise KzError("Name two deployments or more to compare: %kz compare A B 'prompt'.")
    client = client or KzClient()
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    params = {"max_tokens": max_tokens, "temperature": temperature}
    with ThreadPoolExecutor(len(deployments), thread_name_prefix="kz-compare") as pool:
        replies = [
            pool.submit(stream_reply, client, name, messages, params, on_text or (lambda *_: None))
            for name in deployments
        ]
        return [future.result() for future in replies]


def summary_of(deployment: str, rows: list[dict]) -> dict[str, Any]:
    """One deployment's figures over rows: errors, latency p50/p95, tokens per answer, tok/s."""
    answered = [r for r in rows if r["error"] is None]
    seconds = [r["seconds"] for r in answered]
    tokens = [r["completion_tokens"] for r in answered]
    return {
        "deployment": deployment,
        "rows": len(rows),
        "errors": len(rows) - len(answered),
        "latency_p50": statistics.median(seconds) if seconds else None,
        "latency_p95": statistics.quantiles(seconds, n=20)[18] if len(seconds) > 1 else None,
        "tokens_per_answer": statistics.mean(tokens) if tokens else None,
        "tokens_per_s": sum(tokens) / sum(seconds) if sum(seconds) else None,
    }


@dataclass
class Comparison:
    """Several deployments' answers to the same rows: `answers` (a column per deployment:
    a DataFrame for pandas input, else a list of dicts) and `summary` (one dict each)."""

    answers: Any
    summary: list[dict]


def compare_rows(deployments: list[str], inputs: Any, prompt: str, **options: Any) -> Comparison:
    """Run the template over the rows on every deployment (as `batch`, each answer kept on
    disk); the answers side by side and each deployment's summary."""
    if len(deployments) < 2:
        raise KzError("Name two deployments or more to compare.")
    runs = {name: run_batch(inputs, prompt, name, **options) for name in deployments}
    summary = [summary_of(name, run.rows) for name, run in runs.items()]
    first = runs[deployments[0]]
    columns = {name: [r["text"] if r["error"] is None else None for r in run.rows]
               for name, run in runs.items()}  # fmt: skip
    if first.index is None:
        answers = [
            dict(zip(columns, values, strict=True))
            for values in zip(*columns.values(), strict=True)
        ]
    else:
        import pandas

        answers = pandas.DataFrame(columns, index=first.index)
    return Comparison(answers, summary)
