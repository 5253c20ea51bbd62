"""Kernel side: the time `%load_ext kz_jupyter` takes and what it imports.

Each round is a fresh Python process with an IPython shell already up (as in a kernel); it
times `%load_ext kz_jupyter` alone and lists the modules the extension added, flagging the
heavy ones (httpx, ipywidgets, openai, ray, numpy, torch...), which must load lazily: only when
a command needs them. Goal: under 0.3 s.

Usage: python bench/bench_kernel.py [--rounds N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from test_kernel_footprint import HEAVY, PROBE  # noqa: E402


def one_round() -> dict:
    """Load the extension in a fresh process; its time and the modules it added."""
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main() -> None:
    """Run the rounds, print the figures, write JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", type=Path, default=Path("bench/results/kernel.json"))
    args = parser.parse_args()
    rounds = [one_round() for _ in range(args.rounds)]
    times = sorted(r["seconds"] for r in rounds)
    added = rounds[-1]["added"]
    heavy = sorted({m.split(".")[0] for m in added if m.split(".")[0] in HEAVY})
    result = {
        "rounds": args.rounds,
        "load_ext_median_s": round(statistics.median(times), 4),
        "load_ext_max_s": round(times[-1], 4),
        "modules_added": len(added),
        "heavy_modules_loaded": heavy,
        "goal_s": 0.3,
    }
    print(
        f"%load_ext kz_jupyter: median {result['load_ext_median_s'] * 1000:.1f} ms, max "
        f"{result['load_ext_max_s'] * 1000:.1f} ms over {args.rounds} fresh processes (goal "
        f"< 300 ms); {len(added)} modules added; heavy modules loaded: {', '.join(heavy) or 'none'}"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
