"""Idle reload benchmark: how long the first request to an idle-unloaded deployment takes
(load the engine again + answer), against the same request to the loaded deployment.

Runs against the embedded app.
"""

from __future__ import annotations

import time

from bench.report import SuiteResult, p50_chart, timing_rows
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


def run(quick: bool) -> SuiteResult:
    """Alternate: let it unload, time the reloading request; time a warm request."""
    client = KzClient()
    client.deploy("smollm2", name="idle", keep_alive=KEEP_ALIVE)
    assert client.wait("idle")["status"] == "DEPLOYED"
    cold, warm = [], []
    for _ in range(2 if quick else 5):
        wait_status(client, "idle", "UNLOADED")
        cold.append(first_token_seconds(client, "idle"))
        warm.append(first_token_seconds(client, "idle"))
    client.stop("idle")
    rows = timing_rows("first token", {"after an idle unload": cold, "while loaded": warm})
    return SuiteResult(
        suite="idle",
        title="Idle unload: first token after the engine was unloaded vs while loaded",
        rows=rows,
        notes=[f"keep-alive {KEEP_ALIVE} s; the embedded app"],
        charts=[p50_chart("first token", rows, "first token")],
    )
