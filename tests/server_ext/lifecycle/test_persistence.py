"""Deployment records survive a Jupyter server restart: with a local Ray the engines are started
again; on a Ray cluster the engines outlive the server and are adopted, never duplicated."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter

import httpx
import psutil
import pytest

from tests.support.rest_calls import QUESTION
from tests.support.server_process import JupyterServer

pytestmark = pytest.mark.slow


def engines_of(pids: set[int]) -> set[int]:
    """Which of pids are still running llama.cpp engines."""
    alive = set()
    for pid in pids:
        try:
            if "llama-server" in " ".join(psutil.Process(pid).cmdline()):
                alive.add(pid)
        except psutil.NoSuchProcess:
            continue
    return alive


def cmdline_of(pid: int) -> str:
    """A process's command line as one string ('' once it is gone)."""
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except psutil.NoSuchProcess:
        return ""


def all_engines() -> set[int]:
    """Every llama.cpp engine process on the machine."""
    found = set()
    for process in psutil.process_iter(["cmdline"]):
        if "llama-server" in " ".join(process.info["cmdline"] or ()):
            found.add(process.pid)
    return found


def test_restart_with_a_local_ray_restores_both_deployments(tmp_path):
    server = JupyterServer(tmp_path)
    server.start()
    try:
        for name in ("alpha", "beta"):
            server.api("POST", "api/deployments", json={"model": "smollm2", "name": name})
        old = {server.wait_deployed(n)["replicas"][0]["pid"] for n in ("alpha", "beta")}
        server.stop()
        assert engines_of(old) == set()  # a local Ray ends with its server
        server.start()
        records = server.api("GET", "api/deployments")
        assert sorted(r["name"] for r in records) == ["alpha", "beta"]
        for name in ("alpha", "beta"):
            record = server.wait_deployed(name)
            assert record["status"] == "DEPLOYED", record
            assert "server restarted: 0 replica(s) adopted, 1 restarted" in str(record["history"])
            assert "Paris" in server.ask(name)
        new = {r["replicas"][0]["pid"] for r in server.api("GET", "api/deployments")}
        assert len(engines_of(new)) == 2 and not new & old
        server.api("DELETE", "api/deployments/alpha")
    finally:
        server.stop()
    server.start()  # a deployment stopped by request stays stopped
    try:
        statuses = {r["name"]: r["status"] for r in server.api("GET", "api/deployments")}
        assert statuses["alpha"] == "STOPPED"
        assert server.wait_deployed("beta")["status"] == "DEPLOYED"
        server.api("DELETE", "api/deployments/beta")
    finally:
        server.stop()


def test_a_crashed_server_on_a_cluster_adopts_the_running_engine(ray_head, tmp_path):  # noqa: F811
    address, env = ray_head
    server = JupyterServer(tmp_path, {**env, "KZ_RAY_ADDRESS": address})
    server.start()
    try:
        server.api("POST", "api/deployments", json={"model": "smollm2", "name": "gamma"})
        pid = server.wait_deployed("gamma")["replicas"][0]["pid"]
        server.stop(signal.SIGKILL)
        assert engines_of({pid}) == {pid}  # the engine outlived the crash
        engines_before = all_engines()
        server.start()
        record = server.wait_deployed("gamma")
        assert record["status"] == "DEPLOYED", record
        assert "1 replica(s) adopted, 0 restarted" in str(record["history"])
        assert record["replicas"][0]["pid"] == pid
        assert "Paris" in server.ask("gamma")
        assert all_engines() == engines_before  # nothing duplicated
        server.api("DELETE", "api/deployments/gamma")
        assert engines_of({pid}) == set()
    finally:
        server.stop()


def test_a_restart_under_load_ends_every_stream_and_loses_no_deployment(tmp_path):
    server = JupyterServer(tmp_path)
    server.start()
    outcomes: list[str] = []
    ended: list[float] = []

    def user(url: str, headers: dict) -> None:
        """Stream one long answer; say how it ended, and when."""
        body = {"model": "alpha", "messages": QUESTION, "max_tokens": 200, "stream": True}
        try:
            with httpx.stream("POST", url, json=body, headers=headers, timeout=120) as response:
                text = "".join(response.iter_text())
            if "data: [DONE]" in text:
                outcomes.append("whole answer")
            elif '"server_shutting_down"' in text:
                outcomes.append(
                    f"HTTP {response.status_code}, error event"
                    if "data: " in text
                    else f"HTTP {response.status_code} error"
                )
            else:
                outcomes.append(f"HTTP {response.status_code}, cut short")
        except httpx.HTTPError as error:
            outcomes.append(type(error).__name__)
        ended.append(time.monotonic())

    try:
        server.api("POST", "api/deployments", json={"model": "smollm2", "name": "alpha"})
        first = server.wait_deployed("alpha")
        users = [
            threading.Thread(target=user, args=(server.url + "kz/v1/chat/completions",
                                                dict(server.client.headers)))
            for _ in range(16)
        ]  # fmt: skip
        for thread in users:
            thread.start()
        time.sleep(3)  # the answers are streaming (a few at a time; the rest queue in llama.cpp)
        stopping = time.monotonic()
        server.stop()  # restarted while 16 users chat
        for thread in users:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in users)  # every client was let go
        print("16 users saw:", Counter(outcomes))
        # each got its whole answer or an error it can read: a last event in its stream, or a
        # 503 for one still queued; none was cut off, and none waited long for it
        assert len(outcomes) == 16, outcomes
        readable = {"whole answer", "HTTP 200, error event", "HTTP 503 error"}
        assert set(outcomes) <= readable, outcomes
        assert set(outcomes) != {"whole answer"}  # some were still under way: it was tried
        assert max(ended) - stopping < 15, max(ended) - stopping
    finally:
        if server.process.poll() is None:
            server.stop()
    server.start()
    try:
        (record,) = server.api("GET", "api/deployments")
        assert record["name"] == "alpha" and record["request"] == first["request"]
        assert server.wait_deployed("alpha")["status"] == "DEPLOYED"
        assert "Paris" in server.ask("alpha")
        serving_alpha = [p for p in all_engines() if "--alias alpha" in cmdline_of(p)]
        assert len(serving_alpha) == 1  # one engine again, none left over from before
        server.api("DELETE", "api/deployments/alpha")
    finally:
        server.stop()
