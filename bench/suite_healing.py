"""Healing benchmark: time from an engine's death (kill -9) to DEPLOYED again.

Runs against the embedded app with the default healing policy (first restart after 1 s), so the
figure is what a user sees: detection by the monitor + backoff + engine start + readiness.
"""

from __future__ import annotations

import os
import signal
import time

from bench.report import SuiteResult, p50_chart, timing_rows
from kz_jupyter.client import KzClient

POLL = 0.05


def wait_until(client: KzClient, name: str, done) -> tuple[dict, float]:
    """Poll a deployment until done(record); return it and when it happened."""
    while True:
        record = client.deployment(name)
        if done(record):
            return record, time.perf_counter()
        time.sleep(POLL)


def run(quick: bool) -> SuiteResult:
    """Kill the engine repeatedly and time each recovery."""
    client = KzClient()
    client.deploy("smollm2", name="heal")
    record = client.wait("heal")
    assert record["status"] == "DEPLOYED", record
    detect, recover = [], []
    for _ in range(2 if quick else 5):
        restarts = record["replicas"][0]["restarts"]
        killed = time.perf_counter()
        os.kill(record["replicas"][0]["pid"], signal.SIGKILL)
        _, noticed = wait_until(client, "heal", lambda r: r["status"] == "ERROR")
        record, healed = wait_until(
            client,
            "heal",
            lambda r, before=restarts: (
                r["status"] == "DEPLOYED" and r["replicas"][0]["restarts"] > before
            ),
        )
        detect.append(noticed - killed)
        recover.append(healed - killed)
    client.stop("heal")
    column = "from engine death to"
    rows = timing_rows(column, {"ERROR": detect, "DEPLOYED again": recover})
    return SuiteResult(
        suite="healing",
        title="Healing: engine killed (SIGKILL) to ERROR and to DEPLOYED again",
        rows=rows,
        notes=["includes the 1 s first restart backoff; the embedded app, default policy"],
        charts=[p50_chart("engine death to", rows, column)],
    )
