"""Load: streamed chats through /kz/v1 for a fixed time against one llama.cpp deployment of
SmolLM2, with c.KzApp.max_requests_per_deployment = 100. Below the limit every request is
served (llama.cpp queues them): 0 errors. Past it the surplus is answered 429 with Retry-After
at once, and nothing else fails. The server's RSS before, between and after the phases shows
whether load leaves memory behind."""

from __future__ import annotations

import asyncio
import gc
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from bench.harness import JupyterServer, Stream, percentile, stream_chat
from bench.report import Chart, Goal, SuiteResult

NAME = "bench-load"
LIMIT = 100
RETRY_AFTER_S = 1.0  # what the proxy's Retry-After says


@dataclass
class Outcomes:
    """What the clients of one phase saw."""

    served: list[Stream] = field(default_factory=list)
    refused_s: list[float] = field(default_factory=list)  # how long each 429 took to come
    errors: list[str] = field(default_factory=list)


async def client_loop(
    http: httpx.AsyncClient, server: JupyterServer, end: float, max_tokens: int, seen: Outcomes
) -> None:
    """One user: stream a chat, again and again until end; after a 429, wait Retry-After."""
    while time.perf_counter() < end:
        asked = time.perf_counter()
        stream = await stream_chat(http, server.chat_url, NAME, max_tokens, server.headers)
        if stream.error == "HTTP 429":
            seen.refused_s.append(time.perf_counter() - asked)
            await asyncio.sleep(RETRY_AFTER_S)
        elif stream.error:
            seen.errors.append(stream.error)
        else:
            seen.served.append(stream)


async def phase(server: JupyterServer, concurrency: int, seconds: float, max_tokens: int):
    """concurrency users for seconds; the phase ends when the last request in flight ends."""
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency)
    seen = Outcomes()
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(600.0)) as http:
        end = time.perf_counter() + seconds
        await asyncio.gather(
            *(client_loop(http, server, end, max_tokens, seen) for _ in range(concurrency))
        )
    return seen


def rss_mib(pid: int) -> float:
    """A process's resident memory now."""
    return psutil.Process(pid).memory_info().rss / 2**20


def run(quick: bool) -> SuiteResult:
    """Below the limit (64 users), then past it (200 users; full run: 128 too)."""
    seconds = 20.0 if quick else 120.0
    levels = [64, 200] if quick else [64, 128, 200]
    max_tokens = 8 if quick else 16
    rows = []
    with (
        tempfile.TemporaryDirectory() as work,
        JupyterServer(Path(work), (f"--KzApp.max_requests_per_deployment={LIMIT}",)) as server,
    ):
        client = server.client()
        client.deploy("smollm2", name=NAME)
        record = client.wait(NAME)
        assert record["status"] == "DEPLOYED", record
        pid = server.process.pid
        asyncio.run(phase(server, 4, 3.0, max_tokens))  # warm: connections, first requests
        rss_start = rss_mib(pid)
        for concurrency in levels:
            started = time.perf_counter()
            seen = asyncio.run(phase(server, concurrency, seconds, max_tokens))
            wall = time.perf_counter() - started
            latencies = [s.seconds for s in seen.served]
            rows.append(
                {
                    "users": concurrency,
                    "seconds": round(wall, 1),
                    "served": len(seen.served),
                    "refused 429": len(seen.refused_s),
                    "errors": len(seen.errors),
                    "latency p50 s": percentile(latencies, 50),
                    "latency p99 s": percentile(latencies, 99),
                    "TTFT p50 s": percentile([s.ttft_s for s in seen.served], 50),
                    "429 answer p50 ms": percentile(seen.refused_s, 50) * 1000,
                    "tok/s": sum(s.tokens for s in seen.served) / wall,
                    "server RSS MiB": rss_mib(pid),
                    "first errors": sorted(set(seen.errors))[:3],
                }
            )
        gc.collect()
        time.sleep(2.0)
        rss_end = rss_mib(pid)
        client.stop(NAME)
    below = [r for r in rows if r["users"] < LIMIT]
    past = [r for r in rows if r["users"] > LIMIT]
    return SuiteResult(
        suite="load",
        title=f"Load through /kz/v1: {seconds:.0f} s per level, limit {LIMIT} in flight",
        rows=[{k: v for k, v in r.items() if k != "first errors"} for r in rows],
        notes=[
            f"Each user streams a chat ({max_tokens} tokens), then the next, until the time is "
            "up; after a 429 it waits the Retry-After (1 s). llama-server serves its parallel "
            "slots (8) at once and queues the rest, so latency below the limit is mostly the "
            "engine's queue; past it, the users' retries share the 2 cores with the engine.",
            f"Jupyter server RSS: {rss_start:.0f} MiB after warm-up, {rss_end:.0f} MiB after "
            "the last level.",
        ],
        goals=[
            Goal(
                "0 errors at every level",
                sum(r["errors"] for r in rows),
                all(r["errors"] == 0 for r in rows),
            ),  # fmt: skip
            Goal(
                "no 429 below the limit",
                sum(r["refused 429"] for r in below),
                all(r["refused 429"] == 0 for r in below),
            ),  # fmt: skip
            Goal(
                "429s past the limit",
                sum(r["refused 429"] for r in past),
                all(r["refused 429"] > 0 for r in past),
            ),  # fmt: skip
            Goal("server RSS growth <= 50 MiB", rss_end - rss_start, rss_end - rss_start <= 50),
        ],
        charts=[
            Chart.from_rows(
                "latency",
                "s",
                [str(r["users"]) for r in rows],
                rows,
                {"p50": "latency p50 s", "p99": "latency p99 s"},
            ),  # fmt: skip
        ],
        details={
            "rss_start_mib": rss_start,
            "rss_end_mib": rss_end,
            "limit": LIMIT,
            "first_errors": {r["users"]: r["first errors"] for r in rows},
        },  # fmt: skip
    )
