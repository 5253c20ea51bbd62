"""Drive a real IPython shell through the %kz magics; print a transcript, one block per cell.

Run as a script by the magics tests, in its own process, so the embedded server is truly
embedded. With an argument, the cells are read from that JSON file instead.
"""

from __future__ import annotations

import json
import sys

import psutil
from IPython.core.interactiveshell import InteractiveShell

CELLS = [
    "%load_ext kz_jupyter",
    "%kz hw",
    "%kz deploy smollm2",
    '%kz chat smollm2 "What is the capital of France? Answer in one word." --temperature 0',
    "%%kz chat smollm2 --temperature 0\nWhat is the capital of France? Answer in one sentence.",
    "%kz ps",
    "%kz logs smollm2 --lines 5",
    "%kz stop smollm2",
    "%kz ps",
    "%kz deploy /nonexistent/model.gguf --name missing",
    "%kz chat ghost hello",
    "%kz frobnicate",
    "%kz deploy",
    "%kz chat smollm2 'unbalanced",
]


def engine_pids() -> set[int]:
    """Pids of llama.cpp server processes that are children of this process."""
    pids = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if any(part.endswith("llama-server") for part in child.cmdline()):
                pids.add(child.pid)
        except psutil.NoSuchProcess:  # exited while we looked: not running
            continue
    return pids


def main() -> None:
    """Run every cell and print `=== CELL n` headers between their outputs."""
    shell = InteractiveShell.instance()
    cells = json.loads(open(sys.argv[1]).read()) if len(sys.argv) > 1 else CELLS
    for number, cell in enumerate(cells):
        print(f"=== CELL {number}", flush=True)
        print(f"=== CELL {number}", file=sys.stderr, flush=True)
        result = shell.run_cell(cell)
        sys.stdout.flush()
        sys.stderr.flush()
        print(f"=== OK {result.success}", flush=True)
        print(f"=== ENGINES {len(engine_pids())}", flush=True)


if __name__ == "__main__":
    main()
