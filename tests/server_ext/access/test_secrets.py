"""Tokens never leak: the Hugging Face token and the Jupyter token appear in no answer of the
API (errors included) and in no line the server logs while models fail to resolve, download
or deploy."""

from __future__ import annotations

import asyncio
import json
import re

import psutil
import pytest

from kz_jupyter.models.hub import HubSettings
from tests.support.paths import ROOT
from tests.support.rest_calls import error_of, json_of, wait_for_status

HF_SECRET = "hf_kzSecretSentinel0123456789abcdef"
pytestmark = pytest.mark.slow


@pytest.fixture
def jp_server_config(tmp_path):
    """The extension with a Hugging Face token configured."""
    return {
        "ServerApp": {"jpserver_extensions": {"kz_jupyter.server_ext": True}},
        "KzApp": {"state_dir": str(tmp_path / "kz-state"), "hf_token": HF_SECRET},
    }


def test_the_hub_settings_never_show_their_token():
    settings = HubSettings(token=HF_SECRET)
    assert HF_SECRET not in repr(settings) and HF_SECRET not in str(settings)


async def test_no_token_in_answers_or_logs(jp_fetch, jp_serverapp, monkeypatch, caplog):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # a Hub that refuses connections
    caplog.set_level("DEBUG")
    answers: list[str] = []

    async def answer(*parts, **kwargs) -> None:
        kwargs["request_timeout"] = 120  # a refused Hub may be retried for a while
        try:
            answers.append((await jp_fetch(*parts, **kwargs)).body.decode())
        except Exception:
            status, body = await error_of(jp_fetch, *parts, **kwargs)
            answers.append(f"{status} {json.dumps(body)}")

    missing = json.dumps({"model": "kz-test/no-such-model", "name": "missing"})
    await answer("kz/api/plan", method="POST", body=missing)
    await answer("kz/api/pulls", method="POST", body=missing)
    await answer("kz/api/deployments", method="POST", body=missing)
    record = await wait_for_status(jp_fetch, "missing", {"FAILED", "DEPLOYED"}, timeout=120)
    assert record["status"] == "FAILED"
    await asyncio.sleep(0.5)  # the pull job ends too
    for path in ("kz/api/deployments", "kz/api/pulls", "kz/api/deployments/missing/logs",
                 "kz/api/audit", "kz/api/hardware", "kz/v1/models"):  # fmt: skip
        await answer(path)
    await answer("kz/v1/chat/completions", method="POST", body=missing)
    everything = "\n".join(answers) + caplog.text
    assert "127.0.0.1:9" in everything  # the failures were really reached and reported
    jupyter_token = jp_serverapp.identity_provider.token
    for secret in (HF_SECRET, jupyter_token):
        assert secret not in everything
    assert json_of(await jp_fetch("kz/api/deployments", "missing"))["error"]["message"]


async def test_no_token_in_a_running_engine_its_log_or_its_record(jp_fetch, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", HF_SECRET)  # as a user who logged in to the Hub would have
    await jp_fetch("kz/api/deployments", method="POST",
                   body=json.dumps({"model": "smollm2", "name": "talker"}))  # fmt: skip
    record = await wait_for_status(jp_fetch, "talker", {"DEPLOYED", "FAILED"})
    assert record["status"] == "DEPLOYED", record
    seen = [json.dumps(record)]
    seen.append((await jp_fetch("kz/api/deployments/talker/logs")).body.decode())
    seen.append((await jp_fetch("kz/v1/models")).body.decode())
    engine = psutil.Process(record["replicas"][0]["pid"])
    seen.append(" ".join(engine.cmdline()))
    assert "llama-server" in seen[-1]
    for secret in (HF_SECRET, "HF_TOKEN"):
        assert secret not in "\n".join(seen)
    await jp_fetch("kz/api/deployments/talker", method="DELETE")


SECRET_PATTERNS = {
    "a Hugging Face token": re.compile(r"\bhf_[A-Za-z0-9]{30,}"),
    "a Jupyter token in a URL": re.compile(r"[?&]token=[0-9a-f]{16,}"),
    "an Authorization header": re.compile(r"(?i)authorization['\"]?\s*[:=]\s*['\"]?token \w{8,}"),
}


def test_no_token_in_the_notebooks_or_benchmark_results():
    samples = [HF_SECRET, "http://127.0.0.1:8888/lab?token=0123456789abcdef0123",
               '"Authorization": "token 0123456789abcdef"']  # fmt: skip
    assert all(p.search(s) for p, s in zip(SECRET_PATTERNS.values(), samples, strict=True))
    files = [*ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("bench/results/*")]
    assert len(files) >= 5
    for path in files:
        text = path.read_text(errors="replace")
        for what, pattern in SECRET_PATTERNS.items():
            assert not pattern.search(text), f"{path.name} holds {what}"
