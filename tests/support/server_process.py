"""A real `jupyter server` process with the kz extension, restartable on one state dir."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from kz_jupyter.engines.process import free_port
from tests.support.rest_calls import QUESTION


class JupyterServer:
    """A `jupyter server` process with the kz extension, restartable on one state dir."""

    def __init__(
        self, home: Path, env: dict[str, str] | None = None, args: list[str] | None = None
    ):
        self.home = home
        self.args = args or []
        self.env = {
            **os.environ,
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            "KZ_STATE_DIR": str(home / "state"),
            **(env or {}),
        }
        self.env.pop("KZ_SERVER_URL", None)
        self.process: subprocess.Popen | None = None
        self.url = ""
        self.client = httpx.Client(timeout=60)

    def start(self) -> None:
        """Start the server and wait until it answers."""
        port, token = free_port("127.0.0.1"), secrets.token_hex(16)
        log = open(self.home / "server.log", "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root",
             "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={self.home}",
             *self.args],
            env=self.env, cwd=self.home, stdout=log, stderr=log,
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{port}/"
        self.client.headers["Authorization"] = f"token {token}"
        deadline = time.monotonic() + 90
        while True:
            try:
                if self.client.get(self.url + "api/status").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and self.process.poll() is None, "no server"
            time.sleep(0.2)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server (SIGTERM: a clean shutdown; SIGKILL: a crash)."""
        self.process.send_signal(sig)
        self.process.wait(timeout=90)

    def api(self, method: str, path: str, **kwargs) -> dict | list:
        response = self.client.request(method, self.url + "kz/" + path, **kwargs)
        assert response.status_code < 400, response.text
        return response.json()

    def wait_deployed(self, name: str, timeout: float = 240) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            record = self.api("GET", f"api/deployments/{name}")
            if record["status"] in ("DEPLOYED", "FAILED", "STOPPED", "MUST_REDOWNLOAD"):
                return record
            assert time.monotonic() < deadline, record
            time.sleep(0.3)

    def ask(self, name: str) -> str:
        body = {"model": name, "messages": QUESTION, "max_tokens": 16, "temperature": 0}
        reply = self.api("POST", "v1/chat/completions", json=body)
        return reply["choices"][0]["message"]["content"]
