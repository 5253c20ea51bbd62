"""GET /kz/metrics counts what went through the proxy (by outcome, with time to first bytes and
duration), to a logged-in user or the scrape token; every request has an id, returned and
logged."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.rest_calls import post_json, wait_for_status
from tests.support.server_config import kz_server_config

pytestmark = pytest.mark.slow
SCRAPE_TOKEN = "scrape-secret-0123456789"
WORDS = "one two three four five six seven eight nine ten"
CHAT = {"model": "slow", "messages": [{"role": "user", "content": WORDS}]}


@pytest.fixture
def jp_server_config(tmp_path):
    """Two requests per deployment at once, and a scrape token for Prometheus."""
    return kz_server_config(tmp_path, max_requests_per_deployment=2, metrics_token=SCRAPE_TOKEN)


def samples(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include labels."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


async def test_metrics_count_requests_by_outcome_for_the_scrape_token(
    jp_fetch, jp_serverapp, jp_http_port, jp_base_url, smollm2_path, caplog
):
    # the echo engine streams a word every 0.2 s: each answer holds its request about 2 s
    body = {"model": str(smollm2_path), "engine": "echo", "name": "slow",
            "extra_args": ["--word-delay", "0.2"]}  # fmt: skip
    assert (await post_json(jp_fetch, "kz/api/deployments", body=body)).code == 202
    assert (await wait_for_status(jp_fetch, "slow", {"DEPLOYED", "FAILED"}))["status"] == "DEPLOYED"
    base = f"http://127.0.0.1:{jp_http_port}{jp_base_url}kz/"
    user = {"Authorization": f"token {jp_serverapp.identity_provider.token}"}
    caplog.set_level(logging.INFO)

    async with httpx.AsyncClient(base_url=base, headers=user, timeout=120) as http:
        plain = await http.post("v1/chat/completions", json=CHAT, headers={"X-Request-Id": "req-1"})
        assert plain.status_code == 200 and plain.headers["X-Request-Id"] == "req-1"
        assert plain.json()["id"] == "req-1"  # the engine got it (the echo engine answers with it)
        assert float(plain.headers["X-Kz-Overhead-Ms"]) >= 0
        fresh = await http.post("v1/chat/completions", json=CHAT)
        assert len(fresh.headers["X-Request-Id"]) == 32  # a new id when the client sent none

        streams = [
            asyncio.create_task(http.post("v1/chat/completions", json=CHAT | {"stream": True}))
            for _ in range(2)
        ]
        await asyncio.sleep(0.5)  # both stream now: the next one is past the limit
        refused = await http.post("v1/chat/completions", json=CHAT)
        assert refused.status_code == 429
        wrong_route = await http.post("v1/embeddings", json={"model": "slow", "input": "x"})
        assert wrong_route.status_code == 400  # it generates text, it does not embed
        assert [s.status_code for s in await asyncio.gather(*streams)] == [200, 200]

        async with http.stream("POST", "v1/chat/completions", json=CHAT | {"stream": True}) as cut:
            async for _ in cut.aiter_bytes():
                break  # the client goes away after the first bytes

        async def scrape() -> str:
            answer = await http.get("metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
            assert answer.status_code == 200, answer.text
            assert answer.headers["Content-Type"].startswith("text/plain; version=")
            return answer.text

        for _ in range(100):  # the cut stream is counted once the proxy notices
            text = await scrape()
            if samples(text, "kz_requests_total", outcome="cancelled"):
                break
            await asyncio.sleep(0.1)
        by = {"deployment": "slow", "route": "chat/completions"}
        assert samples(text, "kz_requests_total", outcome="ok", **by) == 4
        assert samples(text, "kz_requests_total", outcome="429", **by) == 1
        assert samples(text, "kz_requests_total", outcome="cancelled", **by) == 1
        assert samples(text, "kz_requests_total", outcome="4xx", route="embeddings") == 1
        assert samples(text, "kz_request_duration_seconds_count", **by) == 6
        assert samples(text, "kz_time_to_first_token_seconds_count", **by) == 5  # not the 429
        assert samples(text, "kz_requests_in_flight", deployment="slow") == 0
        replicas = {
            s.labels["replica"]
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == "kz_requests_total" and s.labels["outcome"] == "ok"
        }
        assert replicas == {"slow-0"}

        assert (await http.get("metrics")).status_code == 200  # a logged-in user may read it

    async with httpx.AsyncClient(base_url=base) as stranger:  # no token, no login cookie
        assert (await stranger.get("metrics")).status_code == 403
        wrong = await stranger.get("metrics", headers={"Authorization": "Bearer not-the-token"})
        assert wrong.status_code == 403

    logged = [r.getMessage() for r in caplog.records if "kz request req-1 " in r.getMessage()]
    assert len(logged) == 1
    assert "deployment=slow replica=slow-0" in logged[0] and "status=200 outcome=ok" in logged[0]
    assert json.dumps(CHAT["messages"]) not in logged[0]
