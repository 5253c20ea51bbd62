"""What measuring costs: two Jupyter servers in one run, one measuring every request (the
default) and one with `c.KzApp.proxy_metrics = False`, each with its own llama.cpp deployment
of SmolLM2. Streamed chats through each proxy, the order alternating per round; per round the
tokens/s ratio (on / off); over all rounds the server process's CPU time per relayed token
chunk. Two phases, the measuring server started first and then second, cancel what start order
does to the figures."""

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
    """One batch through the server's proxy: its tokens/s, chunks and the server's CPU time."""
    process = psutil.Process(server.process.pid)
    before = process.cpu_times()
    streams, seconds = run_batch(server.chat_url, NAME, concurrency, max_tokens, server.headers)
    after = process.cpu_times()
    chunks = sum(s.tokens for s in streams)
    return {
        "tokens_per_s": chunks / seconds,
        "chunks": chunks,
        "cpu_s": (after.user - before.user) + (after.system - before.system),
        "errors": sum(bool(s.error) for s in streams),
    }


def phase(order: tuple[str, str], rounds: dict[int, int], max_tokens: int) -> dict:
    """Start a server per mode in this order, each with its deployment; run the rounds (the
    modes alternating within each); return the batches by concurrency and mode."""
    batches: dict[int, dict[str, list[dict]]] = {c: {"on": [], "off": []} for c in rounds}
    with tempfile.TemporaryDirectory() as work, ExitStack() as stack:
        servers = {}
        for mode in order:
            folder = Path(work) / mode
            folder.mkdir()
            server = stack.enter_context(JupyterServer(folder, MODES[mode]))
            client = server.client()
            client.deploy("smollm2", name=NAME)
            assert client.wait(NAME)["status"] == "DEPLOYED"
            run_batch(server.chat_url, NAME, 2, 4, server.headers)  # warm the path
            servers[mode] = server
        settle()
        for concurrency, count in rounds.items():
            for number in range(count):
                for mode in order if number % 2 == 0 else order[::-1]:
                    batch = measured_batch(servers[mode], concurrency, max_tokens)
                    batches[concurrency][mode].append(batch)
        measured = httpx.get(servers["on"].connection.url("kz/metrics"),
                             headers=servers["on"].headers).text  # fmt: skip
        assert "kz_completion_tokens_total{" in measured  # the measuring server measured
        for server in servers.values():
            server.client().stop(NAME)
    return batches


def run(quick: bool) -> SuiteResult:
    """Measure both servers at concurrency 1 and 8, in two phases: the measuring server started
    first, then second (which engine and server start first shifts figures by a few percent)."""
    rounds = {1: 2, 8: 1} if quick else {1: 12, 8: 6}
    max_tokens = 16 if quick else 64
    phases = [phase(order, rounds, max_tokens) for order in (("on", "off"), ("off", "on"))]
    rows = []
    for concurrency in rounds:
        on = [b for p in phases for b in p[concurrency]["on"]]
        off = [b for p in phases for b in p[concurrency]["off"]]
        ratios = [a["tokens_per_s"] / b["tokens_per_s"] for a, b in zip(on, off, strict=True)]
        per_phase = [
            statistics.median(
                a["tokens_per_s"] / b["tokens_per_s"]
                for a, b in zip(p[concurrency]["on"], p[concurrency]["off"], strict=True)
            )
            for p in phases
        ]
        rows.append({
            "concurrency": concurrency,
            "rounds": len(on),
            "tok/s metrics off": statistics.median(b["tokens_per_s"] for b in off),
            "tok/s metrics on": statistics.median(b["tokens_per_s"] for b in on),
            "ratio on/off": statistics.median(ratios),
            "ratio, on started first": per_phase[0],
            "ratio, on started second": per_phase[1],
            "server CPU ms/chunk off": 1000 * sum(b["cpu_s"] for b in off)
            / max(sum(b["chunks"] for b in off), 1),
            "server CPU ms/chunk on": 1000 * sum(b["cpu_s"] for b in on)
            / max(sum(b["chunks"] for b in on), 1),
            "errors": sum(b["errors"] for b in on + off),
        })  # fmt: skip
    details = {"phases": [{str(c): p[c] for c in p} for p in phases]}
    return SuiteResult(
        suite="metrics",
        title="Cost of measuring: /kz/v1 with metrics on vs off (llama.cpp, SmolLM2)",
        rows=rows,
        notes=[
            f"{max_tokens} tokens per streamed chat; 'on' counts outcomes, times and tokens (it "
            "asks the engine for usage in every stream and removes it again); CPU is the Jupyter "
            "server process's user+system time over all batches, per content chunk relayed.",
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
            ),
            Chart.from_rows(
                "server CPU per chunk",
                "ms",
                [str(r["concurrency"]) for r in rows],
                rows,
                {"metrics off": "server CPU ms/chunk off", "metrics on": "server CPU ms/chunk on"},
            ),
        ],
        details=details,
    )
