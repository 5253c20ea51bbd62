"""Deployment and replica records: the controller's state, as the REST API shows it."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from kz_jupyter.states import DeploymentStatus, ErrorCode, InstanceStatus

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


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
        }


@dataclass
class Deployment:
    """A named deployment of one model, with its lifecycle history."""

    name: str
    model: str
    status: DeploymentStatus = DeploymentStatus.REQUESTED
    plan: dict | None = None
    error_code: ErrorCode | None = None
    error_message: str = ""
    created_at: float = field(default_factory=time.time)
    history: list[dict] = field(default_factory=list)
    replicas: list[Replica] = field(default_factory=list)
    final_logs: dict[str, list[str]] = field(default_factory=dict)
    progress: dict | None = None

    def transition(self, status: DeploymentStatus, detail: str = "") -> None:
        """Move to a new status and record when and why."""
        self.status = status
        self.history.append({"status": status.value, "at": time.time(), "detail": detail})

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

    def to_dict(self) -> dict:
        """Return JSON-ready data."""
        return {
            "name": self.name,
            "model": self.model,
            "status": self.status.value,
            "engine": (self.plan or {}).get("engine"),
            "plan": self.plan,
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
        }
