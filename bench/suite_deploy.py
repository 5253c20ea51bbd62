"""Deploy latency: `deploy` -> DEPLOYED for a cached model (SmolLM2 on llama.cpp), with Ray not
yet started (the first deploy of a fresh server: cold) and with Ray up (warm), against starting
the bare engine server by hand with the same command line and polling it until it answers.
Warm deploys and bare starts alternate within one server's life."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import BareEngine, JupyterServer, plan_for
from bench.report import Goal, SuiteResult, p50_chart, timing_rows

MODEL = "smollm2"


PHASES = ("plan", "place + start engine", "engine load to ready")


def timed_deploy(server: JupyterServer, name: str) -> tuple[float, dict[str, float]]:
    """Seconds from the deploy request to DEPLOYED, and the phases the deployment's history
    shows (REQUESTED -> DEPLOYING -> INITIALIZING -> DEPLOYED); stopped afterwards."""
    client = server.client()
    started = time.perf_counter()
    client.deploy(MODEL, name=name)
    record = client.wait(name)
    seconds = time.perf_counter() - started
    assert record["status"] == "DEPLOYED", record
    client.stop(name)
    at = {h["status"]: h["at"] for h in record["history"]}
    marks = [at["REQUESTED"], at["DEPLOYING"], at["INITIALIZING"], at["DEPLOYED"]]
    return seconds, {phase: b - a for phase, a, b in zip(PHASES, marks, marks[1:], strict=False)}


def import_seconds(module: str, rounds: int = 3) -> float:
    """Median seconds a fresh Python takes to import module: a floor under each new Ray worker
    (every replica actor is one), which imports ray before anything else."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    times = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout)
        for _ in range(rounds)
    ]  # fmt: skip
    return statistics.median(times)


def run(quick: bool) -> SuiteResult:
    """Cold (one per fresh server), then warm and bare alternating."""
    servers, rounds = (1, 2) if quick else (3, 8)
    cold, warm, bare = [], [], []
    phases: dict[str, list[dict]] = {"cold": [], "warm": []}
    plan = plan_for(MODEL)
    with tempfile.TemporaryDirectory() as work:
        for number in range(servers):
            folder = Path(work) / f"server-{number}"
            folder.mkdir()
            with JupyterServer(folder) as server:
                seconds, steps = timed_deploy(server, f"cold-{number}")
                cold.append(seconds)
                phases["cold"].append(steps)
                for turn in range(rounds // servers + (number < rounds % servers)):
                    for path in ("warm", "bare") if turn % 2 == 0 else ("bare", "warm"):
                        if path == "warm":
                            seconds, steps = timed_deploy(server, f"warm-{number}-{turn}")
                            warm.append(seconds)
                            phases["warm"].append(steps)
                        else:
                            with BareEngine(plan, "bare", folder / "bare") as engine:
                                bare.append(engine.ready_s)
    samples = {"deploy, Ray cold": cold, "deploy, Ray warm": warm, "bare engine by hand": bare}
    rows = timing_rows("path", samples)
    for row, kind in zip(rows, ("cold", "warm"), strict=False):
        for phase in PHASES:
            row[f"{phase} s"] = statistics.median(p[phase] for p in phases[kind])
    ratio = statistics.median(warm) / statistics.median(bare)
    floor = {module: import_seconds(module) for module in ("ray", "jsonschema")}
    return SuiteResult(
        suite="deploy",
        title="Deploy latency: deploy -> DEPLOYED vs the bare engine to ready (SmolLM2, llama.cpp)",
        rows=rows,
        notes=[
            f"warm / bare (p50): {ratio:.2f}; cold / bare: "
            f"{statistics.median(cold) / statistics.median(bare):.2f}. Cold includes starting "
            "Ray's head node in the server's first deploy.",
            "phases (p50) from the deployment's history: plan = resolve the model and choose "
            "the engine; place + start engine = Ray places the replica actor (a new worker "
            "process) and it starts the engine; engine load to ready = until the readiness "
            "probe answers.",
            f"a fresh Python imports ray in {floor['ray']:.2f} s, jsonschema alone in "
            f"{floor['jsonschema']:.2f} s (with rfc3987-syntax installed and rfc3987 not, it "
            "compiles Lark grammars at import): each new Ray worker, so each replica actor, "
            "pays it.",
        ],
        goals=[Goal("deploy (Ray warm) <= 1.25 x the bare engine", ratio, ratio <= 1.25)],
        charts=[p50_chart("to ready (p50)", rows, "path")],
        details={
            "cold_s": cold,
            "warm_s": warm,
            "bare_s": bare,
            "warm_over_bare": ratio,
            "phases": phases,
        },
    )
