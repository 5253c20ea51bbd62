"""Concurrent users on one deployment: llama.cpp's `llama-server` (the llamacpp engine) against
llama-cpp-python's server, the same SmolLM2 file, both through /kz/v1. At each level every round
runs one batch on each engine, the order alternating, so both see the same machine."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.harness import JupyterServer, run_batch, summarize
from bench.report import Chart, Goal, SuiteResult

ENGINES = {"llama-server": "llamacpp", "llama-cpp-python": "llama-cpp-python"}


def run(quick: bool) -> SuiteResult:
    """Stream 64-token chats at 1, 4, 8 and 32 concurrent users on both engines."""
    rounds = {1: 1, 4: 1, 8: 1} if quick else {1: 6, 4: 3, 8: 3, 32: 1}
    max_tokens = 16 if quick else 64
    rows, samples = [], {}
    with tempfile.TemporaryDirectory() as work, JupyterServer(Path(work)) as server:
        client = server.client()
        for name, engine in ENGINES.items():
            client.deploy("smollm2", name=name, engine=engine)
        for name in ENGINES:
            record = client.wait(name)
            assert record["status"] == "DEPLOYED", record
            run_batch(server.chat_url, name, 1, 4, server.headers)  # warm up
        parallel = client.deployment("llama-server")["plan"]["parallel"]
        for users, count in rounds.items():
            batches: dict[str, list] = {name: [] for name in ENGINES}
            for number in range(count):
                order = list(ENGINES) if number % 2 == 0 else list(reversed(ENGINES))
                for name in order:
                    batch = run_batch(server.chat_url, name, users, max_tokens, server.headers)
                    batches[name].append(batch)
            new, old = summarize(batches["llama-server"]), summarize(batches["llama-cpp-python"])
            samples[users] = (new, old)
            rows.append(
                {
                    "users": users,
                    "rounds": count,
                    "llama-server tok/s": new["tokens_per_s"],
                    "llama-cpp-python tok/s": old["tokens_per_s"],
                    "ratio": new["tokens_per_s"] / old["tokens_per_s"],
                    "llama-server TTFT p50 ms": new["ttft_p50_ms"],
                    "llama-server TTFT p99 ms": new["ttft_p99_ms"],
                    "llama-cpp-python TTFT p50 ms": old["ttft_p50_ms"],
                    "llama-cpp-python TTFT p99 ms": old["ttft_p99_ms"],
                    "errors": new["errors"] + old["errors"],
                }
            )
        for name in ENGINES:
            client.stop(name)
    by_users = {row["users"]: row for row in rows}
    at_one, at_eight = by_users[1], by_users[8]
    return SuiteResult(
        suite="concurrency",
        title="Concurrent users: llama-server vs llama-cpp-python's server (SmolLM2, /kz/v1)",
        rows=rows,
        notes=[
            f"{max_tokens}-token streamed chats at temperature 0; tokens/s is a whole batch's "
            f"(all its streams' tokens over its wall time); llama-server runs {parallel} "
            "parallel slots (the plan's choice), llama-cpp-python one request at a time."
        ],
        goals=[
            Goal("tokens/s ratio >= 3 at 8 users", at_eight["ratio"], at_eight["ratio"] >= 3),
            Goal(
                "llama-server TTFT p50 <= 2000 ms at 8 users",
                at_eight["llama-server TTFT p50 ms"],
                at_eight["llama-server TTFT p50 ms"] <= 2000,
            ),
            Goal("tokens/s ratio >= 1.1 at 1 user", at_one["ratio"], at_one["ratio"] >= 1.1),
            Goal(
                "0 errors",
                sum(r["errors"] for r in rows),
                all(r["errors"] == 0 for r in rows),
            ),
        ],
        charts=[
            Chart.from_rows(
                "aggregate tokens/s",
                "tokens/s",
                [str(u) for u in samples],
                rows,
                {
                    "llama-server": "llama-server tok/s",
                    "llama-cpp-python": "llama-cpp-python tok/s",
                },
            ),
            Chart.from_rows(
                "time to first token p50",
                "ms",
                [str(u) for u in samples],
                rows,
                {
                    "llama-server": "llama-server TTFT p50 ms",
                    "llama-cpp-python": "llama-cpp-python TTFT p50 ms",
                },
            ),
        ],
        details={"max_tokens": max_tokens, "parallel": parallel},
    )
