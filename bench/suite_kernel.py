"""Kernel side: the time `%load_ext kz_jupyter` takes and what it imports.

Each round is a fresh Python process with an IPython shell already up (as in a kernel); it
times `%load_ext kz_jupyter` alone and lists the modules the extension added, flagging the
heavy ones (httpx, ipywidgets, openai, ray, numpy, torch...), which must load lazily: only when
a command needs them. Goal: under 0.3 s.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

from bench.report import Chart, Goal, SuiteResult
from tests.magics.test_kernel_footprint import HEAVY, PROBE


def one_round() -> dict:
    """Load the extension in a fresh process; its time and the modules it added."""
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def run(quick: bool) -> SuiteResult:
    """Load the extension in fresh processes; times and the heavy modules it pulled in."""
    rounds = [one_round() for _ in range(3 if quick else 15)]
    times = [r["seconds"] * 1000 for r in rounds]
    added = rounds[-1]["added"]
    heavy = sorted({m.split(".")[0] for m in added if m.split(".")[0] in HEAVY})
    median = statistics.median(times)
    return SuiteResult(
        suite="kernel",
        title="Kernel: %load_ext kz_jupyter in a fresh IPython",
        rows=[
            {
                "rounds": len(rounds),
                "median ms": median,
                "max ms": max(times),
                "modules added": len(added),
                "heavy modules loaded": ", ".join(heavy) or "none",
            }
        ],
        notes=[f"heavy modules watched: {', '.join(sorted(HEAVY))}"],
        goals=[
            Goal("%load_ext under 300 ms", median, median < 300),
            Goal("no heavy module at load", len(heavy), not heavy),
        ],
        charts=[
            Chart(
                "%load_ext per fresh process",
                "ms",
                [str(n + 1) for n in range(len(times))],
                {"load time": times},
            )
        ],
        details={"modules_added": added},
    )
