"""Who sees and changes deployments, the admin's limits, and the audit log, as units."""

from __future__ import annotations

import json

import pytest

from kz_jupyter.deploy_options import parse_share, visibility
from kz_jupyter.server_ext.access.audit import AuditLog
from kz_jupyter.server_ext.access.hub_identity import HubUser
from kz_jupyter.server_ext.access.quotas import DeployPolicy, QuotaError
from kz_jupyter.server_ext.access.sharing import Viewer, can_change, can_see, viewer_of

ALICE = Viewer("alice")
BOB = Viewer("bob", groups=frozenset({"research"}))
ADMIN = Viewer("root", admin=True)


def test_owner_shared_and_admin_visibility():
    assert can_see(ALICE, "alice", []) and not can_see(BOB, "alice", [])
    assert can_see(BOB, "alice", ["*"]) and can_see(BOB, "alice", ["research"])
    assert not can_see(BOB, "alice", ["ops"]) and can_see(ADMIN, "alice", [])
    assert can_change(ALICE, "alice") and can_change(ADMIN, "alice")
    assert not can_change(BOB, "alice")  # seeing a shared deployment is not owning it


def test_share_forms():
    assert parse_share("private") == () and parse_share("all") == ("*",)
    assert parse_share(["group:a", "group:b", "group:a"]) == ("a", "b")
    assert visibility(()) == "private" and visibility(("*",)) == "all"
    assert visibility(("a", "b")) == "group:a,group:b"
    for bad in ("everyone", "group:", "", 3, ["all", None]):
        with pytest.raises(ValueError):
            parse_share(bad)


def test_hub_users_bring_admin_and_groups_a_personal_server_user_is_admin():
    hub_user = HubUser(username="bob", hub_admin=False, hub_groups=("research",))
    assert viewer_of(hub_user) == BOB
    personal = viewer_of(object())
    assert personal.admin and personal.name


def test_limits_apply_to_users_not_admins():
    policy = DeployPolicy(users=frozenset({"alice"}), groups=frozenset({"research"}),
                          max_per_user=2, max_memory=512 * 2**20)  # fmt: skip
    policy.check_may_deploy(ALICE)
    policy.check_may_deploy(BOB)  # through the research group
    with pytest.raises(QuotaError, match="carol may not deploy here"):
        policy.check_may_deploy(Viewer("carol"))
    policy.check_count(ALICE, 1)
    with pytest.raises(QuotaError, match="already runs 2 deployments"):
        policy.check_count(ALICE, 2)
    with pytest.raises(QuotaError, match="needs 1.0 GiB, more than the 512 MiB"):
        policy.check_memory(ALICE, 2**30)
    for check, value in ((policy.check_count, 9), (policy.check_memory, 2**40)):
        check(ADMIN, value)
    DeployPolicy().check_may_deploy(Viewer("anyone"))


def test_audit_log_appends_and_reads_back(tmp_path):
    log = AuditLog(tmp_path / "audit" / "audit.jsonl")
    assert log.read() == []
    log.record("alice", "deploy", "smollm2", model="smollm2", share="all")
    log.record("bob", "stop-refused", "smollm2", owner="alice")
    with open(log.path, "a") as stream:
        stream.write('{"torn": ')  # a line cut by a crash is skipped
    entries = log.read()
    assert [(e["user"], e["action"]) for e in entries] == [
        ("alice", "deploy"),
        ("bob", "stop-refused"),
    ]
    assert entries[0]["share"] == "all" and entries[0]["at"] <= entries[1]["at"]
    assert [e["user"] for e in log.read(user="bob")] == ["bob"] and len(log.read(limit=1)) == 1
    assert all(json.loads(line) for line in log.path.read_text().splitlines()[:2])
