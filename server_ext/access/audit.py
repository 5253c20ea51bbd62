"""The audit log: who deployed, stopped, restarted, shared or installed what, and when; one
JSON line per action (refusals too), appended to a file admins can read."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path


class AuditLog:
    """Appends actions to a JSON-lines file and reads the latest back."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()

    def record(self, user: str, action: str, target: str, **details: object) -> None:
        """Append one action: who, what, on which deployment (or engine, model), details."""
        entry = {"at": time.time(), "user": user, "action": action, "target": target, **details}
        line = json.dumps(entry, default=str) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as log:
                log.write(line)

    def read(self, limit: int = 200, user: str | None = None) -> list[dict]:
        """The latest entries (oldest first), optionally of one user; torn lines are skipped."""
        if not self.path.exists():
            return []
        with self._lock:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        entries = []
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if user is None or entry.get("user") == user:
                entries.append(entry)
        return entries[-limit:]
