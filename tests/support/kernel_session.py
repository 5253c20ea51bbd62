"""A real `jupyter server` process and a kernel of it driven over the websocket, as a browser
would: execute code, read its outputs, and watch the widget models the kernel keeps in sync."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from kz_jupyter.engines.process import free_port

BASE_URL = "/lab-base/"
WIDGET_TARGET = "jupyter.widget"


def start_jupyter_server(
    tmp_path: Path,
    app: str = "jupyter_server",
    args: tuple[str, ...] = (),
    python: str = sys.executable,
    **env_vars: str,
) -> tuple[str, str, subprocess.Popen]:
    """A `jupyter server` (app="jupyterlab": JupyterLab) on loopback with the kz extension
    enabled by config (of this environment, or of `python`'s), more command-line args and
    environment variables; (url, token, process) once it answers."""
    port, token = free_port("127.0.0.1"), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "KZ_STATE_DIR": str(tmp_path / "state"),
        **env_vars,
    }
    if "KZ_SERVER_URL" not in env_vars:
        env.pop("KZ_SERVER_URL", None)
    process = subprocess.Popen(
        [python, "-m", app, "--no-browser", "--allow-root",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         f"--ServerApp.base_url={BASE_URL}", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={tmp_path}", *args],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}{BASE_URL}"
    headers = {"Authorization": f"token {token}"}
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "api/status", headers=headers).status_code == 200:
                return url, token, process
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline and process.poll() is None, "server did not start"
        time.sleep(0.2)


def execute_request(code: str) -> dict:
    """A Jupyter execute_request in the websocket JSON form."""
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "msg_type": "execute_request",
            "session": uuid.uuid4().hex,
            "username": "test",
            "version": "5.3",
            "date": datetime.datetime.now(datetime.UTC).isoformat(),
        },
        "parent_header": {},
        "metadata": {},
        "content": {"code": code, "silent": False, "store_history": False,
                    "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        "channel": "shell",
        "buffers": [],
    }  # fmt: skip


@dataclass
class Outputs:
    """What one execution printed and displayed."""

    out: str = ""
    err: str = ""
    texts: list[str] = field(default_factory=list)  # text/plain of displays, in order
    widgets: list[str] = field(default_factory=list)  # model ids of displayed widgets


class KernelSession:
    """One websocket to a kernel: runs code and mirrors every widget model's state."""

    def __init__(self, url: str, token: str, kernel_id: str):
        self.ws_url = url.replace("http", "ws", 1) + f"api/kernels/{kernel_id}/channels"
        self.token = token  # in a header: JupyterHub refuses tokens in URLs
        self.models: dict[str, dict] = {}  # comm id -> current widget state
        self.updates: list[tuple[str, dict]] = []  # (comm id, state change) as they came
        self._connection = None

    async def __aenter__(self) -> KernelSession:
        request = HTTPRequest(self.ws_url, headers={"Authorization": f"token {self.token}"})
        self._connection = await websocket_connect(request, max_message_size=64 << 20)
        return self

    async def __aexit__(self, *exc) -> None:
        self._connection.close()

    async def _read(self, timeout: float) -> dict | None:
        try:
            raw = await asyncio.wait_for(self._connection.read_message(), timeout=timeout)
        except TimeoutError:
            return None
        message = json.loads(raw)
        kind, content = message["msg_type"], message["content"]
        if kind == "comm_open" and content.get("target_name") == WIDGET_TARGET:
            self.models[content["comm_id"]] = dict(content["data"]["state"])
        elif kind == "comm_msg" and content["data"].get("method") == "update":
            state = content["data"]["state"]
            self.models.setdefault(content["comm_id"], {}).update(state)
            self.updates.append((content["comm_id"], state))
        return message

    async def submit(self, code: str) -> None:
        """Start running code and return at once (its outputs are not collected)."""
        await self._connection.write_message(json.dumps(execute_request(code)))

    async def execute(self, code: str, timeout: float = 300) -> Outputs:
        """Run code; return its outputs once the kernel is idle again."""
        request = execute_request(code)
        await self._connection.write_message(json.dumps(request))
        outputs, out, err = Outputs(), [], []
        deadline = time.monotonic() + timeout
        while True:
            message = await self._read(max(0.1, deadline - time.monotonic()))
            assert message is not None, f"no answer in {timeout} s to {code!r}"
            if message.get("parent_header", {}).get("msg_id") != request["header"]["msg_id"]:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                (out if content["name"] == "stdout" else err).append(content["text"])
            elif kind == "error":
                err.append("\n".join(content["traceback"]))
            elif kind in ("display_data", "execute_result", "update_display_data"):
                outputs.texts.append(content["data"].get("text/plain", ""))
                view = content["data"].get("application/vnd.jupyter.widget-view+json")
                if view:
                    outputs.widgets.append(view["model_id"])
            elif kind == "status" and content["execution_state"] == "idle":
                outputs.out, outputs.err = "".join(out), "".join(err)
                return outputs

    async def watch(self, until, timeout: float) -> bool:
        """Read messages (no code runs) until until(self) is true; False after timeout."""
        deadline = time.monotonic() + timeout
        while not until(self):
            if time.monotonic() > deadline:
                return False
            await self._read(0.5)
        return True

    def values(self, key: str = "value") -> list[str]:
        """The current value of every widget model that has one, as text."""
        return [str(state[key]) for state in self.models.values() if key in state]
