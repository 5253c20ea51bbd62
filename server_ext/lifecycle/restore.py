"""Bring stored deployments back after a server restart: adopt engines that still run under Ray,
restart the ones that should run, and say what cannot be restored."""

from __future__ import annotations

import asyncio

from kz_jupyter.engines.pool import PlacementError
from kz_jupyter.server_ext.lifecycle.controller import Controller
from kz_jupyter.server_ext.lifecycle.deploy_request import DeployRequestError, parse_deploy_request
from kz_jupyter.server_ext.lifecycle.records import Deployment
from kz_jupyter.server_ext.lifecycle.replicas import EngineFailure
from kz_jupyter.states import DeploymentStatus, ErrorCode

SERVING = (DeploymentStatus.DEPLOYED, DeploymentStatus.ERROR)


async def restore_deployments(controller: Controller) -> None:
    """Load the stored records; bring back every deployment that should be running."""
    if controller.store is None:
        return
    for deployment in controller.store.load():
        deployment.progress = None
        controller.keep(deployment)
        if not deployment.wanted or not deployment.status.is_active:
            continue
        if deployment.status in SERVING and deployment.plan:
            controller.track_task(deployment.name, _bring_back(controller, deployment))
        else:
            controller.track_task(deployment.name, _deploy_again(controller, deployment))


async def _deploy_again(controller: Controller, deployment: Deployment) -> None:
    """A deployment that was still starting: end what it had started, then start it over."""
    for replica in deployment.replicas:
        if await controller.runner.reattach(replica):
            await controller.runner.release_handle(replica)
    try:
        request = parse_deploy_request(deployment.request, controller.model_roots)
    except DeployRequestError as error:
        deployment.fail(ErrorCode.RUNTIME_ERROR, f"cannot be restored: {error}")
        return
    deployment.replicas = []
    deployment.transition(DeploymentStatus.REQUESTED, "server restarted while deploying: again")
    await controller.run_deploy(deployment, request)


async def _bring_back(controller: Controller, deployment: Deployment) -> None:
    """Adopt each replica whose engine still runs; start the others again."""
    runner, plan = controller.runner, deployment.plan
    deployment.transition(DeploymentStatus.INITIALIZING, "server restarted: restoring replicas")
    adopted, restarted = [], []
    try:
        for replica in deployment.replicas:
            if await runner.reattach(replica):
                adopted.append(replica)
            else:
                replica.handle = None
                await runner.start(deployment, plan, replica)
                restarted.append(replica)
        await asyncio.gather(*(runner.wait_ready(plan, r) for r in deployment.replicas))
    except (EngineFailure, PlacementError) as error:
        message = f"could not be restored after a server restart: {error}"
        await runner.release_and_fail(deployment, error, message)
        return
    deployment.error_code, deployment.error_message = None, ""
    deployment.transition(
        DeploymentStatus.DEPLOYED,
        f"server restarted: {len(adopted)} replica(s) adopted, {len(restarted)} restarted",
    )
