"""Deploy latency: `deploy` -> DEPLOYED for a cached model (SmolLM2 on llama.cpp): the first
deploy of a server just started and of one up for a few seconds, and deploys with Ray up
(warm), against starting the bare engine server by hand with the same command line and polling
it until it answers. Warm deploys and bare starts alternate within one server's life."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import BareEngine, JupyterServer, plan_for, settle
from bench.report import Goal, SuiteResult, p50_chart, timing_rows

MODEL = "smollm2"
UP_FIRST = 10.0  # seconds a server has been up before its first deploy, in the second case
FIRST_AT_ONCE = "first deploy, server just started"
FIRST_AFTER_UP = f"first deploy, server up {UP_FIRST:g} s"
WARM = "deploy, Ray warm"
BARE = "bare engine by hand"
PATHS = (FIRST_AT_ONCE, FIRST_AFTER_UP, WARM, BARE)


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
    """First deploys of fresh servers (at once, and after UP_FIRST s), then warm deploys and
    bare starts alternating, each after the machine settled."""
    servers, rounds = (1, 2) if quick else (3, 8)
    samples: dict[str, list[float]] = {path: [] for path in PATHS}
    phases: dict[str, list[dict]] = {path: [] for path in PATHS[:3]}
    plan = plan_for(MODEL, context_length=None)  # the plan a plain deploy gets
    with tempfile.TemporaryDirectory() as work:
        for number in range(servers):
            for path, wait in ((FIRST_AT_ONCE, 0.0), (FIRST_AFTER_UP, UP_FIRST)):
                folder = Path(work) / f"server-{number}-{wait:g}"
                folder.mkdir()
                settle()
                with JupyterServer(folder) as server:
                    time.sleep(wait)
                    seconds, steps = timed_deploy(server, f"first-{number}")
                    samples[path].append(seconds)
                    phases[path].append(steps)
                    if wait == 0.0:
                        continue
                    for turn in range(rounds // servers + (number < rounds % servers)):
                        for kind in (WARM, BARE) if turn % 2 == 0 else (BARE, WARM):
                            settle()
                            if kind == WARM:
                                seconds, steps = timed_deploy(server, f"warm-{number}-{turn}")
                                samples[WARM].append(seconds)
                                phases[WARM].append(steps)
                            else:
                                with BareEngine(plan, "bare", folder / "bare") as engine:
                                    samples[BARE].append(engine.ready_s)
    rows = timing_rows("path", samples)
    for row in rows[:3]:
        for phase in PHASES:
            row[f"{phase} s"] = statistics.median(p[phase] for p in phases[row["path"]])
    bare = statistics.median(samples[BARE])
    ratios = {path: statistics.median(samples[path]) / bare for path in PATHS[:3]}
    floor = import_seconds("ray")
    return SuiteResult(
        suite="deploy",
        title="Deploy latency: deploy -> DEPLOYED vs the bare engine to ready (SmolLM2, llama.cpp)",
        rows=rows,
        notes=[
            "p50 / bare engine: "
            + "; ".join(f"{path} {ratio:.2f}" for path, ratio in ratios.items()),
            "the server starts Ray and a warm spare replica actor in the background as it "
            f"starts (c.KzApp.prestart_ray); a first deploy at once waits for what is left of "
            f"that, one {UP_FIRST:g} s later less or nothing. Each timed run starts once the "
            "machine's CPUs are idle again (a new spare is started after each deploy).",
            "phases (p50) from the deployment's history: plan = resolve the model and choose "
            "the engine; place + start engine = Ray reserves the replica's resources (a "
            "placement group) and a replica actor (the warm spare) starts the engine; engine "
            "load to ready = until the readiness probe answers.",
            f"a fresh Python imports ray in {floor:.2f} s: what a replica actor started on "
            "demand pays, and the spare ahead of time (jsonschema < 4.24 keeps rfc3987-syntax "
            "out, whose Lark grammars took 1.2-3 s more).",
        ],
        goals=[
            Goal("deploy (Ray warm) <= 1.25 x the bare engine", ratios[WARM], ratios[WARM] <= 1.25),
            Goal(
                f"first deploy, server up {UP_FIRST:g} s, <= 1.5 x the bare engine",
                ratios[FIRST_AFTER_UP],
                ratios[FIRST_AFTER_UP] <= 1.5,
            ),
            Goal(
                "first deploy, server just started, <= 3 x the bare engine",
                ratios[FIRST_AT_ONCE],
                ratios[FIRST_AT_ONCE] <= 3,
            ),
        ],
        charts=[p50_chart("to ready (p50)", rows, "path")],
        details={"samples_s": samples, "over_bare": ratios, "phases": phases},
    )
