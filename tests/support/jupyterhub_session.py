"""A real JupyterHub on loopback for the tests: configurable-http-proxy (npm), the dummy
authenticator with test users, local process spawner, and kz as a managed service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from kz_jupyter.engines.process import free_port
from tests.support.paths import ROOT

CHP = ROOT / ".hub-tools" / "node_modules" / ".bin" / "configurable-http-proxy"
TESTER_TOKEN = "tester-" + os.urandom(16).hex()  # the test's own admin service

CONFIG = """
import sys
c = get_config()  # noqa
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = [{chp!r}]
c.JupyterHub.db_url = "sqlite:///{folder}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{folder}/cookie_secret"
c.JupyterHub.pid_file = "{folder}/jupyterhub.pid"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allowed_users = {{"alice", "bob", "carol"}}
c.Authenticator.admin_users = {{"admin"}}
c.JupyterHub.load_groups = {{"research": {{"users": ["carol"]}}}}
c.JupyterHub.spawner_class = "simple"
c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
c.Spawner.args = {spawner_args!r}
c.Spawner.default_url = "/lab"
# Kernels find the kz service from their environment; their server's token may use it.
c.Spawner.environment = {{"KZ_SERVER_URL": "http://127.0.0.1:{port}/services/kz/",
                          "KZ_ENGINE_ENVS_DIR": {engines!r}}}
c.Spawner.server_token_scopes = ["users:activity!user", "access:servers!server",
                                 "access:services!service=kz"]
c.JupyterHub.services = [
    {{
        "name": "kz",
        "url": "http://127.0.0.1:{service_port}",
        "command": [sys.executable, "-m", "kz_jupyter.server_ext.access.hub_service",
                    "--KzApp.state_dir={folder}/kz-state", "--KzApp.max_deployments_per_user=2",
                    "--KzApp.max_memory_per_deployment=0.5"],
        "environment": {{"KZ_ENGINE_ENVS_DIR": {engines!r}}},
        "oauth_no_confirm": True,
    }},
    {{"name": "tester", "api_token": {tester!r}}},
]
c.JupyterHub.load_roles = [
    {{"name": "user", "scopes": ["self", "access:services!service=kz"]}},
    {{"name": "kz-service", "services": ["kz"], "scopes": ["read:users", "read:groups"]}},
    {{"name": "admin", "users": ["admin"], "services": ["tester"]}},
]
"""


@dataclass
class Hub:
    """A running hub: its public URL, and the admin API through the tester service."""

    url: str
    process: subprocess.Popen
    folder: Path

    def api(self, method: str, path: str, **kwargs) -> httpx.Response:
        """Call the hub's REST API as the tester (an admin service)."""
        headers = {"Authorization": f"token {TESTER_TOKEN}"}
        return httpx.request(
            method, f"{self.url}hub/api/{path}", headers=headers, timeout=30, **kwargs
        )

    def token_for(self, user: str, **options) -> str:
        """A new API token of a user (options: expires_in, scopes...)."""
        response = self.api("POST", f"users/{user}/tokens", json=options)
        assert response.status_code == 201, response.text
        return response.json()["token"]

    def start_server(self, user: str, timeout: float = 120) -> str:
        """Spawn a user's single-user server; its URL once it is ready."""
        self.api("POST", f"users/{user}")  # created on first use
        response = self.api("POST", f"users/{user}/server")
        assert response.status_code in (201, 202), response.text
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            servers = self.api("GET", f"users/{user}").json().get("servers", {})
            if servers.get("", {}).get("ready"):
                return f"{self.url}user/{user}/"
            time.sleep(0.5)
        raise AssertionError(f"{user}'s server did not start in {timeout} s")

    def service(self, path: str, token: str | None, method: str = "GET", **kwargs):
        """Call the kz service through the hub's proxy (token None: no Authorization)."""
        headers = {"Authorization": f"token {token}"} if token else {}
        url = f"{self.url}services/kz/kz/{path}"
        return httpx.request(method, url, headers=headers, timeout=60, **kwargs)


def start_hub(folder: Path) -> Hub:
    """Write the config, start the hub, wait until it and the kz service answer."""
    assert CHP.exists(), "configurable-http-proxy is missing: make setup installs it (npm)"
    port, hub_port, proxy_api_port, service_port = (free_port("127.0.0.1") for _ in range(4))
    spawner_args = ["--allow-root"] if os.geteuid() == 0 else []
    engines = os.environ.get("KZ_ENGINE_ENVS_DIR", str(ROOT / ".engines"))
    config = CONFIG.format(
        port=port, hub_port=hub_port, proxy_api_port=proxy_api_port, service_port=service_port,
        chp=str(CHP), folder=folder, spawner_args=spawner_args, engines=engines,
        tester=TESTER_TOKEN,
    )  # fmt: skip
    (folder / "jupyterhub_config.py").write_text(config)
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(folder / "runtime")}
    env.pop("KZ_SERVER_URL", None)
    log = open(folder / "jupyterhub.log", "w")  # noqa: SIM115 - kept open for the hub's life
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", str(folder / "jupyterhub_config.py")],
        cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    hub = Hub(f"http://127.0.0.1:{port}/", process, folder)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, (folder / "jupyterhub.log").read_text()[-3000:]
        try:
            if hub.service("api/deployments", hub.token_for("admin")).status_code == 200:
                return hub
        except (httpx.HTTPError, AssertionError, json.JSONDecodeError):
            pass
        time.sleep(1)
    stop_hub(hub)
    raise AssertionError(
        "the hub or its kz service did not start:\n"
        + (folder / "jupyterhub.log").read_text()[-3000:]
    )


def stop_hub(hub: Hub) -> None:
    """Stop the hub (it stops the service and the spawned servers)."""
    hub.process.terminate()
    try:
        hub.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        hub.process.kill()
