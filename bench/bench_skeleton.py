"""Walking-skeleton benchmark: proxy overhead and time to DEPLOYED.

Measures, in one run against a `jupyter server` process with the extension (the JupyterLab
hosting mode; `--embedded` uses the in-process app instead, which shares this process's CPU):
- time from deploy request to DEPLOYED, cold (Ray not started yet) and warm (Ray up);
- streamed chat tokens/s and time to first token through /kz/v1 versus the same engine's own
  endpoint, interleaved round by round so both see the same machine conditions.

Usage: python bench/bench_skeleton.py [--rounds N] [--max-tokens N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import openai

from kz_jupyter.client import KzClient
from kz_jupyter.connection import ServerConnection
from kz_jupyter.engines.process import free_port

PROMPT = [{"role": "user", "content": "Write a long story about a dragon who learns to cook."}]


def timed_deploy(client: KzClient, name: str) -> float:
    """Deploy smollm2 under name; return seconds from request to DEPLOYED."""
    started = time.perf_counter()
    client.deploy("smollm2", name=name)
    record = client.wait(name)
    assert record["status"] == "DEPLOYED", record
    return time.perf_counter() - started


def stream_once(client: openai.OpenAI, model: str, max_tokens: int) -> tuple[float, float, int]:
    """Stream one chat; return (time to first token, tokens/s after the first, chunks)."""
    started = time.perf_counter()
    first = last = None
    chunks = 0
    stream = client.chat.completions.create(
        model=model, messages=PROMPT, max_tokens=max_tokens, temperature=0, stream=True
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            last = time.perf_counter()
            first = first or last
            chunks += 1
    ttft = first - started
    rate = (chunks - 1) / (last - first) if chunks > 1 and last > first else 0.0
    return ttft, rate, chunks


def start_jupyter_server(workdir: str) -> tuple[ServerConnection, subprocess.Popen]:
    """Start `jupyter server` on loopback (the kz extension is enabled by install)."""
    port, token = free_port("127.0.0.1"), secrets.token_hex(16)
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={workdir}"],
        env={**os.environ, "KZ_STATE_DIR": os.path.join(workdir, "state")},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    connection = ServerConnection(f"http://127.0.0.1:{port}/", token, "bench server")
    while True:
        try:
            if httpx.get(connection.url("api/status"), params={"token": token}).is_success:
                return connection, process
        except httpx.HTTPError:
            time.sleep(0.2)


def summarize(samples: list[tuple[float, float, int]]) -> dict:
    """Median time to first token and tokens/s of a list of samples."""
    return {
        "ttft_ms_p50": 1000 * statistics.median(s[0] for s in samples),
        "tokens_per_s_p50": statistics.median(s[1] for s in samples),
        "chunks_p50": statistics.median(s[2] for s in samples),
    }


def main() -> None:
    """Run the benchmark and print a table (and JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--json", type=Path, default=Path("bench/results/skeleton.json"))
    parser.add_argument("--embedded", action="store_true", help="use the in-process app")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="kz-bench-")
    server = None
    if args.embedded:
        client = KzClient()
    else:
        connection, server = start_jupyter_server(workdir)
        client = KzClient(connection)
    cold = timed_deploy(client, "bench-cold")
    client.stop("bench-cold")
    warm = timed_deploy(client, "bench")
    endpoint = client.deployment("bench")["replicas"][0]["endpoint"]

    direct = openai.OpenAI(base_url=f"{endpoint}/v1", api_key="none")
    proxied = client.openai()
    stream_once(direct, "bench", 8)  # warm both paths
    stream_once(proxied, "bench", 8)
    results: dict[str, list] = {"engine": [], "proxy": []}
    for round_number in range(args.rounds):
        order = ["engine", "proxy"] if round_number % 2 == 0 else ["proxy", "engine"]
        for path in order:
            target = direct if path == "engine" else proxied
            results[path].append(stream_once(target, "bench", args.max_tokens))
    client.stop("bench")
    if server is not None:
        server.terminate()
        server.wait(timeout=60)

    engine, proxy = summarize(results["engine"]), summarize(results["proxy"])
    report = {
        "deploy_to_deployed_s": {"cold_ray_not_started": cold, "warm_ray_running": warm},
        "engine_direct": engine,
        "through_kz_v1": proxy,
        "tokens_per_s_ratio_proxy_over_engine": proxy["tokens_per_s_p50"]
        / engine["tokens_per_s_p50"],
        "rounds": args.rounds,
        "max_tokens": args.max_tokens,
        "server": "embedded" if args.embedded else "jupyter server process",
    }
    print(f"deploy -> DEPLOYED   cold (starts Ray): {cold:6.2f} s   warm (Ray up): {warm:6.2f} s")
    print(f"{'path':<16}{'TTFT p50 ms':>12}{'tokens/s p50':>14}")
    for label, row in (("engine direct", engine), ("through /kz/v1", proxy)):
        print(f"{label:<16}{row['ttft_ms_p50']:>12.1f}{row['tokens_per_s_p50']:>14.1f}")
    ratio = report["tokens_per_s_ratio_proxy_over_engine"]
    print(f"tokens/s ratio proxy/engine: {ratio:.3f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
