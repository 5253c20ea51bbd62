"""REST handlers for deployments (list, deploy, show, share, stop, restart, logs), the audit log
and the hardware profile."""

from __future__ import annotations

import asyncio
import json
import time

from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.iostream import StreamClosedError

from kz_jupyter.deploy_options import visibility
from kz_jupyter.log_issues import classify_log_lines, issue_lines
from kz_jupyter.planning.engine_contract import get_engine
from kz_jupyter.planning.hardware import probe_hardware
from kz_jupyter.server_ext.access.quotas import QuotaError
from kz_jupyter.server_ext.access.sharing import Viewer, can_see
from kz_jupyter.server_ext.api.base import KzAPIHandler
from kz_jupyter.server_ext.lifecycle.controller import Planned
from kz_jupyter.server_ext.lifecycle.deploy_request import (
    DeployRequest,
    DeployRequestError,
    parse_deploy_request,
    parse_share_field,
)
from kz_jupyter.states import ErrorCode

MAX_LOG_LINES = 10_000
HEARTBEAT_SECONDS = 2.0  # a quiet log stream sends a blank line this often


class DeploymentsHandler(KzAPIHandler):
    """GET lists deployments; POST requests a new one (202, then watch its status)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """List the deployments this user may see."""
        viewer = self.viewer
        visible = [d for d in self.controller.list() if can_see(viewer, d.owner, d.shared_with)]
        self.finish(json.dumps([d.to_dict() for d in visible]))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Accept a deploy request within the admin's limits; it proceeds in the background."""
        viewer = self.viewer
        try:
            request = parse_deploy_request(self.json_body(), self.controller.model_roots)
            await self.check_groups(request.options.share)
            self.policy.check_may_deploy(viewer)
            running = [d for d in self.controller.list() if d.owner == viewer.name]
            self.policy.check_count(viewer, sum(d.status.is_active for d in running))
            request, planned = await self.check_memory(viewer, request)
            deployment = await self.controller.deploy(request, viewer.name, planned, viewer.admin)
        except DeployRequestError as error:
            raise web.HTTPError(error.status, str(error)) from None
        except QuotaError as error:
            self.audit.record(viewer.name, "deploy-refused", request.name, reason=str(error))
            raise web.HTTPError(403, str(error)) from None
        self.audit.record(
            viewer.name, "deploy", deployment.name, model=request.options.model,
            share=visibility(request.options.share),
        )  # fmt: skip
        self.set_status(202)
        self.set_header(
            "Location", url_path_join(self.base_url, "kz/api/deployments", deployment.name)
        )
        self.finish(json.dumps(deployment.to_dict()))

    async def check_memory(
        self, viewer: Viewer, request: DeployRequest
    ) -> tuple[DeployRequest, Planned | None]:
        """With a per-deployment memory limit, plan first (fewer parallel requests when that
        is all it takes) and refuse what is over it; the deploy then uses this plan."""
        if viewer.admin or not self.policy.max_memory:
            return request, None
        request, planned = await self.controller.plan_within(request, self.policy.max_memory)
        if planned is not None:
            self.policy.check_memory(viewer, int(planned[0].memory.get("total", 0)))
        return request, planned


class DeploymentHandler(KzAPIHandler):
    """GET shows one deployment; PATCH changes who it is shared with; DELETE stops it."""

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        """Show one deployment with its status history."""
        self.finish(json.dumps(self.deployment_or_404(name).to_dict()))

    @web.authenticated
    @authorized
    async def patch(self, name: str) -> None:
        """Share with {"share": "private" | "all" | "group:NAME" | [...]} (owner or admin)."""
        self.changeable_or_403(name, "share")
        body = self.json_body()
        if not isinstance(body, dict) or "share" not in body:
            raise web.HTTPError(400, 'Send {"share": "private" | "all" | "group:NAME"}.')
        try:
            shared_with = parse_share_field(body)
        except DeployRequestError as error:
            raise web.HTTPError(400, str(error)) from None
        await self.check_groups(shared_with)
        deployment = self.controller.share(name, shared_with)
        self.audit.record(self.viewer.name, "share", name, share=visibility(shared_with))
        self.finish(json.dumps(deployment.to_dict()))

    @web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        """Stop the deployment and end its engine processes (owner or admin); with
        `forget=true`, also remove its record (its name is then free)."""
        forget = self.flag_argument("forget", False)
        action = "remove" if forget else "stop"
        self.changeable_or_403(name, action)
        stop = self.controller.forget if forget else self.controller.stop
        deployment = await stop(name)
        self.audit.record(self.viewer.name, action, name, owner=deployment.owner)
        self.finish(json.dumps(deployment.to_dict()))


class RestartHandler(KzAPIHandler):
    """POST restarts a deployment: stop (when running), then deploy it again (202)."""

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        """Restart with the request the deployment was made with (owner or admin)."""
        self.changeable_or_403(name, "restart")
        try:
            deployment = await self.controller.restart(name)
        except DeployRequestError as error:
            raise web.HTTPError(error.status, str(error)) from None
        self.audit.record(self.viewer.name, "restart", name, owner=deployment.owner)
        self.set_status(202)
        self.finish(json.dumps(deployment.to_dict()))


class LogsHandler(KzAPIHandler):
    """GET the last lines of each replica's engine log, with detected issue lines."""

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        """Return {replicas: {replica: {lines, issues}}, remedies: {code: what to do}};
        `?lines=N` bounds the tail (default 200).

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
        patterns = get_engine(deployment.plan.engine).log_patterns if deployment.plan else ()
        if self.flag_argument("follow", False):
            return await self._follow(name, count, patterns)
        logs = await self.controller.logs(name, count)
        replicas = {
            replica: {"lines": lines, "issues": issue_lines(lines, patterns)}
            for replica, lines in logs.items()
        }
        codes = {code for data in replicas.values() for _, code, _ in data["issues"]}
        remedies = {code: ErrorCode(code).remediation for code in sorted(codes)}
        self.finish(json.dumps({"name": name, "replicas": replicas, "remedies": remedies}))

    async def _follow(self, name: str, count: int, patterns) -> None:
        """Stream NDJSON events {replica, line, issue} until the deployment stops."""
        self.set_header("Content-Type", "application/x-ndjson")
        self.set_header("Cache-Control", "no-cache")
        await self.flush()  # the headers go now: a stream with no lines is still NDJSON
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


class AuditHandler(KzAPIHandler):
    """GET the audit log (admins only): ?limit=N, ?user=NAME."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """The latest actions, oldest first."""
        self.admin_or_403("read the audit log", "audit")
        try:
            limit = int(self.get_argument("limit", "200"))
        except ValueError:
            raise web.HTTPError(400, "'limit' must be an integer.") from None
        if not 1 <= limit <= MAX_LOG_LINES:
            raise web.HTTPError(400, f"'limit' must be from 1 to {MAX_LOG_LINES}.")
        user = self.get_argument("user", None)
        self.finish(json.dumps(self.audit.read(limit, user)))


class HardwareHandler(KzAPIHandler):
    """GET the hardware profile of the machine the server runs on."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """Probe CPU, memory, GPUs and (unless ?engines=false) engines, off the event loop."""
        with_engines = self.flag_argument("engines", True)
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
    (r"/kz/api/audit", AuditHandler),
]
