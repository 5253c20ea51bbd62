"""The answers the proxy is giving, so that a server that stops ends each one with an error the
client reads (a last event in a stream, else a 503) instead of a cut connection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Iterator
from typing import Protocol

SHUTDOWN_MESSAGE = "The kz server is stopping: ask again once it is back."
SHUTDOWN_CODE = "server_shutting_down"
FLUSH_SECONDS = 5.0  # for the last bytes to reach the clients
log = logging.getLogger(__name__)


class Answering(Protocol):
    """A request handler that can end its answer with the shutdown error."""

    def end_for_shutdown(self) -> Awaitable[None] | None:
        """End the answer now; done once its last bytes are sent (None: it had ended)."""


class OpenAnswers:
    """The proxy's requests under way, each registered while it lasts."""

    def __init__(self) -> None:
        self._handlers: set[Answering] = set()

    @contextlib.contextmanager
    def held(self, handler: Answering) -> Iterator[None]:
        """Register handler while its request is under way."""
        self._handlers.add(handler)
        try:
            yield
        finally:
            self._handlers.discard(handler)

    async def end_all(self) -> int:
        """End every answer under way with the shutdown error, waiting (a few seconds at most)
        for their last bytes to go; how many there were."""
        handlers = list(self._handlers)
        sent = []
        for handler in handlers:
            try:
                flushed = handler.end_for_shutdown()
            except Exception:  # one answer that cannot be ended must not keep the others open
                log.exception("kz: an answer could not be ended as the server stops")
                continue
            if flushed is not None:
                sent.append(flushed)
        if sent:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*sent, return_exceptions=True), FLUSH_SECONDS)
        return len(handlers)
