"""Engines side by side on one small model: time to ready, tokens/s, peak RSS.

SmolLM2-135M-Instruct on each engine, through a `jupyter server` process with the extension:
llama.cpp serves the pip-shipped Q4_1 GGUF, vLLM (CPU) and MLX (CPU) the same weights as
float32 safetensors (made from that GGUF by the tests' converter). For each engine:
- time from deploy request to DEPLOYED (engine start, model load, readiness probe);
- streamed chat tokens/s and time to first token, on the engine's own endpoint and through
  /kz/v1, interleaved round by round (ratio proxy/engine);
- peak RSS of the engine's process tree (every process it started), sampled every 0.1 s.

Usage: python bench/bench_engines.py [--engines llamacpp vllm mlx] [--rounds N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path

import openai
import psutil
from bench_skeleton import start_jupyter_server, stream_once, summarize

from kz_jupyter.client import KzClient
from kz_jupyter.gguf_convert import as_safetensors

ROOT = Path(__file__).resolve().parent.parent


class TreeRssSampler:
    """Samples the summed RSS of a process and its descendants; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.1):
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            try:
                for process in [self.root, *self.root.children(recursive=True)]:
                    try:
                        total += process.memory_info().rss
                    except psutil.NoSuchProcess:
                        continue
            except psutil.NoSuchProcess:
                return
            self.peak = max(self.peak, total)
            time.sleep(self.interval)

    def stop(self) -> int:
        """Stop sampling; return the peak in bytes."""
        self._stop.set()
        self._thread.join()
        return self.peak


def bench_engine(client: KzClient, engine: str, model: str, rounds: int, tokens: int) -> dict:
    """Deploy model on engine, measure it, stop it."""
    started = time.perf_counter()
    client.deploy(model, name=f"bench-{engine}", engine=engine, context_length=2048)
    record = client.wait(f"bench-{engine}", timeout=600)
    ready = time.perf_counter() - started
    assert record["status"] == "DEPLOYED", record
    replica = record["replicas"][0]
    sampler = TreeRssSampler(replica["pid"])
    name = record["name"]
    direct = openai.OpenAI(base_url=f"{replica['endpoint']}/v1", api_key="none")
    proxied = client.openai()
    stream_once(direct, name, 8)
    stream_once(proxied, name, 8)
    samples: dict[str, list] = {"engine": [], "proxy": []}
    for number in range(rounds):
        for path in ("engine", "proxy") if number % 2 == 0 else ("proxy", "engine"):
            target = direct if path == "engine" else proxied
            samples[path].append(stream_once(target, name, tokens))
    peak = sampler.stop()
    client.stop(name)
    bare, proxy = summarize(samples["engine"]), summarize(samples["proxy"])
    return {
        "engine": engine,
        "version": record["plan"]["engine_version"],
        "model": model,
        "format": record["plan"]["format"],
        "deploy_to_deployed_s": ready,
        "peak_rss_bytes": peak,
        "engine_direct": bare,
        "through_kz_v1": proxy,
        "tokens_per_s_ratio_proxy_over_engine": proxy["tokens_per_s_p50"]
        / bare["tokens_per_s_p50"],
    }


def main() -> None:
    """Run every engine in turn and print one row each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", nargs="+", default=["llamacpp", "vllm", "mlx"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--json", type=Path, default=Path("bench/results/engines.json"))
    args = parser.parse_args()

    models = {"llamacpp": "smollm2", "vllm": None, "mlx": None}
    if (ROOT / ".engines").is_dir():  # the environments `make setup` creates
        os.environ.setdefault("KZ_ENGINE_ENVS_DIR", str(ROOT / ".engines"))
    workdir = tempfile.mkdtemp(prefix="kz-bench-engines-")
    connection, server = start_jupyter_server(workdir)
    client = KzClient(connection, timeout=120)
    client.deploy("smollm2", name="warm-up")  # start Ray before timing anything
    client.wait("warm-up")
    client.stop("warm-up")
    rows = []
    try:
        for engine in args.engines:
            model = models.get(engine) or str(as_safetensors("smollm2"))
            rows.append(bench_engine(client, engine, model, args.rounds, args.max_tokens))
    finally:
        server.terminate()
        server.wait(timeout=60)

    print(
        f"{'engine':<10}{'version':<10}{'format':<13}{'ready s':>8}{'peak RSS MiB':>14}"
        f"{'tok/s engine':>14}{'tok/s /kz/v1':>14}{'ratio':>7}{'TTFT ms':>9}"
    )
    for row in rows:
        print(
            f"{row['engine']:<10}{row['version']:<10}{row['format']:<13}"
            f"{row['deploy_to_deployed_s']:>8.1f}{row['peak_rss_bytes'] / 2**20:>14.0f}"
            f"{row['engine_direct']['tokens_per_s_p50']:>14.1f}"
            f"{row['through_kz_v1']['tokens_per_s_p50']:>14.1f}"
            f"{row['tokens_per_s_ratio_proxy_over_engine']:>7.3f}"
            f"{row['engine_direct']['ttft_ms_p50']:>9.0f}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"rounds": args.rounds, "results": rows}, indent=2))


if __name__ == "__main__":
    main()
