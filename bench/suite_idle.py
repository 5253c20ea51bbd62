"""Idle reload benchmark: how long the first request to an idle-unloaded deployment takes
(load the engine again + answer), against the same request to the loaded deployment, and
against starting the bare engine by hand and asking it (interleaved).

Runs against the embedded app.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench.harness import BareEngine, plan_for, run_batch, settle
from bench.report import Goal, SuiteResult, p50_chart, timing_rows
from kz_jupyter.client import KzClient

KEEP_ALIVE = 1
MESSAGES = [{"role": "user", "content": "Say hello."}]


def first_token_seconds(client: KzClient, name: str) -> float:
    """Seconds from sending a chat request until its first streamed text."""
    started = time.perf_counter()
    for _ in client.chat(name, MESSAGES, max_tokens=8, temperature=0):
        return time.perf_counter() - started
    return time.perf_counter() - started


def wait_status(client: KzClient, name: str, status: str) -> None:
    """Poll until the deployment reaches status."""
    while client.deployment(name)["status"] != status:
        time.sleep(0.1)


def bare_first_token_seconds(workdir: Path) -> float:
    """Seconds to start the bare engine by hand and get the first token of a chat from it."""
    with BareEngine(plan_for("smollm2", context_length=None), "bare", workdir) as engine:
        (stream,), _ = run_batch(engine.endpoint + "/v1/chat/completions", "bare", 1, 8)
        return engine.ready_s + stream.ttft_s


def run(quick: bool) -> SuiteResult:
    """Alternate: let it unload, time the reloading request; time a warm request; start the
    bare engine and time its first token."""
    client = KzClient()
    client.deploy("smollm2", name="idle", keep_alive=KEEP_ALIVE)
    assert client.wait("idle")["status"] == "DEPLOYED"
    cold, warm, bare = [], [], []
    with tempfile.TemporaryDirectory() as work:
        for _ in range(2 if quick else 5):
            wait_status(client, "idle", "UNLOADED")
            settle()
            cold.append(first_token_seconds(client, "idle"))
            warm.append(first_token_seconds(client, "idle"))
            settle()
            bare.append(bare_first_token_seconds(Path(work)))
    client.stop("idle")
    rows = timing_rows(
        "first token",
        {"after an idle unload": cold, "while loaded": warm, "bare engine started by hand": bare},
    )
    ratio = statistics.median(cold) / statistics.median(bare)
    return SuiteResult(
        suite="idle",
        title="Idle unload: first token after the engine was unloaded vs while loaded",
        rows=rows,
        notes=[
            f"keep-alive {KEEP_ALIVE} s; the embedded app. After an unload / bare engine "
            f"(started, then asked): {ratio:.2f}",
        ],
        goals=[Goal("reload <= 1.25 x the bare engine", ratio, ratio <= 1.25)],
        charts=[p50_chart("first token", rows, "first token")],
        details={"over_bare": ratio},
    )
