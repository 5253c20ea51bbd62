"""What measuring costs: two Jupyter servers in one run, one measuring every request (the
default) and one with `c.KzApp.proxy_metrics = False`, each with its own llama.cpp deployment
of SmolLM2. Streamed chats through each proxy, the order alternating per round; per round the
tokens/s ratio (on / off) and the server process's CPU time per relayed token chunk."""

from __future__ import annotations

import statistics
import tempfile
from contextlib import ExitStack
from pathlib import Path

import httpx
import psutil

from bench.harness import JupyterServer, run_batch, settle
from bench.report import Chart, Goal, SuiteResult

NAME = "bench-metrics"
MODES = {"on": (), "off": ("--KzApp.proxy_metrics=False",)}


def measured_batch(server: JupyterServer, concurrency: int, max_tokens: int) -> dict:
    """One batch through the server's proxy: its tokens/s and the server's CPU per chunk."""
    process = psutil.Process(server.process.pid)
    before = process.cpu_times()
    streams, seconds = run_batch(server.chat_url, NAME, concurrency, max_tokens, server.headers)
    after = process.cpu_times()
    cpu = (after.user - before.user) + (after.system - before.system)
    chunks = sum(s.tokens for s in streams)
    return {
        "tokens_per_s": chunks / seconds,
        "cpu_ms_per_chunk": cpu * 1000 / max(chunks, 1),
        "errors": sum(bool(s.error) for s in streams),
    }


def run(quick: bool) -> SuiteResult:
    """Measure both servers at concurrency 1 and 8."""
    rounds = {1: 2, 8: 1} if quick else {1: 12, 8: 6}
    max_tokens = 16 if quick else 64
    rows, details = [], {}
    with tempfile.TemporaryDirectory() as work, ExitStack() as stack:
        servers = {}
        for mode, args in MODES.items():
            server = stack.enter_context(JupyterServer(Path(work) / mode, args))
            client = server.client()
            client.deploy("smollm2", name=NAME)
            assert client.wait(NAME)["status"] == "DEPLOYED"
            run_batch(server.chat_url, NAME, 2, 4, server.headers)  # warm the path
            servers[mode] = server
        settle()
        for concurrency, count in rounds.items():
            batches: dict[str, list[dict]] = {"on": [], "off": []}
            for number in range(count):
                order = ("on", "off") if number % 2 == 0 else ("off", "on")
                for mode in order:
                    batches[mode].append(measured_batch(servers[mode], concurrency, max_tokens))
            on, off = batches["on"], batches["off"]
            ratio = statistics.median(
                a["tokens_per_s"] / b["tokens_per_s"] for a, b in zip(on, off, strict=True)
            )
            median = {
                mode: {key: statistics.median(b[key] for b in batches[mode])
                       for key in ("tokens_per_s", "cpu_ms_per_chunk")}
                for mode in batches
            }  # fmt: skip
            rows.append({
                "concurrency": concurrency,
                "rounds": count,
                "tok/s metrics off": median["off"]["tokens_per_s"],
                "tok/s metrics on": median["on"]["tokens_per_s"],
                "ratio on/off": ratio,
                "server CPU ms/chunk off": median["off"]["cpu_ms_per_chunk"],
                "server CPU ms/chunk on": median["on"]["cpu_ms_per_chunk"],
                "errors": sum(b["errors"] for b in on + off),
            })  # fmt: skip
            details[str(concurrency)] = batches
        counted = httpx.get(servers["on"].connection.url("kz/metrics"),
                            headers=servers["on"].headers).text  # fmt: skip
        details["tokens_counted_by_the_measuring_server"] = "kz_completion_tokens_total{" in counted
        for server in servers.values():
            server.client().stop(NAME)
    return SuiteResult(
        suite="metrics",
        title="Cost of measuring: /kz/v1 with metrics on vs off (llama.cpp, SmolLM2)",
        rows=rows,
        notes=[
            f"{max_tokens} tokens per streamed chat; 'on' counts outcomes, times and tokens (it "
            "asks the engine for usage in every stream and removes it again); CPU is the Jupyter "
            "server process's user+system time over the batch, per content chunk relayed.",
        ],
        goals=[
            Goal(
                "tokens/s with metrics >= 0.98 of without, at every concurrency",
                min(r["ratio on/off"] for r in rows),
                all(r["ratio on/off"] >= 0.98 for r in rows),
            ),
            Goal("0 errors", sum(r["errors"] for r in rows), all(r["errors"] == 0 for r in rows)),
        ],
        charts=[
            Chart.from_rows(
                "tokens/s (batch)",
                "tokens/s",
                [str(r["concurrency"]) for r in rows],
                rows,
                {"metrics off": "tok/s metrics off", "metrics on": "tok/s metrics on"},
            ),  # fmt: skip
            Chart.from_rows(
                "server CPU per chunk",
                "ms",
                [str(r["concurrency"]) for r in rows],
                rows,
                {"metrics off": "server CPU ms/chunk off", "metrics on": "server CPU ms/chunk on"},
            ),  # fmt: skip
        ],
        details=details,
    )
