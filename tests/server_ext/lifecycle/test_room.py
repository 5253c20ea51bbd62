"""Which deployments may be unloaded to make room, and who decides whether room is made."""

from __future__ import annotations

import pytest

from kz_jupyter.planning.plan import Plan
from kz_jupyter.server_ext.lifecycle.records import Deployment, Replica
from kz_jupyter.server_ext.lifecycle.room import Room, RoomSettings, unloadable_by
from kz_jupyter.states import DeploymentStatus

MIB = 2**20


def loaded(name: str, owner: str = "ann", last_used: float = 0.0, **fields) -> Deployment:
    """A DEPLOYED record with one running replica (a handle stands for its engine)."""
    deployment = Deployment(name=name, model="m", owner=owner, last_used=last_used, **fields)
    deployment.status = DeploymentStatus.DEPLOYED
    deployment.plan = Plan(
        model="m", model_path="m.gguf", format="gguf", engine="llamacpp", engine_reason="",
        context_length=2048, memory={"total": 100 * MIB, "device": "RAM"},
    )  # fmt: skip
    deployment.replicas = [Replica(replica_id=f"{name}-0", handle=object())]
    return deployment


async def never_unload(deployment: Deployment, detail: str) -> None:
    raise AssertionError("nothing is unloaded here")


def room_of(deployments: list[Deployment], **settings) -> Room:
    return Room(RoomSettings(**settings), lambda: deployments, never_unload)


def test_candidates_are_idle_unpinned_own_deployments_least_recently_used_first():
    newcomer = Deployment(name="new", model="m", owner="ann")
    busy = loaded("busy", last_used=1.0)
    busy.replicas[0].outstanding = 1
    deployments = [
        loaded("recent", last_used=30.0),
        loaded("oldest", last_used=10.0),
        busy,
        loaded("pinned", last_used=5.0, pinned=True),
        loaded("bobs", owner="bob", last_used=2.0),
        newcomer,
    ]
    room = room_of(deployments)
    ann = unloadable_by("ann", admin=False)
    assert [d.name for d in room.candidates(newcomer, ann)] == ["oldest", "recent"]
    admin = unloadable_by("root", admin=True)
    assert [d.name for d in room.candidates(newcomer, admin)] == ["bobs", "oldest", "recent"]
    held = room.held(newcomer, ann)
    assert "'busy' is serving 1 request" in held and "'pinned' is pinned (--pin)" in held
    assert "'bobs' belongs to another user" in held and "'oldest' is idle" in held


def test_without_make_room_nothing_is_a_candidate_and_the_refusal_says_so():
    newcomer = Deployment(name="new", model="m", owner="ann")
    room = room_of([loaded("idle"), newcomer], make_room=False)
    ann = unloadable_by("ann", admin=False)
    assert room.candidates(newcomer, ann) == []
    assert "'idle' is idle (c.KzApp.make_room would unload it)" in room.held(newcomer, ann)


@pytest.mark.parametrize(
    ("hub", "configured", "expected"),
    [(False, None, True), (True, None, False), (True, True, True), (False, False, False)],
)
def test_make_room_is_on_for_a_personal_server_and_off_in_the_hub_unless_set(
    jp_configurable_serverapp, monkeypatch, tmp_path, hub, configured, expected
):
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "secret")
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:9/hub/api")
    config = {"state_dir": str(tmp_path / "kz-state"), "prestart_ray": False}
    if configured is not None:
        config["make_room"] = configured
    argv = [f"--KzApp.{key}={value}" for key, value in config.items()]
    if hub:
        provider = "kz_jupyter.server_ext.access.hub_identity.HubIdentityProvider"
        argv.append(f"--ServerApp.identity_provider_class={provider}")
    app = jp_configurable_serverapp(argv=argv)
    controller = app.web_app.settings["kz_controller"]
    assert controller.room.settings.make_room is expected
