"""A request through the proxy as it ended, and those of the last minutes kept for the panels:
a deployment's rates, time to first token percentiles and generation speed now, and the same
as a time series."""

from __future__ import annotations

import statistics
import time
from collections import deque
from dataclasses import dataclass

from kz_jupyter.server_ext.api.token_usage import Usage

KEEP_SECONDS = 600.0
KEEP_REQUESTS = 100_000
NOW_SECONDS = 60.0  # the span of the "now" figures


@dataclass(frozen=True)
class FinishedRequest:
    """One request through /kz/v1 as it ended: where it went, for whom, how it ended, its time
    to first bytes (None: none came) and duration in seconds, and its tokens when known."""

    deployment: str
    replica: str
    route: str
    user: str
    outcome: str
    first_byte: float | None
    duration: float
    usage: Usage | None = None
    ended: float = 0.0  # time.time() at its end
    streamed: bool = False

    @property
    def time_per_output_token(self) -> float | None:
        """Seconds per generated token after the first bytes (a stream of 2 tokens or more)."""
        tokens = self.usage.completion if self.usage else 0
        if not self.streamed or self.first_byte is None or tokens < 2:
            return None
        return (self.duration - self.first_byte) / (tokens - 1)


def percentile(values: list[float], share: float) -> float | None:
    """The share (0-1) percentile of values, interpolated; None for no values."""
    if len(values) < 2:
        return values[0] if values else None
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[round(share * 100) - 1]


def figures(requests: list[FinishedRequest], seconds: float) -> dict:
    """Rates over seconds, TTFT p50/p95 and generation speed of these requests."""
    first = [r.first_byte for r in requests if r.first_byte is not None]
    token_times = [t for r in requests if (t := r.time_per_output_token)]
    tokens = sum(r.usage.completion for r in requests if r.usage)
    median_token_time = statistics.median(token_times) if token_times else None
    return {
        "requests": len(requests),
        "errors": sum(r.outcome not in ("ok", "cancelled") for r in requests),
        "requests_per_s": len(requests) / seconds,
        "tokens_per_s": tokens / seconds,
        "ttft_p50": percentile(first, 0.5),
        "ttft_p95": percentile(first, 0.95),
        "decode_tokens_per_s": 1 / median_token_time if median_token_time else None,
    }


class RequestWindow:
    """The requests that ended in the last KEEP_SECONDS (at most KEEP_REQUESTS of them)."""

    def __init__(self) -> None:
        self._requests: deque[FinishedRequest] = deque(maxlen=KEEP_REQUESTS)

    def add(self, request: FinishedRequest) -> None:
        """Keep a request that ended now."""
        self._requests.append(request)
        while self._requests and self._requests[0].ended < request.ended - KEEP_SECONDS:
            self._requests.popleft()

    def since(self, deployment: str, start: float) -> list[FinishedRequest]:
        """A deployment's requests that ended after start (a time.time())."""
        return [r for r in self._requests if r.ended > start and r.deployment == deployment]

    def now(self, deployment: str, now: float | None = None) -> dict:
        """A deployment's figures over the last NOW_SECONDS."""
        now = time.time() if now is None else now
        return figures(self.since(deployment, now - NOW_SECONDS), NOW_SECONDS)

    def series(self, deployment: str, span: float, step: float, now: float | None = None) -> dict:
        """A deployment's figures per step over the last span seconds: the end of each step
        (time.time()) and its requests/s, tokens/s and TTFT p95."""
        now = time.time() if now is None else now
        steps = int(span // step)
        ends = [now - (steps - 1 - i) * step for i in range(steps)]
        buckets: list[list[FinishedRequest]] = [[] for _ in ends]
        for request in self.since(deployment, now - steps * step):
            index = min(int((request.ended - (now - steps * step)) // step), steps - 1)
            buckets[index].append(request)
        each = [figures(bucket, step) for bucket in buckets]
        return {
            "t": ends,
            **{
                key: [f[key] for f in each]
                for key in ("requests_per_s", "tokens_per_s", "ttft_p95")
            },
        }
