"""A real engine that is not ready within the startup timeout: FAILED with STARTUP_TIMEOUT."""

from __future__ import annotations

import json

import psutil
import pytest

from tests.support.rest_calls import wait_for_status

pytestmark = pytest.mark.slow


@pytest.fixture
def jp_server_config(tmp_path):
    """A startup timeout far shorter than llama.cpp needs to load a model."""
    return {
        "ServerApp": {"jpserver_extensions": {"kz_jupyter.server_ext": True}},
        "KzApp": {"state_dir": str(tmp_path / "kz-state"), "startup_timeout": 0.2},
    }


async def test_engine_not_ready_in_time_fails_with_startup_timeout(jp_fetch):
    await jp_fetch("kz/api/deployments", method="POST", body=json.dumps({"model": "smollm2"}))
    record = await wait_for_status(jp_fetch, "smollm2", {"FAILED", "DEPLOYED"})
    assert record["status"] == "FAILED", record
    assert record["error"]["code"] == "STARTUP_TIMEOUT"
    assert "not ready after 0.2 s" in record["error"]["message"]
    assert "smaller model" in record["error"]["remediation"]
    assert [h["status"] for h in record["history"]] == [
        "REQUESTED", "DEPLOYING", "INITIALIZING", "FAILED"
    ]  # fmt: skip
    (replica,) = record["replicas"]
    assert replica["status"] == "STOPPED"
    assert not psutil.pid_exists(replica["pid"]) or (
        psutil.Process(replica["pid"]).status() == psutil.STATUS_ZOMBIE
    )
