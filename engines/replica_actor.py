"""The replica actor: a Ray actor that owns one engine server process on its node."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import ray

from kz_jupyter.engines.process import EngineProcess, free_port, read_lines_from
from kz_jupyter.planning.engine_contract import LaunchTarget, get_engine
from kz_jupyter.planning.plan import Plan

HEALTH_TIMEOUT = 5.0
HEALTH_INTERVAL = 10.0  # engines log each probe: ask at most this often


def answer_status(url: str) -> int | None:
    """The HTTP status a GET of url answers, or None when nothing answers in time."""
    try:
        return httpx.get(url, timeout=HEALTH_TIMEOUT).status_code
    except httpx.HTTPError:
        return None


class ReplicaActor:
    """A Ray actor that owns one engine server process on the node Ray placed it on.

    It may be created before any deployment needs it (a warm spare): the engine and its log
    are given when it is asked to start one.
    """

    def __init__(self) -> None:
        self.engine_process: EngineProcess | None = None
        self.started: dict | None = None
        self.health_url = ""
        self._next_health_check = 0.0

    def ping(self) -> int:
        """Answer once the actor runs: the process id of its Ray worker."""
        return os.getpid()

    def start(
        self,
        engine_name: str,
        plan: Plan,
        served_name: str,
        host: str | None,
        log_path: str,
        room: str = "",
    ) -> dict:
        """Start the engine on a free port of host (default: this node's address in Ray),
        logging to log_path; room names the placement group holding its resources.

        Called again on the same actor, it replaces a dead (or running) engine with a new one.
        """
        if self.engine_process is not None:
            self.engine_process.stop()
        self.engine_process = EngineProcess(Path(log_path))
        node_id = ray.get_runtime_context().get_node_id()
        if host is None:
            host = next(n["NodeManagerAddress"] for n in ray.nodes() if n["NodeID"] == node_id)
        log = self.engine_process.log_path
        target = LaunchTarget(
            served_name=served_name,
            host=host,
            port=free_port(host),
            workdir=log.parent / f"{log.stem}.work",
        )
        engine = get_engine(engine_name)
        target.workdir.mkdir(parents=True, exist_ok=True)
        engine.prepare(plan, target)
        spec = engine.launch_spec(plan, target)
        pid = self.engine_process.start(spec)
        endpoint = f"http://{host}:{target.port}"
        self.health_url = endpoint + spec.health_path if spec.health_path else ""
        self._next_health_check = 0.0
        self.started = {
            "host": host,
            "port": target.port,
            "pid": pid,
            "endpoint": endpoint,
            "readiness_path": spec.readiness_path,
            "readiness_body": spec.readiness_body,
            "node_id": node_id,
            "actor_name": ray.get_runtime_context().get_actor_name() or "",
            "log_path": log_path,
            "room": room,
        }
        return self.started

    def running(self) -> dict | None:
        """What start returned, while the engine it started still runs; else None."""
        if self.started is None or self.returncode() is not None:
            return None
        return self.started

    def returncode(self) -> int | None:
        """Return the engine's exit status, or None while it runs.

        An engine whose health URL answers an error status is broken although its process
        lives (a server whose worker thread died): it is ended here, and so reported exited.
        """
        if self.engine_process is None:
            return None
        if (
            self.engine_process.returncode() is None
            and self.health_url
            and time.monotonic() >= self._next_health_check
        ):
            self._next_health_check = time.monotonic() + HEALTH_INTERVAL
            status = answer_status(self.health_url)
            if status is not None and status >= 500:
                self.engine_process.note(
                    f"[kz] the engine answered its health check with HTTP {status}: ending it"
                )
                self.engine_process.stop()
        return self.engine_process.returncode()

    def tail(self, lines: int) -> list[str]:
        """Return the last lines of the engine's log."""
        return [] if self.engine_process is None else self.engine_process.tail(lines)

    def follow(self, offset: int | None) -> tuple[int, list[str]]:
        """Return the log lines written after offset (None: start at the end now)."""
        if self.engine_process is None:
            return offset or 0, []
        if offset is None:
            return self.engine_process.log_size(), []
        return read_lines_from(self.engine_process.log_path, offset)

    def stop(self) -> int | None:
        """Stop the engine process and return its exit status."""
        return None if self.engine_process is None else self.engine_process.stop()
