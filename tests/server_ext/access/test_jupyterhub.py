"""kz-jupyter as a JupyterHub service, end to end: a real hub on loopback with its proxy, test
users, and kz as a managed service. alice deploys SmolLM2 shared with everyone and a private
one; bob sees the shared one in `%kz ps`, chats with it and runs a batch over it from his own
kernel, but cannot stop it; an admin can; the audit log shows who did what; bad tokens, other
users' names, unknown groups and requests over the limits are refused clearly; tokens are
counted per user."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest

from kz_jupyter.server_ext.access.hub_identity import TOKEN_CACHE_SECONDS
from tests.support.jupyterhub_session import start_hub, stop_hub
from tests.support.kernel_session import KernelSession
from tests.support.metric_samples import samples

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    hub = start_hub(tmp_path_factory.mktemp("hub"))
    yield hub
    stop_hub(hub)


@pytest.fixture(scope="module")
def tokens(hub):
    return {user: hub.token_for(user) for user in ("alice", "bob", "carol", "admin")}


def wait_deployed(hub, name: str, token: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        record = hub.service(f"api/deployments/{name}", token).json()
        if record["status"] in ("DEPLOYED", "FAILED"):
            return record
        assert time.monotonic() < deadline, record
        time.sleep(0.5)


def test_requests_without_a_valid_token_are_refused(hub, tokens):
    assert hub.service("api/deployments", None).status_code in (401, 403)
    assert hub.service("api/deployments", "forged-" + "0" * 32).status_code in (401, 403)
    expiring = hub.token_for("bob", expires_in=1)
    assert hub.service("api/deployments", expiring).status_code == 200
    time.sleep(TOKEN_CACHE_SECONDS + 1.5)  # expired, and out of the service's token cache
    assert hub.service("api/deployments", expiring).status_code in (401, 403)
    response = httpx.post(
        f"{hub.url}services/kz/kz/v1/chat/completions",
        json={"model": "smollm2", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code in (401, 403)
    # the service serves the kz API only: no kernels or files of the service for anyone
    kernels = httpx.get(
        f"{hub.url}services/kz/api/kernels", headers={"Authorization": f"token {tokens['bob']}"}
    )
    assert kernels.status_code == 403
    # what changes the machine for everyone is for admins
    install = hub.service("api/engines/mlx/install", tokens["bob"], "POST")
    assert install.status_code == 403 and "Only an admin can install engines" in install.text
    delete = hub.service("api/models/org/repo", tokens["bob"], "DELETE")
    assert delete.status_code == 403 and "Only an admin can delete cached models" in delete.text


def test_a_shared_deployment_across_users(hub, tokens):
    alice, bob, carol, admin = (tokens[u] for u in ("alice", "bob", "carol", "admin"))
    shared = hub.service(
        "api/deployments", alice, "POST", json={"model": "smollm2", "share": "all"}
    )
    assert shared.status_code == 202, shared.text
    assert shared.json()["owner"] == "alice" and shared.json()["visibility"] == "all"
    # under the hub's 512 MiB per deployment, fewer parallel requests than the planner's 8
    assert shared.json()["request"]["parallel"] < 8
    secret = hub.service(
        "api/deployments",
        alice,
        "POST",
        json={"model": "smollm2", "name": "secret", "context_length": 1024},
    )
    assert secret.status_code == 202, secret.text
    assert wait_deployed(hub, "smollm2", alice)["status"] == "DEPLOYED"
    assert wait_deployed(hub, "secret", alice)["status"] == "DEPLOYED"

    # limits: a third deployment, and one over the memory limit
    third = hub.service("api/deployments", alice, "POST", json={"model": "smollm2", "name": "x"})
    assert third.status_code == 403 and "max_deployments_per_user" in third.json()["message"]
    big = hub.service(
        "api/deployments",
        bob,
        "POST",
        json={"model": "smollm2", "name": "big", "context_length": 8192, "parallel": 8},
    )  # the user's own number of parallel requests is not lowered to fit
    assert big.status_code == 403 and "allowed per deployment" in big.json()["message"]

    # bob, in his own kernel, with the magics unchanged
    server = hub.start_server("bob")
    kernel = httpx.post(
        server + "api/kernels", json={"name": "python3"}, headers={"Authorization": f"token {bob}"}
    ).json()
    out = asyncio.run(bob_session(server, bob, kernel["id"]))
    ps, chat, stop, stop_secret, deploy_taken, usage, batched = out
    assert "smollm2" in ps and "alice" in ps and "all" in ps and "secret" not in ps, ps
    assert "Paris" in chat
    assert "Only its owner (alice) or an admin can stop 'smollm2'." in stop
    assert "No deployment named 'secret'" in stop_secret
    assert "taken by another user's deployment" in deploy_taken
    assert "Paris" in batched and "Rome" in batched, batched

    # tokens per user and deployment: bob's chat, and one of alice's whose usage she saw
    question = [{"role": "user", "content": "What is the capital of France?"}]
    reply = hub.service("v1/chat/completions", alice, "POST", json={
        "model": "secret", "messages": question, "max_tokens": 8, "temperature": 0
    }).json()  # fmt: skip
    assert re.search(r"bob +smollm2 +1 +\d+ +\d+", usage) and "alice" not in usage, usage
    assert "(admins see every user)" in usage  # bob sees his own
    rows = {
        (r["user"], r["deployment"]): r for r in hub.service("api/usage", admin).json()["usage"]
    }
    assert set(rows) == {("alice", "secret"), ("bob", "smollm2")}
    assert rows["alice", "secret"]["prompt_tokens"] == reply["usage"]["prompt_tokens"]
    assert rows["alice", "secret"]["completion_tokens"] == reply["usage"]["completion_tokens"]
    assert rows["bob", "smollm2"]["completion_tokens"] > 0  # his streamed chat, counted
    assert rows["bob", "smollm2"]["requests"] == 3  # and the batch's two rows
    refused = hub.service("metrics", bob)  # they name every user: for admins (and Prometheus)
    assert refused.status_code == 403 and "%kz usage" in refused.json()["message"]
    metrics = hub.service("metrics", admin).text
    assert samples(metrics, "kz_completion_tokens_total", user="bob", deployment="smollm2") > 0

    # sharing with a group: carol (in research) sees it, bob does not; unknown groups refused
    unknown = hub.service("api/deployments/secret", alice, "PATCH", json={"share": "group:nope"})
    assert unknown.status_code == 400 and "No hub group named 'nope'" in unknown.json()["message"]
    grouped = hub.service(
        "api/deployments/secret", alice, "PATCH", json={"share": "group:research"}
    )
    assert grouped.status_code == 200 and grouped.json()["visibility"] == "group:research"
    assert "secret" in [d["name"] for d in hub.service("api/deployments", carol).json()]
    assert "secret" not in [d["name"] for d in hub.service("api/deployments", bob).json()]
    assert (
        hub.service("api/deployments/secret", bob, "PATCH", json={"share": "all"}).status_code
        == 404
    )

    # an admin may stop anyone's deployment
    stopped = hub.service("api/deployments/smollm2", admin, "DELETE")
    assert stopped.status_code == 200 and stopped.json()["status"] == "STOPPED"
    assert hub.service("api/deployments/secret", alice, "DELETE").json()["status"] == "STOPPED"

    # the audit log: admins only, with the right users
    assert hub.service("api/audit", bob).status_code == 403
    entries = hub.service("api/audit", admin).json()
    actions = [(e["user"], e["action"], e["target"]) for e in entries]
    for expected in [
        ("bob", "admin-refused", "mlx"),
        ("alice", "deploy", "smollm2"),
        ("alice", "deploy", "secret"),
        ("alice", "deploy-refused", "x"),
        ("bob", "deploy-refused", "big"),
        ("bob", "stop-refused", "smollm2"),
        ("bob", "admin-refused", "metrics"),
        ("alice", "share", "secret"),
        ("admin", "stop", "smollm2"),
        ("alice", "stop", "secret"),
    ]:
        assert expected in actions, (expected, actions)
    assert next(e for e in entries if e["action"] == "deploy")["share"] == "all"


async def bob_session(server: str, token: str, kernel_id: str) -> list[str]:
    """Bob's magics: ps, chat, three refusals, usage and a batch; the text of each cell."""
    cells = [
        "%load_ext kz_jupyter\n%kz ps",
        "%kz chat smollm2 'What is the capital of France? Answer in one word.' --temperature 0 "
        "--max-tokens 24",
        "%kz stop smollm2",
        "%kz stop secret",
        "%kz deploy smollm2 --name secret",
        "%kz usage",
        # a batch over alice's shared deployment (answers cached where this test alone looks)
        "import os, tempfile; os.environ['KZ_BATCH_CACHE'] = tempfile.mkdtemp()\n"
        "countries = ['France', 'Italy']\n"
        "%kz batch smollm2 countries 'What is the capital of {text}? Answer in one word.' "
        "--max-tokens 8",
    ]
    texts = []
    async with KernelSession(server, token, kernel_id) as session:
        for cell in cells:
            outputs = await session.execute(cell)
            texts.append(outputs.out + outputs.err + "\n".join(outputs.texts))
    return texts
