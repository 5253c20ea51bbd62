"""The base of every kz REST handler (Jupyter auth, the controller, JSON errors, who asks and
what they may see or change), and the JSON 404 for any other kz path."""

from __future__ import annotations

import json
import logging

from jupyter_server.base.handlers import APIHandler
from tornado import web

from kz_jupyter.server_ext.access.audit import AuditLog
from kz_jupyter.server_ext.access.hub_identity import AUTH_RESOURCE
from kz_jupyter.server_ext.access.quotas import DeployPolicy
from kz_jupyter.server_ext.access.sharing import EVERYONE, Viewer, can_change, can_see, viewer_of
from kz_jupyter.server_ext.lifecycle.controller import Controller
from kz_jupyter.server_ext.lifecycle.records import Deployment

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
