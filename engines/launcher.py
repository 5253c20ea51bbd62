"""Exec an engine command so that it dies with its owner (Linux PR_SET_PDEATHSIG).

Used as `python -m kz_jupyter.engines.launcher PROGRAM ARGS...`: a replica actor killed by Ray
(SIGKILL) gets no chance to stop its engine, so the engine must be told by the kernel instead.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask the kernel to send SIGTERM to this process when its parent exits (Linux only)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def main(argv: list[str]) -> None:
    """Arrange to die with the parent, then become the engine process."""
    if not argv:
        raise SystemExit("usage: python -m kz_jupyter.engines.launcher PROGRAM [ARGS...]")
    parent = os.getppid()
    die_with_parent()
    if os.getppid() != parent:
        raise SystemExit("owner exited before the engine started")
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
