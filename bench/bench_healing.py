"""Healing benchmark: time from an engine's death (kill -9) to DEPLOYED again.

Runs against the embedded app with the default healing policy (first restart after 1 s), so the
figure is what a user sees: detection by the monitor + backoff + engine start + readiness.

Usage: python bench/bench_healing.py [--rounds N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import time
from pathlib import Path

from kz_jupyter.client import KzClient

POLL = 0.05


def wait_until(client: KzClient, name: str, done) -> tuple[dict, float]:
    """Poll a deployment until done(record); return it and when it happened."""
    while True:
        record = client.deployment(name)
        if done(record):
            return record, time.perf_counter()
        time.sleep(POLL)


def main() -> None:
    """Kill the engine repeatedly and time each recovery."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=Path("bench/results/healing.json"))
    args = parser.parse_args()

    client = KzClient()
    client.deploy("smollm2", name="heal")
    record = client.wait("heal")
    assert record["status"] == "DEPLOYED", record
    detect, recover = [], []
    for _ in range(args.rounds):
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

    report = {
        "death_to_error_s_p50": statistics.median(detect),
        "death_to_deployed_s_p50": statistics.median(recover),
        "death_to_deployed_s_max": max(recover),
        "first_restart_backoff_s": 1.0,
        "rounds": args.rounds,
    }
    print(f"engine death -> ERROR     p50 {report['death_to_error_s_p50']:.2f} s")
    print(
        f"engine death -> DEPLOYED  p50 {report['death_to_deployed_s_p50']:.2f} s, "
        f"max {report['death_to_deployed_s_max']:.2f} s (includes the 1 s first backoff)"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
