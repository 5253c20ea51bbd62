"""Deployment and replica records: the controller's state, as the REST API shows it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kz_jupyter.deploy_options import visibility
from kz_jupyter.planning.plan import Plan
from kz_jupyter.states import DeploymentStatus, ErrorCode, InstanceStatus


@dataclass
class Replica:
    """One running copy of a deployment's engine."""

    replica_id: str
    status: InstanceStatus = InstanceStatus.REQUESTED
    endpoint: str = ""
    pid: int | None = None
    node_id: str = ""
    outstanding: int = 0
    restarts: int = 0
    actor_name: str = ""
    handle: Any = None

    def to_dict(self) -> dict:
        """Return JSON-ready data."""
        return {
            "id": self.replica_id,
            "status": self.status.value,
            "endpoint": self.endpoint,
            "pid": self.pid,
            "node_id": self.node_id,
            "outstanding": self.outstanding,
            "restarts": self.restarts,
            "actor_name": self.actor_name,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Replica:
        """Rebuild a replica record (without its live handle) from `to_dict` output."""
        return cls(
            replica_id=data["id"],
            status=InstanceStatus(data["status"]),
            endpoint=data.get("endpoint", ""),
            pid=data.get("pid"),
            node_id=data.get("node_id", ""),
            restarts=data.get("restarts", 0),
            actor_name=data.get("actor_name", ""),
        )


@dataclass
class Deployment:
    """A named deployment of one model, with its lifecycle history."""

    name: str
    model: str
    status: DeploymentStatus = DeploymentStatus.REQUESTED
    plan: Plan | None = None
    error_code: ErrorCode | None = None
    error_message: str = ""
    created_at: float = field(default_factory=time.time)
    history: list[dict] = field(default_factory=list)
    replicas: list[Replica] = field(default_factory=list)
    final_logs: dict[str, list[str]] = field(default_factory=dict)
    progress: dict | None = None
    request: dict = field(default_factory=dict)
    wanted: bool = True
    keep_alive: int = -1
    last_used: float = field(default_factory=time.time)
    pinned: bool = False  # never unloaded to make room for another deployment
    owner: str = ""  # the user who deployed it ("": from before owners were kept)
    shared_with: list[str] = field(default_factory=list)  # "*": everyone; else hub groups
    on_change: Callable[[Deployment], None] | None = None

    def transition(self, status: DeploymentStatus, detail: str = "") -> None:
        """Move to a new status and record when and why (and persist the record)."""
        self.status = status
        now = time.time()
        self.history.append({"status": status.value, "at": now, "detail": detail})
        if status is DeploymentStatus.DEPLOYED:
            self.last_used = now  # idle time counts from when it could first be used
        self.changed()

    def changed(self) -> None:
        """Tell the store the record changed."""
        if self.on_change is not None:
            self.on_change(self)

    def fail(self, code: ErrorCode, message: str) -> None:
        """Move to FAILED (or MUST_REDOWNLOAD) with an error code and message."""
        self.error_code = code
        self.error_message = message
        status = (
            DeploymentStatus.MUST_REDOWNLOAD
            if code is ErrorCode.MUST_REDOWNLOAD
            else DeploymentStatus.FAILED
        )
        self.transition(status, f"{code.value}: {message}")

    @property
    def in_flight(self) -> int:
        """Requests its replicas are answering now."""
        return sum(r.outstanding for r in self.replicas)

    def adapters(self) -> dict[str, str]:
        """The LoRA adapters it serves beside its model, by name."""
        return self.plan.lora_adapters if self.plan else {}

    def to_dict(self) -> dict:
        """Return JSON-ready data."""
        return {
            "name": self.name,
            "model": self.model,
            "status": self.status.value,
            "engine": self.plan.engine if self.plan else None,
            "plan": self.plan.to_dict() if self.plan else None,
            "error": None
            if self.error_code is None
            else {
                "code": self.error_code.value,
                "message": self.error_message,
                "remediation": self.error_code.remediation,
            },
            "created_at": self.created_at,
            "history": list(self.history),
            "replicas": [replica.to_dict() for replica in self.replicas],
            "progress": self.progress,
            "request": self.request,
            "wanted": self.wanted,
            "keep_alive": self.keep_alive,
            "last_used": self.last_used,
            "pinned": self.pinned,
            "owner": self.owner,
            "shared_with": list(self.shared_with),
            "visibility": visibility(self.shared_with),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Deployment:
        """Rebuild a deployment record from `to_dict` output (as persisted)."""
        error = data.get("error")
        return cls(
            name=data["name"],
            model=data["model"],
            status=DeploymentStatus(data["status"]),
            plan=Plan.from_dict(data["plan"]) if data.get("plan") else None,
            error_code=ErrorCode(error["code"]) if error else None,
            error_message=error["message"] if error else "",
            created_at=data["created_at"],
            history=list(data.get("history", [])),
            replicas=[Replica.from_dict(r) for r in data.get("replicas", [])],
            request=data.get("request", {}),
            wanted=data.get("wanted", True),
            keep_alive=data.get("keep_alive", -1),
            last_used=data.get("last_used", data["created_at"]),
            pinned=data.get("pinned", False),
            owner=data.get("owner", ""),
            shared_with=list(data.get("shared_with", [])),
        )
