"""One engine server process: start it on a free port, watch it, tail its log, stop it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from kz_jupyter.planning.engine_contract import LaunchSpec
from kz_jupyter.planning.engine_environments import is_current_interpreter

TAIL_READ_BYTES = 512 * 1024


def free_port(host: str) -> int:
    """Return a TCP port that is free on host right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def read_lines_from(path: Path, offset: int) -> tuple[int, list[str]]:
    """Return the complete lines written to a file after byte offset, and the offset after them.

    A file now shorter than offset was replaced: it is read from the start.
    """
    try:
        with open(path, "rb") as log:
            size = log.seek(0, os.SEEK_END)
            offset = offset if offset <= size else 0
            log.seek(offset)
            data = log.read(min(size - offset, TAIL_READ_BYTES))
    except FileNotFoundError:
        return offset, []
    complete = data[: data.rfind(b"\n") + 1]
    text = complete.decode("utf-8", errors="replace")
    return offset + len(complete), text.splitlines()


def tail_file(path: Path, lines: int) -> list[str]:
    """Return the last lines of a text file (empty when it does not exist yet)."""
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            size = log.tell()
            log.seek(max(0, size - TAIL_READ_BYTES))
            text = log.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return []
    all_lines = text.splitlines()
    return all_lines[-lines:] if lines > 0 else all_lines


# Set by Ray for the replica actor's own accounting (OMP_NUM_THREADS=1 for one reserved CPU) or
# pointing at the server's Python: an engine sizes its own thread pools, and one running from
# its own environment must import only that environment's packages.
RAY_THREAD_LIMITS = ("OMP_NUM_THREADS",)
PYTHON_LOCATION = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")


def engine_environment(spec: LaunchSpec) -> dict[str, str]:
    """The environment an engine starts with: the replica's, cleaned, plus the spec's own."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    dropped = RAY_THREAD_LIMITS
    if not is_current_interpreter(spec.program):
        dropped += PYTHON_LOCATION
    for variable in dropped:
        env.pop(variable, None)
    return env | spec.env


class EngineProcess:
    """Owns one engine server process and its log file."""

    def __init__(self, log_path: Path):
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self, spec: LaunchSpec) -> int:
        """Start the engine described by spec; return its pid."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        program = spec.program or sys.executable
        command = [sys.executable, "-m", "kz_jupyter.engines.launcher", program, *spec.args]
        with open(self.log_path, "ab") as log:
            log.write(f"[kz] $ {' '.join([program, *spec.args])}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=engine_environment(spec),
                cwd=spec.cwd,
                start_new_session=True,
            )
        return self.process.pid

    def note(self, line: str) -> None:
        """Append a line of kz-jupyter's own to the engine's log."""
        with open(self.log_path, "ab") as log:
            log.write(f"{line}\n".encode())

    def returncode(self) -> int | None:
        """Return the exit status, or None while the process runs."""
        return None if self.process is None else self.process.poll()

    def tail(self, lines: int = 200) -> list[str]:
        """Return the last lines of the engine's log."""
        return tail_file(self.log_path, lines)

    def log_size(self) -> int:
        """Return the log's size in bytes (where following it starts)."""
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def stop(self, grace_seconds: float = 10.0) -> int | None:
        """Stop the engine: SIGTERM to its process group, then SIGKILL after the grace period."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            deadline = time.monotonic() + grace_seconds
            while self.process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if self.process.poll() is None:
                self._signal_group(signal.SIGKILL)
                self.process.wait(timeout=5)
        return self.process.returncode

    def _signal_group(self, sig: signal.Signals) -> None:
        """Signal the engine and every process it started."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
