"""A kernel of a real Jupyter server finds that server and drives it through the magics."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.support.kernel_session import BASE_URL, KernelSession

pytestmark = pytest.mark.slow


async def run_in_kernel(url: str, token: str, kernel_id: str, code: str) -> tuple[str, str]:
    """Execute code in the kernel; return (stdout and displayed text, stderr + tracebacks)."""
    async with KernelSession(url, token, kernel_id) as session:
        outputs = await session.execute(code)
    return outputs.out + "\n".join(outputs.texts), outputs.err


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
            "%kz chat smollm2 'What is the capital of France? Answer in one word.' --temperature 0",
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
