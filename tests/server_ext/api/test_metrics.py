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

from tests.support.metric_samples import samples
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
        for streamed in await asyncio.gather(*streams):
            assert streamed.status_code == 200
            # the proxy asked the engine for usage; the client did not: it gets none
            assert b'"usage"' not in streamed.content and streamed.content.endswith(b"[DONE]\n\n")
        asked = {"stream": True, "stream_options": {"include_usage": True}}
        with_usage = await http.post("v1/chat/completions", json=CHAT | asked)
        assert b'"usage":' in with_usage.content  # asked for: it is there

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
        assert samples(text, "kz_requests_total", outcome="ok", **by) == 5
        assert samples(text, "kz_requests_total", outcome="429", **by) == 1
        assert samples(text, "kz_requests_total", outcome="cancelled", **by) == 1
        assert samples(text, "kz_requests_total", outcome="4xx", route="embeddings") == 1
        assert samples(text, "kz_request_duration_seconds_count", **by) == 7
        assert samples(text, "kz_time_to_first_token_seconds_count", **by) == 6  # not the 429
        # the echo engine counts a token a word: 10 in the prompt, 11 in "echo: one ... ten",
        # for the 5 answered requests (streamed or not), by the user who sent them
        assert samples(text, "kz_prompt_tokens_total", deployment="slow") == 5 * 10
        assert samples(text, "kz_completion_tokens_total", deployment="slow") == 5 * 11
        assert samples(text, "kz_time_per_output_token_seconds_count", **by) == 3  # the streams
        assert samples(text, "kz_requests_in_flight", deployment="slow") == 0
        replicas = {
            s.labels["replica"]
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == "kz_requests_total" and s.labels["outcome"] == "ok"
        }
        assert replicas == {"slow-0"}

        assert (await http.get("metrics")).status_code == 200  # a logged-in user may read it

        # the panels' figures: this minute's rates and percentiles, series, the machine's use
        stats = (await http.get("api/stats", params={"span": 60, "step": 5})).json()
        (slow,) = stats["deployments"]
        assert slow["name"] == "slow" and slow["replicas"] == "1/1" and slow["in_flight"] == 0
        now = slow["now"]
        assert now["requests"] == 8 and now["errors"] == 2  # the 429 and the 400
        assert now["tokens_per_s"] == 5 * 11 / stats["now_seconds"]
        assert 0 < now["ttft_p50"] <= now["ttft_p95"] < 2
        assert 2 < now["decode_tokens_per_s"] < 5.5  # a word every 0.2 s (or slower, when busy)
        assert len(slow["series"]["t"]) == 12 and sum(slow["series"]["requests_per_s"]) * 5 == 8
        assert slow["gauges"]["in_flight"] == [0]
        (machine,) = stats["machine"]["samples"]
        assert 0 <= machine["cpu_percent"] <= 100 and 0 < machine["ram_used"] < machine["ram_total"]
        assert (await http.get("api/stats/slow")).json()["deployments"][0]["name"] == "slow"
        assert (await http.get("api/stats/ghost")).status_code == 404
        wrong = await http.get("api/stats", params={"span": "an hour"})
        assert wrong.status_code == 400 and "span='an hour'" in wrong.json()["message"]

        usage = (await http.get("api/usage")).json()
        assert usage["usage"] == [{"user": usage["user"], "deployment": "slow", "requests": 8,
                                   "prompt_tokens": 50, "completion_tokens": 55}]  # fmt: skip

    async with httpx.AsyncClient(base_url=base) as stranger:  # no token, no login cookie
        assert (await stranger.get("metrics")).status_code == 403
        wrong = await stranger.get("metrics", headers={"Authorization": "Bearer not-the-token"})
        assert wrong.status_code == 403

    logged = [r.getMessage() for r in caplog.records if "kz request req-1 " in r.getMessage()]
    assert len(logged) == 1
    assert "deployment=slow replica=slow-0" in logged[0] and "status=200 outcome=ok" in logged[0]
    assert "prompt_tokens=10 completion_tokens=11" in logged[0]
    assert json.dumps(CHAT["messages"]) not in logged[0]
