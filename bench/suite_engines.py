"""Engines side by side on one model, SmolLM2-135M-Instruct, each deployed through kz-jupyter:
llama.cpp serves the pip-shipped Q4_1 GGUF, vLLM (CPU) and MLX (CPU) the same weights as float32
safetensors (kz_jupyter.models.gguf_convert). For each engine: deploy -> DEPLOYED, streamed tokens/s
and time to first token on the engine's own endpoint and through /kz/v1 (alternating), and the
peak RSS of the engine's process tree. An engine not installed here is left out, and said."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench.harness import JupyterServer, Stream, run_batch, tree_peak_rss
from bench.report import Chart, SuiteResult
from kz_jupyter.client import KzClient
from kz_jupyter.models.gguf_convert import as_safetensors

ENGINES = ("llamacpp", "mlx", "vllm")


def bench_engine(server: JupyterServer, engine: str, model: str, rounds: int, tokens: int) -> dict:
    """Deploy model on engine, measure it, stop it."""
    client: KzClient = server.client(timeout=120)
    name = f"bench-{engine}"
    started = time.perf_counter()
    client.deploy(model, name=name, engine=engine, context_length=2048)
    record = client.wait(name, timeout=900)
    ready = time.perf_counter() - started
    assert record["status"] == "DEPLOYED", record
    replica = record["replicas"][0]
    engine_url = replica["endpoint"] + "/v1/chat/completions"
    run_batch(engine_url, name, 1, 4)
    samples: dict[str, list[Stream]] = {"engine": [], "proxy": []}
    for number in range(rounds):
        for path in ("engine", "proxy") if number % 2 == 0 else ("proxy", "engine"):
            url, headers = (
                (engine_url, None) if path == "engine" else (server.chat_url, server.headers)
            )
            samples[path].append(run_batch(url, name, 1, tokens, headers)[0][0])
    peak = tree_peak_rss(replica["pid"])
    client.stop(name)

    def rate(streams: list[Stream]) -> float:
        return statistics.median((s.tokens - 1) / (s.seconds - s.ttft_s) for s in streams)

    return {
        "engine": engine,
        "version": record["plan"]["engine_version"],
        "format": record["plan"]["format"],
        "ready s": ready,
        "peak RSS MiB": peak / 2**20,
        "engine tok/s": rate(samples["engine"]),
        "proxy tok/s": rate(samples["proxy"]),
        "ratio": rate(samples["proxy"]) / rate(samples["engine"]),
        "TTFT ms": 1000 * statistics.median(s.ttft_s for s in samples["engine"]),
    }


def run(quick: bool) -> SuiteResult:
    """Every engine installed here, in turn, in one server."""
    rounds, tokens = (1, 16) if quick else (4, 64)
    rows, notes = [], []
    with tempfile.TemporaryDirectory() as work, JupyterServer(Path(work)) as server:
        client = server.client()
        usable = {e["name"]: e for e in client.engines()}
        client.deploy("smollm2", name="warm-up")  # start Ray before timing anything
        client.wait("warm-up")
        client.stop("warm-up")
        for engine in ENGINES:
            if not usable.get(engine, {}).get("available"):
                notes.append(f"{engine} left out: {usable.get(engine, {}).get('reason')}")
                continue
            model = "smollm2" if engine == "llamacpp" else str(as_safetensors("smollm2"))
            rows.append(bench_engine(server, engine, model, rounds, tokens))
    names = [r["engine"] for r in rows]
    notes.insert(
        0,
        f"{tokens} tokens per chat, {rounds} chats per path; tokens/s after the "
        "first token, one stream at a time; RSS: summed VmHWM of the engine's processes.",
    )
    return SuiteResult(
        suite="engines",
        title="Engines on SmolLM2-135M-Instruct (CPU)",
        rows=rows,
        notes=notes,
        charts=[
            Chart.from_rows("deploy -> DEPLOYED", "seconds", names, rows, {"ready": "ready s"}),
            Chart.from_rows(
                "tokens/s",
                "tokens/s",
                names,
                rows,
                {"engine": "engine tok/s", "/kz/v1": "proxy tok/s"},
            ),
            Chart.from_rows("peak RSS", "MiB", names, rows, {"RSS": "peak RSS MiB"}),
        ],
    )
