"""REST API for engines: which can run here and from where; install one into its environment."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from dataclasses import dataclass, field

from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_path_join
from tornado import web

from kz_jupyter.planning.engine_contract import engine_availability, load_engines
from kz_jupyter.planning.engine_environments import EngineEnvironments
from kz_jupyter.planning.engine_install import EngineInstallError, install_engine
from kz_jupyter.server_ext.api.base import KzAPIHandler
from kz_jupyter.server_ext.api.deployments import NAME

KEPT_LINES = 200


@dataclass
class InstallJob:
    """One engine installation: its progress lines, bytes of the current download, outcome."""

    engine: str
    status: str = "running"
    lines: list[str] = field(default_factory=list)
    line_count: int = 0  # lines reported so far; `lines` keeps the newest KEPT_LINES
    done: int = 0
    total: int = 0
    program: str = ""  # what runs the installed engine: its interpreter, or its binary
    error: str = ""
    started_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict:
        """Return JSON-ready data."""
        return dataclasses.asdict(self)

    def add_line(self, line: str) -> None:
        """Keep a progress line (the newest KEPT_LINES)."""
        self.lines = [*self.lines[-(KEPT_LINES - 1) :], line]
        self.line_count += 1

    def add_bytes(self, done: int, total: int) -> None:
        """Note the current download's progress."""
        self.done, self.total = done, total


class EngineInstalls:
    """Runs at most one installation per engine, off the event loop."""

    def __init__(self, environments: EngineEnvironments):
        self.environments = environments
        self.jobs: dict[str, InstallJob] = {}
        self._tasks: set[asyncio.Task] = set()

    def start(self, engine: str) -> InstallJob:
        """Start installing engine, or return the installation already running."""
        running = self.jobs.get(engine)
        if running is not None and running.status == "running":
            return running
        job = self.jobs[engine] = InstallJob(engine=engine)
        task = asyncio.create_task(self._run(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def _run(self, job: InstallJob) -> None:
        """Install in a worker thread; end the job with the interpreter or the reason."""
        try:
            job.program = await asyncio.to_thread(
                install_engine, job.engine, self.environments, job.add_line, job.add_bytes
            )
            job.status = "done"
        except EngineInstallError as error:
            job.status, job.error = "failed", str(error)
        except Exception as error:  # an unexpected failure still ends the job with a message
            job.status, job.error = "failed", f"{type(error).__name__}: {error}"


class EnginesAPIHandler(KzAPIHandler):
    """Base for engine handlers."""

    @property
    def installs(self) -> EngineInstalls:
        """This server's engine installations."""
        return self.settings["kz_engine_installs"]

    def known_or_404(self, name: str) -> None:
        """Answer 404 for an engine no package registers."""
        engines = load_engines()
        if name not in engines:
            known = ", ".join(sorted(engines))
            raise web.HTTPError(404, f"No engine named '{name}'. Known engines: {known}.")


class EnginesHandler(EnginesAPIHandler):
    """GET /kz/api/engines: every registered engine, usable or not, with why and from where."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """Probe each engine's environment (off the event loop)."""
        report = await asyncio.to_thread(engine_availability, self.controller.environments)
        for entry in report:
            job = self.installs.jobs.get(entry["name"])
            entry["install"] = job.to_dict() if job else None
        self.finish(json.dumps(report))


class EngineInstallHandler(EnginesAPIHandler):
    """POST /kz/api/engines/NAME/install starts an installation (202); GET shows its progress."""

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        """Install the engine into its own environment, in the background (admins only: it
        changes the machine for everyone)."""
        self.known_or_404(name)
        self.admin_or_403(
            "install engines", name, f"ask an admin to run %kz engines install {name}"
        )
        job = self.installs.start(name)
        self.audit.record(self.viewer.name, "engine-install", name)
        self.set_status(202)
        self.set_header("Location", url_path_join(self.base_url, "kz/api/engines", name, "install"))
        self.finish(json.dumps(job.to_dict()))

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        """The engine's latest installation."""
        self.known_or_404(name)
        job = self.installs.jobs.get(name)
        if job is None:
            raise web.HTTPError(404, f"No installation of '{name}' was started on this server.")
        self.finish(json.dumps(job.to_dict()))


ENGINE_HANDLERS = [
    (r"/kz/api/engines", EnginesHandler),
    (rf"/kz/api/engines/{NAME}/install", EngineInstallHandler),
]
