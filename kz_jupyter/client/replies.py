"""One streamed chat reply with its figures: time to first token, tokens, tokens/s, how it
ended (the model's end, cut at max_tokens, or stopped by the user)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kz_jupyter.client.rest_client import KzClient

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
    finish_reason: str | None = None  # "stop", "length" (cut at max_tokens), ...
    stopped: bool = False  # ended early by the caller

    @property
    def tokens_per_s(self) -> float | None:
        """Generated tokens per second after the first (None before two tokens)."""
        if self.ttft is None or self.completion_tokens < 2 or self.seconds <= self.ttft:
            return None
        return (self.completion_tokens - 1) / (self.seconds - self.ttft)


def stream_reply(
    client: KzClient,
    deployment: str,
    messages: list[dict],
    params: dict,
    on_text: TextCallback,
    stop: threading.Event | None = None,
) -> Reply:
    """Stream one deployment's answer, calling on_text as it grows, until it ends or stop is
    set (the stream is then closed, which ends the generation); an error is the reply's."""
    import openai

    reply, started = Reply(deployment), time.perf_counter()
    try:
        stream = client.openai().chat.completions.create(
            model=deployment, messages=messages, stream=True,
            stream_options={"include_usage": True}, **params,
        )  # fmt: skip
        with stream:
            for chunk in stream:
                if stop is not None and stop.is_set():
                    reply.stopped = True
                    break
                if chunk.usage:
                    reply.prompt_tokens = chunk.usage.prompt_tokens
                    reply.completion_tokens = chunk.usage.completion_tokens
                if chunk.choices and chunk.choices[0].finish_reason:
                    reply.finish_reason = chunk.choices[0].finish_reason
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
