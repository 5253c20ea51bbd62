"""The same inputs to several deployments side by side: one prompt streamed from each at once
(time to first token, tokens, tokens/s and length per deployment), or a template over rows
(each deployment's answers as a column, with a summary per deployment)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from kz_jupyter.batch.run import run_batch
from kz_jupyter.client import KzClient
from kz_jupyter.errors import KzError

TextCallback = Callable[[str, str], None]  # (deployment, text so far)


@dataclass
class Reply:
    """One deployment's streamed answer and how fast it came."""

    deployment: str
    text: str = ""
    ttft: float | None = None  # seconds to the first text
    seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None

    @property
    def tokens_per_s(self) -> float | None:
        """Generated tokens per second after the first (None before two tokens)."""
        if self.ttft is None or self.completion_tokens < 2 or self.seconds <= self.ttft:
            return None
        return (self.completion_tokens - 1) / (self.seconds - self.ttft)


def stream_reply(
    client: KzClient, deployment: str, messages: list[dict], params: dict, on_text: TextCallback
) -> Reply:
    """Stream one deployment's answer, calling on_text as it grows; an error is the reply's."""
    import openai

    reply, started = Reply(deployment), time.perf_counter()
    try:
        stream = client.openai().chat.completions.create(
            model=deployment, messages=messages, stream=True,
            stream_options={"include_usage": True}, **params,
        )  # fmt: skip
        for chunk in stream:
            if chunk.usage:
                reply.prompt_tokens = chunk.usage.prompt_tokens
                reply.completion_tokens = chunk.usage.completion_tokens
            if chunk.choices and chunk.choices[0].delta.content:
                reply.ttft = reply.ttft or time.perf_counter() - started
                reply.text += chunk.choices[0].delta.content
                on_text(deployment, reply.text)
    except openai.APIStatusError as error:
        body = error.body if isinstance(error.body, dict) else {}
        reply.error = f"HTTP {error.status_code}: {body.get('message') or error.message}"
    except openai.APIConnectionError as error:
        reply.error = f"no answer from the server: {error}"
    reply.seconds = time.perf_counter() - started
    return reply


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
