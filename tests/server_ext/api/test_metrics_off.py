"""With c.KzApp.proxy_metrics = False the proxy measures nothing: no request or token counts,
no panel figures, no usage; requests still get their id."""

from __future__ import annotations

import httpx
import pytest

from tests.support.metric_samples import has_sample
from tests.support.rest_calls import post_json, wait_for_status
from tests.support.server_config import kz_server_config

pytestmark = pytest.mark.slow
CHAT = {"model": "echo", "messages": [{"role": "user", "content": "one two"}], "stream": True}


@pytest.fixture
def jp_server_config(tmp_path):
    """Metrics off."""
    return kz_server_config(tmp_path, proxy_metrics=False)


async def test_metrics_off_counts_nothing_and_relays_streams_as_sent(
    jp_fetch, jp_serverapp, jp_http_port, jp_base_url, smollm2_path
):
    body = {"model": str(smollm2_path), "engine": "echo", "name": "echo"}
    assert (await post_json(jp_fetch, "kz/api/deployments", body=body)).code == 202
    assert (await wait_for_status(jp_fetch, "echo", {"DEPLOYED", "FAILED"}))["status"] == "DEPLOYED"
    base = f"http://127.0.0.1:{jp_http_port}{jp_base_url}kz/"
    user = {"Authorization": f"token {jp_serverapp.identity_provider.token}"}
    async with httpx.AsyncClient(base_url=base, headers=user, timeout=60) as http:
        streamed = await http.post("v1/chat/completions", json=CHAT)
        assert streamed.status_code == 200 and streamed.headers["X-Request-Id"]
        text = (await http.get("metrics")).text
        assert not has_sample(text, "kz_requests_total")
        assert not has_sample(text, "kz_completion_tokens_total")
        (echo,) = (await http.get("api/stats")).json()["deployments"]
        assert echo["now"]["requests"] == 0
        assert (await http.get("api/usage")).json()["usage"] == []
