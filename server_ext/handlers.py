"""REST API handlers: deployments, their logs, and the hardware profile."""

from __future__ import annotations

import asyncio
import json
import time

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.iostream import StreamClosedError

from kz_jupyter.engine_api import get_engine
from kz_jupyter.hardware import probe_hardware
from kz_jupyter.server_ext.controller import Controller, DeployRequestError, parse_deploy_request
from kz_jupyter.states import classify_log_lines, issue_lines

AUTH_RESOURCE = "kz"
MAX_LOG_LINES = 10_000
HEARTBEAT_SECONDS = 2.0  # a quiet log stream sends a blank line this often


class KzAPIHandler(APIHandler):
    """Base for kz handlers: Jupyter auth, the controller, JSON in and out."""

    auth_resource = AUTH_RESOURCE

    @property
    def controller(self) -> Controller:
        """The controller that owns deployment records."""
        return self.settings["kz_controller"]

    def json_body(self) -> object:
        """Parse the request body as JSON, answering 400 when it is not."""
        try:
            return json.loads(self.request.body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise web.HTTPError(400, f"The request body is not valid JSON: {error}") from None

    def deployment_or_404(self, name: str):
        """Return the named deployment, answering 404 when there is none."""
        deployment = self.controller.get(name)
        if deployment is None:
            raise web.HTTPError(404, f"No deployment named '{name}'. List them with %kz ps.")
        return deployment


class DeploymentsHandler(KzAPIHandler):
    """GET lists deployments; POST requests a new one (202, then watch its status)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """List every deployment."""
        self.finish(json.dumps([d.to_dict() for d in self.controller.list()]))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Accept a deploy request; the deployment proceeds in the background."""
        try:
            request = parse_deploy_request(self.json_body(), self.controller.model_roots)
            deployment = await self.controller.deploy(request)
        except DeployRequestError as error:
            raise web.HTTPError(error.status, str(error)) from None
        self.set_status(202)
        self.set_header(
            "Location", url_path_join(self.base_url, "kz/api/deployments", deployment.name)
        )
        self.finish(json.dumps(deployment.to_dict()))


class DeploymentHandler(KzAPIHandler):
    """GET shows one deployment; DELETE stops it."""

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        """Show one deployment with its status history."""
        self.finish(json.dumps(self.deployment_or_404(name).to_dict()))

    @web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        """Stop the deployment and end its engine processes."""
        self.deployment_or_404(name)
        deployment = await self.controller.stop(name)
        self.finish(json.dumps(deployment.to_dict()))


class RestartHandler(KzAPIHandler):
    """POST restarts a deployment: stop (when running), then deploy it again (202)."""

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        """Restart with the request the deployment was made with."""
        self.deployment_or_404(name)
        try:
            deployment = await self.controller.restart(name)
        except DeployRequestError as error:
            raise web.HTTPError(error.status, str(error)) from None
        self.set_status(202)
        self.finish(json.dumps(deployment.to_dict()))


class LogsHandler(KzAPIHandler):
    """GET the last lines of each replica's engine log, with detected issue lines."""

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        """Return {replica: {lines, issues}}; `?lines=N` bounds the tail (default 200).

        With `?follow=true`, stream NDJSON events {replica, line, issue}: the tail, then each
        new line as the engine writes it, until the deployment stops; a blank line every few
        seconds while the engine is quiet.
        """
        deployment = self.deployment_or_404(name)
        try:
            count = int(self.get_argument("lines", "200"))
        except ValueError:
            raise web.HTTPError(400, "'lines' must be an integer.") from None
        if not 1 <= count <= MAX_LOG_LINES:
            raise web.HTTPError(400, f"'lines' must be from 1 to {MAX_LOG_LINES}.")
        engine = (deployment.plan or {}).get("engine")
        patterns = get_engine(engine).log_patterns if engine else ()
        if self.get_argument("follow", "false").lower() in ("1", "true", "yes"):
            return await self._follow(name, count, patterns)
        logs = await self.controller.logs(name, count)
        replicas = {
            replica: {"lines": lines, "issues": issue_lines(lines, patterns)}
            for replica, lines in logs.items()
        }
        self.finish(json.dumps({"name": name, "replicas": replicas}))

    async def _follow(self, name: str, count: int, patterns) -> None:
        """Stream NDJSON events {replica, line, issue} until the deployment stops."""
        self.set_header("Content-Type", "application/x-ndjson")
        self.set_header("Cache-Control", "no-cache")
        self._client_gone = False
        quiet_since = time.monotonic()
        async for event in self.controller.follow_logs(name, count):
            if self._client_gone:
                return
            if event is None:
                if time.monotonic() - quiet_since < HEARTBEAT_SECONDS:
                    continue
                self.write("\n")  # a blank line: the follower may stop without waiting for a line
            else:
                replica, line = event
                code = classify_log_lines([line], patterns)
                issue = code.value if code else None
                self.write(json.dumps({"replica": replica, "line": line, "issue": issue}) + "\n")
            quiet_since = time.monotonic()
            try:
                await self.flush()
            except StreamClosedError:
                return
        self.finish()

    def on_connection_close(self) -> None:
        """Note that a follower went away, so its stream stops polling."""
        self._client_gone = True
        super().on_connection_close()


class HardwareHandler(KzAPIHandler):
    """GET the hardware profile of the machine the server runs on."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """Probe CPU, memory, GPUs and (unless ?engines=false) engines, off the event loop."""
        with_engines = self.get_query_argument("engines", "true").lower() != "false"
        profile = await asyncio.get_running_loop().run_in_executor(
            None, probe_hardware, self.controller.environments, with_engines
        )
        self.finish(json.dumps(profile.to_dict()))


NAME = r"(?P<name>[^/]+)"
API_HANDLERS = [
    (r"/kz/api/deployments", DeploymentsHandler),
    (rf"/kz/api/deployments/{NAME}", DeploymentHandler),
    (rf"/kz/api/deployments/{NAME}/logs", LogsHandler),
    (rf"/kz/api/deployments/{NAME}/restart", RestartHandler),
    (r"/kz/api/hardware", HardwareHandler),
]
