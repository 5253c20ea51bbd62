"""Run %kz magics in an IPython shell of their own process (tests/support/magics_session.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.paths import SUPPORT

SESSION = SUPPORT / "magics_session.py"


def split_cells(text: str) -> dict[int, str]:
    """Map cell number -> what that cell printed."""
    parts = re.split(r"^=== CELL (\d+)$", text, flags=re.M)
    cells: dict[int, str] = {}
    for number, body in zip(parts[1::2], parts[2::2], strict=True):
        cells[int(number)] = cells.get(int(number), "") + body
    return cells


def run_session(
    home: Path, cells: list[str] | None = None, python: str = sys.executable, **env_vars: str
):
    """Run a magics session in its own process (of `python`: another environment's); return
    (stdout per cell, stderr per cell)."""
    env = {
        **os.environ,
        "KZ_STATE_DIR": str(home / "state"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        **env_vars,
    }
    if "KZ_SERVER_URL" not in env_vars:
        env.pop("KZ_SERVER_URL", None)
    args = [python, str(SESSION)]
    if cells is not None:
        (home / "cells.json").write_text(json.dumps(cells))
        args.append(str(home / "cells.json"))
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, cwd=home)
    assert done.returncode == 0, done.stdout + done.stderr
    return split_cells(done.stdout), split_cells(done.stderr)
