"""What an admin allows: who may deploy, how many deployments each user may run, and how
much memory one deployment may take. Admins are not limited."""

from __future__ import annotations

from dataclasses import dataclass

from kz_jupyter.planning.memory import human_bytes
from kz_jupyter.server_ext.access.sharing import Viewer


class QuotaError(PermissionError):
    """A request over a limit; the message says which limit and what to do."""


@dataclass(frozen=True)
class DeployPolicy:
    """The limits; empty users and groups: everyone may deploy; 0: no limit."""

    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    max_per_user: int = 0
    max_memory: int = 0

    def check_may_deploy(self, viewer: Viewer) -> None:
        """Refuse users the admin has not allowed to deploy."""
        if viewer.admin or not (self.users or self.groups):
            return
        if viewer.name in self.users or viewer.groups & self.groups:
            return
        raise QuotaError(
            f"{viewer.name} may not deploy here: ask an admin to add you to "
            "c.KzApp.deploy_users or c.KzApp.deploy_groups; you can use what others share."
        )

    def check_count(self, viewer: Viewer, running: int) -> None:
        """Refuse a deployment beyond the per-user count (running: the user's active ones)."""
        if viewer.admin or not self.max_per_user or running < self.max_per_user:
            return
        raise QuotaError(
            f"{viewer.name} already runs {running} deployments, the most allowed per user "
            f"(c.KzApp.max_deployments_per_user = {self.max_per_user}): stop one first."
        )

    def check_memory(self, viewer: Viewer, needed: int) -> None:
        """Refuse a deployment whose planned memory is over the per-deployment limit."""
        if viewer.admin or not self.max_memory or needed <= self.max_memory:
            return
        raise QuotaError(
            f"This deployment needs {human_bytes(needed)}, more than the "
            f"{human_bytes(self.max_memory)} allowed per deployment "
            "(c.KzApp.max_memory_per_deployment): choose a smaller quant or context."
        )
