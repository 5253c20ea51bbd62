"""Run the benchmark suites: `python -m bench [--quick] [--out DIR] [SUITE ...]`.

Each suite prints a table (with its goals) and writes SUITE.json and SUITE.png into the output
folder; report.md gathers every table. `--quick` is the smoke test CI runs (a few minutes, no
thresholds); the full run gives the figures the README quotes.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench.harness import PROFILE_VARIABLE
from bench.profiles import summary
from bench.report import SuiteResult, show, write_json, write_markdown, write_plot

ROOT = Path(__file__).resolve().parent.parent
SUITES = {
    "proxy": "Proxy overhead at concurrency 1, 8, 64",
    "concurrency": "1-32 users on llama-server vs llama-cpp-python's server",
    "deploy": "Deploy latency, first and warm deploys, vs the bare engine",
    "engines": "llama.cpp, MLX and vLLM on one model",
    "memory": "Memory estimate vs measured peak RSS",
    "rag": "RAG indexing, query latency, recall; vs encode alone and LangChain FAISS",
    "kernel": "%load_ext time and import footprint",
    "healing": "Engine death to DEPLOYED again (not in the default run)",
    "idle": "First token after an idle unload (not in the default run)",
    "load": "64-200 users streaming for a fixed time, below and past the limit (not default)",
    "metrics": "Tokens/s and server CPU per chunk with metrics on vs off (not default)",
    "batch": "Batch rows/s vs a plain asyncio client, and one at a time (not default)",
    "retrieval": "Passage recall and MRR before and after, stdlib docstrings (not default)",
}
DEFAULT = ["proxy", "concurrency", "deploy", "engines", "memory", "rag", "kernel"]


def main(argv: list[str] | None = None) -> int:
    """Run the chosen suites; return 0, or 1 when a suite failed to run."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__.splitlines()[0],
        epilog="suites: " + "; ".join(f"{name}: {text}" for name, text in SUITES.items()),
    )
    parser.add_argument("suites", nargs="*", metavar="SUITE", help=f"default: {' '.join(DEFAULT)}")
    parser.add_argument("--quick", action="store_true", help="the smoke-test sizes")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the jupyter server with py-spy; write SUITE-profile.txt (where time went)",
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.suites if name not in SUITES]
    if unknown:
        parser.error(f"unknown suite {', '.join(unknown)}: choose from {', '.join(SUITES)}")
    if (ROOT / ".engines").is_dir():  # the engine environments `make setup` creates
        os.environ.setdefault("KZ_ENGINE_ENVS_DIR", str(ROOT / ".engines"))
    args.out.mkdir(parents=True, exist_ok=True)
    results: list[SuiteResult] = []
    failed = []
    for name in args.suites or DEFAULT:
        started = time.perf_counter()
        print(f"-- {name}: {SUITES[name]}{' (quick)' if args.quick else ''}", flush=True)
        with tempfile.TemporaryDirectory(prefix=f"kz-profile-{name}-") as profiles:
            if args.profile:
                os.environ[PROFILE_VARIABLE] = profiles
            try:
                result = importlib.import_module(f"bench.suite_{name}").run(args.quick)
            except Exception:  # one broken suite must not hide the others' figures
                failed.append(name)
                traceback.print_exc()
                continue
            if args.profile:
                lines = summary(Path(profiles))
                (args.out / f"{name}-profile.txt").write_text("\n".join(lines) + "\n")
        write_json(result, args.out, args.quick)
        write_plot(result, args.out)
        results.append(result)
        print(show(result), flush=True)
        print(f"   ({time.perf_counter() - started:.0f} s)\n", flush=True)
    command = "python -m bench" + (" --quick" if args.quick else "")
    if args.suites:
        command += " " + " ".join(args.suites)
    if results:  # the default run's report.md; a run of named suites gets its own file
        name = f"report-{'-'.join(args.suites)}.md" if args.suites else "report.md"
        write_markdown(results, args.out, command, name)
    if failed:
        print(f"suites that failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
