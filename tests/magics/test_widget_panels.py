"""The panels in a real kernel of a real Jupyter server, watched as JupyterLab would watch them
(the widget models synced over the kernel's websocket): hardware bars, the deployments table
following a deploy and a stop without re-running its cell, the deploy panel, the live log
tail, the chat widget, the stop and remove buttons, and no panel thread left once the panels
are closed."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from kz_jupyter.magics.panel import status_html
from tests.support.kernel_session import KernelSession

pytestmark = pytest.mark.slow


def shows(session: KernelSession, *words: str) -> bool:
    """True when some widget's value contains every word."""
    return any(all(w in value for w in words) for value in session.values())


def status_cell(session: KernelSession, status: str) -> bool:
    """True when the table's smollm2 row shows exactly status."""
    return shows(session, f"<b>smollm2</b> {status_html(status)} ")


async def drive_panels(url: str, token: str, kernel_id: str) -> dict:
    async with KernelSession(url, token, kernel_id) as session:
        seen = {}
        seen["open"] = await session.execute("%load_ext kz_jupyter\nps = %kz ps\nhw = %kz hw\nhw")
        seen["empty_table"] = shows(session, "No deployments")
        seen["bars"] = [
            s["value"]
            for s in session.models.values()
            if s.get("_model_name") == "FloatProgressModel"
        ]
        seen["deploy"] = await session.execute("%kz deploy smollm2")
        seen["values"] = session.values()
        # the table's cells follow the deployment, with no cell run for them
        seen["table_deployed"] = await session.watch(lambda s: status_cell(s, "DEPLOYED"), 10)
        seen["table_text"] = (await session.execute("print(repr(ps))")).out
        seen["chat"] = await session.execute(
            "logs = %kz logs smollm2 --lines 20\n"
            "chat = %kz chat smollm2 --temperature 0 --max-tokens 24\n"
            "chat.send('What is the capital of France? Answer in one word.')\nchat.wait(120)\n"
            "print(chat.text())\nchat"
        )
        seen["top"] = await session.execute("top = %kz top\ntop")
        seen["top_live"] = await session.watch(  # the plots of the chat's minute, and the machine
            lambda s: shows(s, "smollm2", "TTFT p95", "<polyline", "machine", "CPU"), 10
        )
        seen["top_text"] = (await session.execute("print(repr(top))\n%kz usage")).out
        seen["top_stopped"] = await session.execute(
            "top._stop.click()\nprint(top.refresher.running)"
        )
        seen["chat_stopped"] = await session.execute(  # Stop, mid-reply: what came so far stays
            "import time\nchat.max_tokens = 400\nchat.send('Write a long story about a dragon.')\n"
            "print('shown at once:', 'about a dragon' in chat._history.value)\n"
            "while len(chat.messages[-1]['content']) < 20 and chat.busy:\n    time.sleep(0.05)\n"
            "chat._stop.click()\nchat.wait(60)\nprint('figures:', chat.figures)\n"
            "print('kept:', len(chat.messages[-1]['content']) >= 20, chat.busy)"
        )
        seen["ask"] = await session.execute(  # %kz rag ask: its panel, and no text besides
            "import os, pathlib, tempfile\nhere = pathlib.Path(tempfile.mkdtemp())\n"
            "os.environ['KZ_RAG_DIR'] = str(here / 'indexes')\n(here / 'docs').mkdir()\n"
            "(here / 'docs' / 'facts.md').write_text('# Facts\\n\\nThe code word is ZEBRA.\\n')\n"
            "get_ipython().run_line_magic('kz', f'rag index {here / \"docs\"} --name facts')\n"
            "get_ipython().run_line_magic('kz', 'rag ask facts What is the code word? "
            "--deployment smollm2 --max-tokens 16')"
        )
        seen["ask_panel"] = shows(session, "Sources:", "facts.md, ", "(Facts)")
        seen["log_tail"] = await session.watch(
            lambda s: shows(s, "listening on http://127.0.0.1"), 10
        )
        await session.execute("ps._rows['smollm2'].stop.click()")  # the row's stop button
        seen["table_stopped"] = await session.watch(lambda s: status_cell(s, "STOPPED"), 30)
        seen["log_ended"] = await session.watch(lambda s: shows(s, "no longer running"), 15)
        seen["removed"] = await session.execute(  # the ended row's remove button
            "import time\nps._rows['smollm2'].remove.click()\nfor _ in range(60):\n"
            "    if not ps._rows:\n        break\n    time.sleep(0.5)\nprint(list(ps._rows))"
        )
        seen["closed"] = await session.execute(
            "import threading, time\nfor panel in (ps, hw, logs, chat, top):\n    panel.close()\n"
            "time.sleep(3)\n"
            "print(sorted(t.name for t in threading.enumerate() if t.name.startswith('kz-')))"
        )
        return seen


def test_panels_follow_the_deployment_in_a_real_kernel(jupyter_server):
    url, token, _ = jupyter_server
    headers = {"Authorization": f"token {token}"}
    kernel = httpx.post(url + "api/kernels", json={"name": "python3"}, headers=headers).json()
    seen = asyncio.run(drive_panels(url, token, kernel["id"]))

    opened = seen["open"]
    assert (
        not opened.err and opened.widgets and "CPU" in opened.texts[0] and "RAM" in opened.texts[0]
    )
    assert seen["empty_table"]
    assert seen["bars"] and all(0 < value < 1 for value in seen["bars"])  # RAM in use, as a share

    deploy = seen["deploy"]
    assert not deploy.err, deploy.err
    assert deploy.widgets and deploy.texts[0].startswith("Deploying smollm2 as 'smollm2'")
    assert "'smollm2' is ready: OpenAI endpoint" in deploy.out  # the outcome, as text, once
    result = next(v for v in seen["values"] if "KzClient().openai()" in v)  # the panel's snippet
    assert token not in result and not any("is ready" in v for v in seen["values"])  # said once

    assert seen["table_deployed"]
    assert "smollm2  DEPLOYED  llamacpp  1/1" in seen["table_text"]

    chat = seen["chat"]
    assert not chat.err, chat.err
    assert (
        "user: What is the capital of France? Answer in one word." in chat.out
        and "Paris" in chat.out
    )
    assert re.search(r"\(TTFT \d+ ms · \d+ tokens · [\d.]+ tok/s\)", chat.out), chat.out
    ask = seen["ask"]
    assert not ask.err and len(set(ask.widgets)) == 2, ask  # the indexing bar, the ask panel
    assert ask.texts[-1] == "What is the code word? (smollm2, grounded in 'facts')"  # kept text
    assert seen["ask_panel"]  # the sources and the answer, in the panel
    assert "Sources:" not in ask.out, ask.out  # the answer is shown once, by the panel
    stopped = seen["chat_stopped"]
    assert "shown at once: True" in stopped.out and "kept: True False" in stopped.out, stopped
    assert re.search(r"3: 'TTFT \d+ ms( · [^']+)? · stopped'", stopped.out), stopped.out
    assert seen["log_tail"]

    assert not seen["top"].err and seen["top"].widgets and seen["top_live"]
    top = seen["top_text"]  # the chat's one request, in the last minute's figures
    assert re.search(r"smollm2 +DEPLOYED +1 +0\.02 req/s +[\d.]+ tok/s +\d+ ms", top), top
    assert "machine  CPU" in top and re.search(r"smollm2 +req/s [▁-█]+", top)
    assert re.search(r"smollm2 +1 +\d+ +\d+", top)  # %kz usage: the user's row
    assert seen["top_stopped"].out.strip() == "False"  # its stop button stopped the refresh

    assert seen["table_stopped"] and seen["log_ended"]
    assert seen["removed"].out.strip() == "[]", seen["removed"]
    assert seen["closed"].out.strip() == "[]", seen["closed"]
    assert httpx.get(url + "kz/api/deployments", headers=headers).json() == []
