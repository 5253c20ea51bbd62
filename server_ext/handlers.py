"""REST API handlers: deployments, their logs, and the hardware profile."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.iostream import StreamClosedError

from kz_jupyter.engine_api import get_engine
from kz_jupyter.hardware import probe_hardware
from kz_jupyter.hub import HubError
from kz_jupyter.model_files import ModelNotFoundError
from kz_jupyter.planner import SLOT_LADDER, PlanError
from kz_jupyter.server_ext.access import (
    EVERYONE,
    Viewer,
    can_change,
    can_see,
    viewer_of,
    visibility,
)
from kz_jupyter.server_ext.audit import AuditLog
from kz_jupyter.server_ext.controller import (
    Controller,
    DeployRequest,
    DeployRequestError,
    parse_deploy_request,
    parse_share_field,
)
from kz_jupyter.server_ext.quotas import DeployPolicy, QuotaError
from kz_jupyter.server_ext.records import Deployment
from kz_jupyter.states import classify_log_lines, issue_lines

AUTH_RESOURCE = "kz"
MAX_LOG_LINES = 10_000
HEARTBEAT_SECONDS = 2.0  # a quiet log stream sends a blank line this often
FLAG_VALUES = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


class KzAPIHandler(APIHandler):
    """Base for kz handlers: Jupyter auth, the controller, JSON in and out."""

    auth_resource = AUTH_RESOURCE

    @property
    def controller(self) -> Controller:
        """The controller that owns deployment records."""
        return self.settings["kz_controller"]

    def log_exception(self, typ, value, tb) -> None:
        """Refusals (4xx) go to the server's own log as warnings (tornado would log them on its
        logger, which in a kernel reaches the cell); faults keep tornado's error with a trace."""
        if isinstance(value, web.HTTPError) and value.status_code < 500:
            message = value.log_message % value.args if value.log_message else ""
            self.log.warning("%d %s: %s", value.status_code, self._request_summary(), message)
            return
        super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs) -> None:
        """Errors as JSON {"message", "reason"}, the message as written: tornado doubles each %
        of a message given without arguments, and Jupyter's handler would show it doubled
        ("%%kz ps")."""
        if status_code == 405:  # RFC 9110: say which methods the route takes
            self.set_header("Allow", ", ".join(self.allowed_methods()))
        error = (kwargs.get("exc_info") or (None, None, None))[1]
        if not isinstance(error, web.HTTPError) or not error.log_message:
            return super().write_error(status_code, **kwargs)
        self.set_header("Content-Type", "application/json")
        message = error.log_message % error.args
        self.finish(json.dumps({"message": message, "reason": error.reason}))

    @classmethod
    def allowed_methods(cls) -> list[str]:
        """The HTTP methods this handler implements."""
        return [
            method
            for method in cls.SUPPORTED_METHODS
            if getattr(cls, method.lower()) is not getattr(web.RequestHandler, method.lower())
        ]

    @property
    def log(self) -> logging.Logger:
        """The server's own log (Jupyter's default is the process's first application, which in
        a kernel running the embedded server is the kernel's)."""
        return self.settings["kz_log"]

    def flag_argument(self, name: str, default: bool) -> bool:
        """A yes/no query argument (true/false, 1/0, yes/no); 400 for any other value."""
        value = self.get_query_argument(name, None)
        if value is None:
            return default
        if value.lower() not in FLAG_VALUES:
            raise web.HTTPError(400, f"'{name}' takes true or false, not '{value[:40]}'.")
        return FLAG_VALUES[value.lower()]

    def json_body(self) -> object:
        """Parse the request body as JSON, answering 400 when it is not."""
        try:
            return json.loads(self.request.body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise web.HTTPError(400, f"The request body is not valid JSON: {error}") from None

    @property
    def viewer(self) -> Viewer:
        """Who makes this request."""
        return viewer_of(self.current_user)

    @property
    def audit(self) -> AuditLog:
        """The audit log."""
        return self.settings["kz_audit"]

    @property
    def policy(self) -> DeployPolicy:
        """The admin's limits."""
        return self.settings["kz_policy"]

    def deployment_or_404(self, name: str) -> Deployment:
        """Return the named deployment if this user may see it; 404 otherwise (another
        user's private deployment is not revealed)."""
        deployment = self.controller.get(name)
        if deployment is None or not can_see(self.viewer, deployment.owner, deployment.shared_with):
            raise web.HTTPError(404, f"No deployment named '{name}'. List them with %kz ps.")
        return deployment

    def changeable_or_403(self, name: str, action: str) -> Deployment:
        """Return the named deployment if this user may change it; 403 (audited) otherwise."""
        deployment = self.deployment_or_404(name)
        if not can_change(self.viewer, deployment.owner):
            self.audit.record(self.viewer.name, f"{action}-refused", name, owner=deployment.owner)
            raise web.HTTPError(
                403, f"Only its owner ({deployment.owner}) or an admin can {action} '{name}'."
            )
        return deployment

    def admin_or_403(self, action: str, target: str, remedy: str = "") -> None:
        """Refuse (and audit) a request that only admins may make."""
        if not self.viewer.admin:
            self.audit.record(self.viewer.name, "admin-refused", target, wanted=action)
            raise web.HTTPError(
                403, f"Only an admin can {action}" + (f": {remedy}." if remedy else ".")
            )

    async def check_groups(self, shared_with: tuple[str, ...]) -> None:
        """Every group a deployment is shared with must exist in the hub."""
        groups = [g for g in shared_with if g != EVERYONE]
        if not groups:
            return
        group_exists = getattr(self.identity_provider, "group_exists", None)
        if group_exists is None:
            raise web.HTTPError(
                400, "Sharing with a group needs JupyterHub: share with all, or keep it private."
            )
        for group in groups:
            if not await group_exists(group):
                raise web.HTTPError(400, f"No hub group named '{group}'.")


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
            await self.check_groups(request.share)
            self.policy.check_may_deploy(viewer)
            running = [d for d in self.controller.list() if d.owner == viewer.name]
            self.policy.check_count(viewer, sum(d.status.is_active for d in running))
            request = await self.check_memory(viewer, request)
            deployment = await self.controller.deploy(request, owner=viewer.name)
        except DeployRequestError as error:
            raise web.HTTPError(error.status, str(error)) from None
        except QuotaError as error:
            self.audit.record(viewer.name, "deploy-refused", request.name, reason=str(error))
            raise web.HTTPError(403, str(error)) from None
        self.audit.record(
            viewer.name, "deploy", deployment.name, model=request.model,
            share=visibility(request.share),
        )  # fmt: skip
        self.set_status(202)
        self.set_header(
            "Location", url_path_join(self.base_url, "kz/api/deployments", deployment.name)
        )
        self.finish(json.dumps(deployment.to_dict()))

    async def check_memory(self, viewer: Viewer, request: DeployRequest) -> DeployRequest:
        """With a per-deployment memory limit, plan first and refuse what is over it (a plan
        that fails here fails the deployment later, with its own message). A plan over the
        limit only by its parallel requests gets fewer, unless the user chose them: the
        request comes back with that number."""
        if viewer.admin or not self.policy.max_memory:
            return request
        fewer = () if request.overrides.parallel is not None else SLOT_LADDER
        try:
            plan, _ = await self.controller.runner.blocking(self.controller.plan, request)
            for slots in (n for n in fewer if n < plan.parallel):
                if plan.memory.get("total", 0) <= self.policy.max_memory:
                    break
                overrides = dataclasses.replace(request.overrides, parallel=slots)
                request = dataclasses.replace(request, overrides=overrides)
                plan, _ = await self.controller.runner.blocking(self.controller.plan, request)
        except (PlanError, ModelNotFoundError, HubError):
            return request
        self.policy.check_memory(viewer, int(plan.memory.get("total", 0)))
        return request


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
        """Stop the deployment and end its engine processes (owner or admin)."""
        self.changeable_or_403(name, "stop")
        deployment = await self.controller.stop(name)
        self.audit.record(self.viewer.name, "stop", name, owner=deployment.owner)
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
        if self.flag_argument("follow", False):
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


class UnknownRouteHandler(KzAPIHandler):
    """Any other path under /kz/api or /kz/v1: a JSON 404 naming the description (after auth)."""

    async def prepare(self) -> None:
        """Refuse an unauthenticated request (403), else answer 404 whatever the method."""
        await super().prepare()
        if self.current_user is None:
            raise web.HTTPError(403, "Sign in, or send 'Authorization: token ...'.")
        raise web.HTTPError(
            404,
            f"No kz-jupyter route {self.request.method} {self.request.path}: "
            "the routes are listed at /kz/api/openapi.json.",
        )


NAME = r"(?P<name>[^/]+)"
API_HANDLERS = [
    (r"/kz/api/deployments", DeploymentsHandler),
    (rf"/kz/api/deployments/{NAME}", DeploymentHandler),
    (rf"/kz/api/deployments/{NAME}/logs", LogsHandler),
    (rf"/kz/api/deployments/{NAME}/restart", RestartHandler),
    (r"/kz/api/hardware", HardwareHandler),
    (r"/kz/api/audit", AuditHandler),
]
