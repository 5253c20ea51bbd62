"""Sending a batch's requests: as many at once as the deployment's slots take, a 429 asked again
after its Retry-After, each answer kept on disk the moment it arrives, a progress bar with rows/s
and tokens/s. It runs on a thread of its own (a kernel's event loop is busy running the cell);
interrupting the cell stops it, and what was answered stays kept."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from kz_jupyter.batch.cache import Answer, AnswerCache
from kz_jupyter.client.rest_client import error_message

RETRY_AFTER_DEFAULT = 1.0  # seconds, when a 429 says none
TIMEOUT = httpx.Timeout(600.0, connect=30.0)


@dataclass(frozen=True)
class Request:
    """One request to send: its cache key and chat completion body."""

    key: str
    body: dict


class Progress:
    """Rows done of all, with tokens/s (tqdm.auto: a widget in a notebook, text elsewhere)."""

    def __init__(self, description: str, total: int, done: int, show: bool):
        from tqdm.auto import tqdm  # loaded when a batch runs

        self._bar = tqdm(total=total, initial=done, desc=description, unit="row",
                         disable=not show)  # fmt: skip
        self._started = time.monotonic()
        self.tokens = 0

    def answered(self, answer: Answer) -> None:
        """Count one more row answered (or failed)."""
        self.tokens += answer.completion_tokens
        seconds = max(time.monotonic() - self._started, 1e-6)
        self._bar.set_postfix({"tok/s": f"{self.tokens / seconds:.1f}"}, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        """Finish the bar."""
        self._bar.close()


async def ask(http: httpx.AsyncClient, url: str, request: Request) -> Answer:
    """One row's answer; a 429 waits its Retry-After and asks again; failures are answers."""
    started = time.perf_counter()
    while True:
        try:
            response = await http.post(url, json=request.body)
        except httpx.HTTPError as error:
            return Answer(error=f"no answer from the server: {type(error).__name__}: {error}",
                          seconds=time.perf_counter() - started)  # fmt: skip
        if response.status_code == 429:
            await asyncio.sleep(float(response.headers.get("Retry-After", RETRY_AFTER_DEFAULT)))
            continue
        if response.status_code >= 400:
            message = f"HTTP {response.status_code}: {error_message(response)}"
            return Answer(error=message, seconds=time.perf_counter() - started)
        data = response.json()
        usage = data.get("usage") or {}
        return Answer(
            text=data["choices"][0]["message"].get("content") or "",
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            seconds=time.perf_counter() - started,
        )


async def send_all(
    requests: list[Request],
    url: str,
    headers: dict[str, str],
    limit: int,
    keep: Callable[[Request, Answer], None],
) -> None:
    """Send every request, at most limit at once; keep each answer as it comes."""
    gate = asyncio.Semaphore(limit)
    limits = httpx.Limits(max_connections=limit, max_keepalive_connections=limit)
    async with httpx.AsyncClient(headers=headers, timeout=TIMEOUT, limits=limits) as http:

        async def one(request: Request) -> None:
            async with gate:
                keep(request, await ask(http, url, request))

        await asyncio.gather(*(one(request) for request in requests))


def run_requests(
    requests: list[Request],
    url: str,
    headers: dict[str, str],
    limit: int,
    cache: AnswerCache,
    progress: Progress,
) -> dict[str, Answer]:
    """Send the requests from a thread of their own, keeping each answer on disk as it comes;
    an interrupt (KeyboardInterrupt, or any exception in the waiting thread) stops them, keeps
    what was answered, and is raised again."""
    answers: dict[str, Answer] = {}
    loop = asyncio.new_event_loop()

    def keep(request: Request, answer: Answer) -> None:
        cache.put(request.key, answer)
        answers[request.key] = answer
        progress.answered(answer)

    task = loop.create_task(send_all(requests, url, headers, limit, keep))
    failures: list[BaseException] = []

    def work() -> None:
        try:
            loop.run_until_complete(task)
        except asyncio.CancelledError:
            pass  # interrupted: what was answered is kept
        except Exception as error:  # raised again on the cell's thread
            failures.append(error)

    worker = threading.Thread(target=work, daemon=True, name="kz-batch")
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.1)
    except BaseException:  # interrupted (or the cell timed out): stop sending, keep the rest
        loop.call_soon_threadsafe(task.cancel)  # in-flight requests are closed: the engine stops
        worker.join()
        raise
    finally:
        progress.close()
        loop.close()
    if failures:
        raise failures[0]
    return answers
