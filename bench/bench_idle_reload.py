"""Idle reload benchmark: how long the first request to an idle-unloaded deployment takes
(load the engine again + answer), against the same request to the loaded deployment.

Runs against the embedded app. Usage: python bench/bench_idle_reload.py [--rounds N] [--json P]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

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


def main() -> None:
    """Alternate: let it unload, time the reloading request; time a warm request."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=Path("bench/results/idle_reload.json"))
    args = parser.parse_args()
    client = KzClient()
    client.deploy("smollm2", name="idle", keep_alive=KEEP_ALIVE)
    assert client.wait("idle")["status"] == "DEPLOYED"
    cold, warm = [], []
    for _ in range(args.rounds):
        wait_status(client, "idle", "UNLOADED")
        cold.append(first_token_seconds(client, "idle"))
        warm.append(first_token_seconds(client, "idle"))
    client.stop("idle")
    report = {
        "reload_first_token_s_p50": statistics.median(cold),
        "reload_first_token_s_max": max(cold),
        "loaded_first_token_s_p50": statistics.median(warm),
        "rounds": args.rounds,
    }
    print(
        f"first token after idle unload  p50 {report['reload_first_token_s_p50']:.2f} s, "
        f"max {report['reload_first_token_s_max']:.2f} s"
    )
    print(f"first token while loaded       p50 {report['loaded_first_token_s_p50']:.3f} s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
