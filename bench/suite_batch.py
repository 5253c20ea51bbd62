"""Batch throughput: the same rows through `kz_jupyter.batch` (as many at once as the
deployment's slots, each answer kept on disk) vs a plain asyncio client sending the same
requests at the same concurrency through the same proxy, and vs one request at a time. Rounds
alternate the two concurrent paths; each batch round starts with an empty answer cache."""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.harness import JupyterServer, settle
from bench.report import Chart, Goal, SuiteResult
from kz_jupyter.batch import batch, slots_of

NAME = "bench-batch"
SLOTS = 4
TEMPLATE = "Write one short sentence about the number {text}."


def plain_client(url: str, headers: dict, bodies: list[dict], concurrency: int) -> float:
    """Seconds for a plain asyncio client to send every body, concurrency at once."""

    async def run() -> None:
        gate = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(headers=headers, timeout=600) as http:

            async def one(body: dict) -> None:
                async with gate:
                    answer = await http.post(url, json=body)
                    answer.raise_for_status()

            await asyncio.gather(*(one(body) for body in bodies))

    started = time.perf_counter()
    asyncio.run(run())
    return time.perf_counter() - started


def through_kz(server: JupyterServer, rows: list[str], max_tokens: int, folder: Path) -> float:
    """Seconds for kz_jupyter.batch to answer every row, from an empty answer cache."""
    os.environ["KZ_BATCH_CACHE"] = str(folder)
    started = time.perf_counter()
    result = batch(rows, TEMPLATE, NAME, max_tokens=max_tokens, client=server.client(),
                   progress=False)  # fmt: skip
    seconds = time.perf_counter() - started
    assert all(row["error"] is None for row in result), result
    return seconds


def run(quick: bool) -> SuiteResult:
    """Rows/s of the batch, the plain client at the slots' concurrency, and one at a time."""
    count, rounds, max_tokens = (16, 2, 8) if quick else (64, 6, 16)
    rows = [str(n) for n in range(count)]
    bodies = [{"model": NAME, "max_tokens": max_tokens, "temperature": 0.0,
               "messages": [{"role": "user", "content": TEMPLATE.format(text=row)}]}
              for row in rows]  # fmt: skip
    kept = os.environ.get("KZ_BATCH_CACHE")
    seconds: dict[str, list[float]] = {"kz batch": [], "plain client": [], "one at a time": []}
    with tempfile.TemporaryDirectory() as work, JupyterServer(Path(work)) as server:
        client = server.client()
        client.deploy("smollm2", name=NAME, parallel=SLOTS)
        record = client.wait(NAME)
        assert record["status"] == "DEPLOYED" and slots_of(record) == SLOTS, record
        plain_client(server.chat_url, server.headers, bodies[:SLOTS], SLOTS)  # warm the path
        settle()
        try:
            for number in range(rounds):
                paths = ["kz batch", "plain client"]
                for path in paths if number % 2 == 0 else paths[::-1]:
                    if path == "kz batch":
                        folder = Path(work) / f"answers-{number}"
                        seconds[path].append(through_kz(server, rows, max_tokens, folder))
                    else:
                        seconds[path].append(
                            plain_client(server.chat_url, server.headers, bodies, SLOTS)
                        )
            for _ in range(max(1, rounds // 3)):
                seconds["one at a time"].append(
                    plain_client(server.chat_url, server.headers, bodies, 1)
                )
        finally:
            if kept is None:
                os.environ.pop("KZ_BATCH_CACHE", None)
            else:
                os.environ["KZ_BATCH_CACHE"] = kept
        client.stop(NAME)
    rate = {path: [count / s for s in values] for path, values in seconds.items()}
    ratios = [a / b for a, b in zip(rate["kz batch"], rate["plain client"], strict=True)]
    rows_out = [
        {"path": path, "rounds": len(values), "rows/s": statistics.median(values),
         "ratio to the plain client": statistics.median(values)
         / statistics.median(rate["plain client"])}
        for path, values in rate.items()
    ]  # fmt: skip
    ratio = statistics.median(ratios)
    return SuiteResult(
        suite="batch",
        title=f"Batch of {count} rows: kz_jupyter.batch vs a plain asyncio client (SmolLM2, "
        f"{SLOTS} slots)",
        rows=rows_out,
        notes=[
            f"{max_tokens} tokens per answer at temperature 0; both concurrent paths send "
            f"{SLOTS} requests at once through /kz/v1; the batch writes each answer to disk; "
            "ratio: median of per-round ratios (kz batch / plain client)."
        ],
        goals=[
            Goal("kz batch rows/s >= 0.95 of the plain client's", ratio, ratio >= 0.95),
            Goal(
                "slots beat one at a time",
                statistics.median(rate["plain client"]) / statistics.median(rate["one at a time"]),
                statistics.median(rate["plain client"]) > statistics.median(rate["one at a time"]),
            ),
        ],
        charts=[
            Chart(
                "rows per second",
                "rows/s",
                [r["path"] for r in rows_out],
                {"rows/s": [r["rows/s"] for r in rows_out]},
            )
        ],  # fmt: skip
        details={"seconds": seconds, "per_round_ratio": ratios},
    )
