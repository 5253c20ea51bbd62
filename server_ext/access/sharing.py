"""Who may see and change a deployment: its owner, the users it is shared with (everyone, or
named hub groups) and admins. On a personal Jupyter server its one user is the admin."""

from __future__ import annotations

import getpass
from dataclasses import dataclass

from kz_jupyter.deploy_options import EVERYONE


@dataclass(frozen=True)
class Viewer:
    """Who makes a request: a user name, whether an admin, the hub groups they are in."""

    name: str
    admin: bool = False
    groups: frozenset[str] = frozenset()


def viewer_of(user: object) -> Viewer:
    """The viewer behind a Jupyter user: a hub user brings admin and groups; the user of a
    personal server owns it, so it is its admin."""
    if hasattr(user, "hub_admin"):
        name = getattr(user, "username", "")
        return Viewer(name, bool(user.hub_admin), frozenset(getattr(user, "hub_groups", ())))
    return Viewer(getpass.getuser(), admin=True)  # who runs the server (Jupyter's is anonymous)


def can_see(viewer: Viewer, owner: str, shared_with: list[str] | tuple[str, ...]) -> bool:
    """Owner, admins, and the users it is shared with see a deployment."""
    return (
        viewer.admin
        or owner in ("", viewer.name)
        or EVERYONE in shared_with
        or bool(viewer.groups.intersection(shared_with))
    )


def can_change(viewer: Viewer, owner: str) -> bool:
    """Only the owner or an admin stops, restarts or re-shares a deployment."""
    return viewer.admin or owner in ("", viewer.name)
