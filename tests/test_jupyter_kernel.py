"""A kernel of a real Jupyter server finds that server and drives it through the magics."""

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

import httpx
import pytest
from tornado.websocket import websocket_connect

from kz_jupyter.engines.process import free_port

pytestmark = pytest.mark.slow

BASE_URL = "/lab-base/"


@pytest.fixture
def jupyter_server(tmp_path):
    """A `jupyter server` process on loopback with the kz extension enabled by config."""
    port, token = free_port("127.0.0.1"), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "KZ_STATE_DIR": str(tmp_path / "state"),
    }
    env.pop("KZ_SERVER_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         f"--ServerApp.base_url={BASE_URL}", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={tmp_path}"],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}{BASE_URL}"
    headers = {"Authorization": f"token {token}"}
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "api/status", headers=headers).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline and process.poll() is None, "server did not start"
        time.sleep(0.2)
    yield url, token, process
    process.terminate()  # the extension stops its deployments on shutdown
    process.wait(timeout=60)


def message(code: str) -> dict:
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


async def run_in_kernel(url: str, token: str, kernel_id: str, code: str) -> tuple[str, str]:
    """Execute code in the kernel; return (stdout, stderr + tracebacks)."""
    ws_url = url.replace("http", "ws", 1) + f"api/kernels/{kernel_id}/channels?token={token}"
    connection = await websocket_connect(ws_url)
    request = message(code)
    await connection.write_message(json.dumps(request))
    out, err = [], []
    while True:
        reply = json.loads(await asyncio.wait_for(connection.read_message(), timeout=300))
        if reply.get("parent_header", {}).get("msg_id") != request["header"]["msg_id"]:
            continue
        kind, content = reply["msg_type"], reply["content"]
        if kind == "stream":
            (out if content["name"] == "stdout" else err).append(content["text"])
        elif kind == "error":
            err.append("\n".join(content["traceback"]))
        elif kind == "status" and content["execution_state"] == "idle":
            connection.close()
            return "".join(out), "".join(err)


def test_magics_in_a_kernel_of_a_real_jupyter_server(jupyter_server):
    url, token, server = jupyter_server
    headers = {"Authorization": f"token {token}"}
    kernel = httpx.post(url + "api/kernels", json={"name": "python3"}, headers=headers).json()
    code = "\n".join(
        [
            "%load_ext kz_jupyter",
            "from kz_jupyter.client import KzClient",
            "print('SOURCE', KzClient().connection.source)",
            "%kz deploy smollm2",
            "%kz chat smollm2 'What is the capital of France?' --temperature 0",
            "%kz ps",
        ]
    )
    out, err = asyncio.run(run_in_kernel(url, token, kernel["id"], code))
    assert "Traceback" not in err, err
    assert f"SOURCE jupyter server pid {server.pid}" in out  # the kernel's own server
    assert (
        f"OpenAI endpoint http://127.0.0.1:{url.split(':')[2].split('/')[0]}{BASE_URL}kz/v1" in out
    )
    assert "Paris" in out
    # the deployment lives in the server, so the REST API sees it
    records = httpx.get(url + "kz/api/deployments", headers=headers).json()
    assert [(r["name"], r["status"]) for r in records] == [("smollm2", "DEPLOYED")]
    pid = records[0]["replicas"][0]["pid"]
    out, err = asyncio.run(run_in_kernel(url, token, kernel["id"], "%kz stop smollm2"))
    assert "'smollm2' is STOPPED." in out, err
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    """Tell whether a process is running (zombies count as gone)."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
