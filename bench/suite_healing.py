"""Healing benchmark: time from an engine's death (kill -9) to DEPLOYED again.

Runs against the embedded app with the default healing policy (first restart after 1 s), so the
figure is what a user sees: detection by the monitor + backoff + engine start + readiness.
"""

from __future__ import annotations

import os
import signal
import statistics
import tempfile
import time
from pathlib import Path

from bench.harness import BareEngine, plan_for, settle
from bench.report import Goal, SuiteResult, p50_chart, timing_rows
from kz_jupyter.client import KzClient
from kz_jupyter.server_ext.lifecycle.healing import HealingPolicy

POLL = 0.05


def wait_until(client: KzClient, name: str, done) -> tuple[dict, float]:
    """Poll a deployment until done(record); return it and when it happened."""
    while True:
        record = client.deployment(name)
        if done(record):
            return record, time.perf_counter()
        time.sleep(POLL)


def run(quick: bool) -> SuiteResult:
    """Kill the engine repeatedly and time each recovery; start the bare engine in between."""
    client = KzClient()
    client.deploy("smollm2", name="heal")
    record = client.wait("heal")
    assert record["status"] == "DEPLOYED", record
    detect, recover, bare = [], [], []
    plan = plan_for("smollm2", context_length=None)
    with tempfile.TemporaryDirectory() as work:
        for _ in range(2 if quick else 5):
            settle()
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
            settle()
            with BareEngine(plan, "bare", Path(work)) as engine:
                bare.append(engine.ready_s)
    client.stop("heal")
    column = "from engine death to"
    backoff = HealingPolicy().backoff
    restart = [r - d - backoff for r, d in zip(recover, detect, strict=True)]
    rows = timing_rows(
        column,
        {
            "ERROR": detect,
            "DEPLOYED again": recover,
            "(restart: DEPLOYED again - ERROR - backoff)": restart,
            "(bare engine start to ready)": bare,
        },
    )
    ratio = statistics.median(restart) / statistics.median(bare)
    return SuiteResult(
        suite="healing",
        title="Healing: engine killed (SIGKILL) to ERROR and to DEPLOYED again",
        rows=rows,
        notes=[
            f"includes the {backoff:g} s first restart backoff; the embedded app, default "
            "policy (the monitor looks every second). The restart itself (DEPLOYED again less "
            f"the time to ERROR and the backoff) / bare engine start: {ratio:.2f}",
        ],
        goals=[Goal("restart <= 1.25 x the bare engine", ratio, ratio <= 1.25)],
        charts=[p50_chart("engine death to", rows, column)],
        details={"over_bare": ratio},
    )
