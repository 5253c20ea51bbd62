"""The token counts of an answer, read from the engine's `usage` as the answer is relayed: from
a JSON body, or from a stream whose engine the proxy asked for usage (the usage event removed
again when the client had not asked for it)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

USAGE_KEY = re.compile(rb'"usage"\s*:\s*\{')
EVENT_ENDS = (b"\n\n", b"\r\n\r\n")
BODY_LIMIT = 16 * 1024 * 1024  # bytes of a JSON answer kept to read its usage from


@dataclass(frozen=True)
class Usage:
    """Prompt and completion tokens of one answer."""

    prompt: int = 0
    completion: int = 0

    @classmethod
    def of(cls, usage: object) -> Usage | None:
        """The counts of an OpenAI `usage` object, or None when it holds none."""
        if not isinstance(usage, dict):
            return None
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens", 0)
        if not isinstance(prompt, int) or not isinstance(completion, int):
            return None
        return cls(prompt, completion)


def asking_for_usage(body: dict) -> dict | None:
    """For a streamed completion whose client did not ask for usage: the body that asks the
    engine for it (the usage event is then removed from the answer); else None."""
    if body.get("stream") is not True:
        return None
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        return None
    options = options if isinstance(options, dict) else {}
    return body | {"stream_options": options | {"include_usage": True}}


def _usage_of_event(event: bytes) -> tuple[dict | None, Usage | None]:
    """A server-sent event's JSON data and the usage it carries (None, None: not JSON)."""
    data = b"".join(line[5:].strip() for line in event.splitlines() if line.startswith(b"data:"))
    try:
        chunk = json.loads(data)
    except ValueError:
        return None, None
    return (chunk, Usage.of(chunk.get("usage"))) if isinstance(chunk, dict) else (None, None)


class UsageTap:
    """Watches the bytes of one answer on their way to the client: `relay(chunk)` returns what
    to send on (a stream's events whole, without the usage event the client did not ask for),
    `end()` what is left; `usage` holds the counts once seen."""

    def __init__(self, streamed: bool, strip: bool):
        self.streamed = streamed
        self.strip = strip  # the proxy asked for the usage event: take it out again
        self.usage: Usage | None = None
        self._pending = b""
        self._body: list[bytes] | None = None if streamed else []
        self._body_size = 0

    def relay(self, chunk: bytes) -> bytes:
        """The bytes to send on for this chunk."""
        if not self.streamed:
            self._keep(chunk)
            return chunk
        data = self._pending + chunk
        end = max(data.rfind(mark) + len(mark) if mark in data else 0 for mark in EVENT_ENDS)
        self._pending = data[end:]
        complete = data[:end]
        if not USAGE_KEY.search(complete):
            return complete  # the common case: no event here carries usage
        return b"".join(self._events(complete))

    def end(self) -> bytes:
        """The bytes still held at the answer's end (read the usage of a JSON answer)."""
        if self._body is not None:
            self._read_body()
            return b""
        rest, self._pending = self._pending, b""
        return rest

    def _events(self, complete: bytes):
        """The events of complete, each kept, rewritten without usage, or left out."""
        for event in re.split(rb"(?<=\n\n)|(?<=\r\n\r\n)", complete):
            if not USAGE_KEY.search(event):
                yield event
                continue
            chunk, usage = _usage_of_event(event)
            if usage is None:
                yield event
                continue
            self.usage = usage
            if not self.strip:
                yield event
            elif chunk.get("choices"):  # usage on a chunk with content: keep the content
                del chunk["usage"]
                yield b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"

    def _keep(self, chunk: bytes) -> None:
        """Keep a JSON answer's bytes to read its usage at the end (up to BODY_LIMIT)."""
        if self._body is None:
            return
        self._body_size += len(chunk)
        if self._body_size > BODY_LIMIT:
            self._body = None
            return
        self._body.append(chunk)

    def _read_body(self) -> None:
        """The usage of a JSON answer: the object after its last `"usage":` key."""
        body, self._body = b"".join(self._body or ()), None
        found = USAGE_KEY.match(body, max(body.rfind(b'"usage"'), 0))
        if not found:
            return
        text = body[found.start() :].decode("utf-8", "replace")
        try:
            usage, _ = json.JSONDecoder().raw_decode(text, text.index("{"))
        except ValueError:
            return
        self.usage = Usage.of(usage)
