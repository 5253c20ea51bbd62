"""Downloads without deploying: pull jobs that run off the event loop and report progress."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from dataclasses import dataclass, field

from kz_jupyter.models.hub import HubError
from kz_jupyter.models.local_files import ModelNotFoundError
from kz_jupyter.planning.planner import PlanError
from kz_jupyter.planning.provisioning import fetch
from kz_jupyter.server_ext.lifecycle.controller import Controller
from kz_jupyter.server_ext.lifecycle.deploy_request import DeployRequest

MAX_KEPT_JOBS = 100


@dataclass
class PullJob:
    """One download: its model, progress, and outcome."""

    job_id: str
    model: str
    status: str = "running"
    done: int = 0
    total: int = 0
    plan: dict | None = None
    error: dict | None = None
    started_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict:
        """Return JSON-ready data."""
        return dataclasses.asdict(self)


class PullJobs:
    """Starts and keeps pull jobs; the newest MAX_KEPT_JOBS are remembered."""

    def __init__(self, controller: Controller):
        self.controller = controller
        self.jobs: dict[str, PullJob] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task] = set()

    def start(self, request: DeployRequest, redownload: bool = False) -> PullJob:
        """Start downloading what a deployment of request would need."""
        job = PullJob(job_id=str(next(self._ids)), model=request.options.model)
        self.jobs[job.job_id] = job
        for old in list(self.jobs)[:-MAX_KEPT_JOBS]:
            del self.jobs[old]
        task = asyncio.create_task(self._run(job, request, redownload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def _run(self, job: PullJob, request: DeployRequest, redownload: bool) -> None:
        """Plan (files for this hardware), download with progress, verify."""

        def report(done: int, total: int) -> None:
            job.done, job.total = done, total

        blocking = self.controller.runner.blocking
        try:
            plan, source = await blocking(self.controller.plan, request)
            job.plan, job.total = plan.to_dict(), plan.download_bytes
            plan = await blocking(fetch, plan, source, report, redownload)
            job.plan, job.status = plan.to_dict(), "done"
            job.done = job.total
        except (PlanError, ModelNotFoundError) as error:
            job.status, job.error = "failed", {"code": error.code.value, "message": str(error)}
        except HubError as error:
            job.status, job.error = "failed", {"code": None, "message": str(error)}
        except Exception as error:  # an unexpected bug still ends the job with a message
            self.controller.log.exception("pull of %s failed", job.model)
            job.status = "failed"
            job.error = {"code": "RUNTIME_ERROR", "message": f"{type(error).__name__}: {error}"}
