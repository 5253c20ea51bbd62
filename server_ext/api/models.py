"""REST API for models: search, plan, pull (download without deploying), list and delete."""

from __future__ import annotations

import dataclasses
import json

from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_path_join
from tornado import web

from kz_jupyter.models.cache import CacheError, delete_cached, list_cached, plan_deletion
from kz_jupyter.models.hub import HubError, search_hub
from kz_jupyter.models.local_files import ModelNotFoundError
from kz_jupyter.models.presets import builtin_presets
from kz_jupyter.planning.planner import PlanError
from kz_jupyter.server_ext.access.quotas import QuotaError
from kz_jupyter.server_ext.api.base import KzAPIHandler
from kz_jupyter.server_ext.lifecycle.deploy_request import (
    DeployRequest,
    DeployRequestError,
    parse_deploy_request,
)
from kz_jupyter.server_ext.lifecycle.pulls import PullJobs

MAX_QUERY = 200


class ModelsAPIHandler(KzAPIHandler):
    """Base for model handlers: the pull jobs and Hub settings."""

    @property
    def pulls(self) -> PullJobs:
        """The pull jobs of this server."""
        return self.settings["kz_pulls"]

    def deploy_request(self, body: object) -> DeployRequest:
        """Validate a body like a deploy request's, answering 400 when it is not one."""
        try:
            return parse_deploy_request(body, self.controller.model_roots)
        except DeployRequestError as error:
            raise web.HTTPError(error.status, str(error)) from None

    def users_of(self, name: str, paths: tuple[str, ...]) -> list[str]:
        """Active deployments of the model called name, or whose files lie under paths."""
        users = set()
        for deployment in self.controller.list():
            plan = deployment.plan
            model_path = plan.model_path if plan else ""
            if (
                deployment.status.is_active
                and plan
                and (plan.repo_id == name or (model_path and model_path.startswith(paths)))
            ):
                users.add(deployment.name)
        return sorted(users)


class SearchHandler(ModelsAPIHandler):
    """GET /kz/api/search?q=TEXT: Hub models, presets and local models matching TEXT; with no
    TEXT, every preset and local model (what the sidebar's model browser opens with)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """Search the Hub (when reachable) and what is already here."""
        query = self.get_argument("q", "").strip()
        if len(query) > MAX_QUERY:
            raise web.HTTPError(400, f"Give a shorter search text ({MAX_QUERY} at most): ?q=gemma")
        settings = self.controller.hub_settings()
        hub, hub_error = [], None
        try:
            if query:
                found = await self.controller.runner.blocking(search_hub, query, settings)
                hub = [dataclasses.asdict(m) for m in found]
        except HubError as error:
            hub_error = str(error)
        wanted = query.lower()
        local = [
            m.to_dict()
            for m in await self.controller.runner.blocking(list_cached, settings)
            if wanted in m.name.lower()
        ]
        presets = [
            p.to_dict()
            for p in builtin_presets().values()
            if wanted in p.name.lower() or wanted in p.model.lower()
        ]
        self.finish(
            json.dumps(
                {
                    "query": query,
                    "hub": hub,
                    "hub_error": hub_error,
                    "local": local,
                    "presets": presets,
                }
            )
        )


class PlanHandler(ModelsAPIHandler):
    """POST /kz/api/plan: the plan a deploy would follow, without deploying or downloading."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Answer the plan, or 422 with the error code (e.g. OOM) and what to change."""
        request = self.deploy_request(self.json_body())
        try:
            plan, _ = await self.controller.runner.blocking(self.controller.plan, request)
        except (PlanError, ModelNotFoundError) as error:
            self.set_status(422)
            return self.finish(json.dumps({"code": error.code.value, "message": str(error)}))
        except HubError as error:
            self.set_status(404 if not error.offline else 503)
            return self.finish(json.dumps({"message": str(error)}))
        self.finish(json.dumps(plan.to_dict()))


class PullsHandler(ModelsAPIHandler):
    """POST /kz/api/pulls starts a download (202); GET lists pull jobs."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """List recent pull jobs."""
        self.finish(json.dumps([job.to_dict() for job in self.pulls.jobs.values()]))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Start downloading the files a deployment would use here; 202 with the job (for
        users who may deploy)."""
        try:
            self.policy.check_may_deploy(self.viewer)
        except QuotaError as error:
            raise web.HTTPError(403, str(error)) from None
        body = self.json_body()
        request = self.deploy_request(body)
        redownload = body.get("redownload", False)
        if not isinstance(redownload, bool):
            raise web.HTTPError(400, "'redownload' takes true or false.")
        job = self.pulls.start(request.with_options(force=True), redownload=redownload)
        self.set_status(202)
        self.set_header("Location", url_path_join(self.base_url, "kz/api/pulls", job.job_id))
        self.finish(json.dumps(job.to_dict()))


class PullHandler(ModelsAPIHandler):
    """GET /kz/api/pulls/ID: one pull job's progress and outcome."""

    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        """Show one pull job."""
        job = self.pulls.jobs.get(job_id)
        if job is None:
            raise web.HTTPError(404, f"No pull job {job_id}.")
        self.finish(json.dumps(job.to_dict()))


class ModelsHandler(ModelsAPIHandler):
    """GET /kz/api/models: cached and pip-shipped models, with the deployments using each."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """List the models on this machine."""
        settings = self.controller.hub_settings()
        models = await self.controller.runner.blocking(list_cached, settings)
        listed = [
            model.to_dict() | {"used_by": self.users_of(model.name, (model.path,))}
            for model in models
        ]
        self.finish(json.dumps(listed))


class ModelHandler(ModelsAPIHandler):
    """DELETE /kz/api/models/REPO_ID: ?dry_run=true plans, without it deletes (409 if in use)."""

    @web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        """Plan or carry out deleting a cached model (deleting: admins only, the cache is
        shared)."""
        settings = self.controller.hub_settings()
        dry_run = self.flag_argument("dry_run", False)
        if not dry_run:
            self.admin_or_403(
                "delete cached models", name, f"ask an admin to run %kz rm {name} --yes"
            )
        try:
            plan = await self.controller.runner.blocking(plan_deletion, name, settings)
        except CacheError as error:
            raise web.HTTPError(404, str(error)) from None
        using = self.users_of(name, plan.paths)
        if using:
            raise web.HTTPError(
                409,
                f"'{name}' is used by {', '.join(using)}: stop it first (%kz stop NAME).",
            )
        if not dry_run:
            plan = await self.controller.runner.blocking(delete_cached, name, settings)
            self.audit.record(self.viewer.name, "model-delete", name, freed=plan.freed_bytes)
        self.finish(json.dumps(plan.to_dict() | {"deleted": not dry_run}))


MODEL_HANDLERS = [
    (r"/kz/api/search", SearchHandler),
    (r"/kz/api/plan", PlanHandler),
    (r"/kz/api/pulls", PullsHandler),
    (r"/kz/api/pulls/(?P<job_id>[0-9]+)", PullHandler),
    (r"/kz/api/models", ModelsHandler),
    (r"/kz/api/models/(?P<name>[^/]+/[^/]+|[^/]+)", ModelHandler),
]
