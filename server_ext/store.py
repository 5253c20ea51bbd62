"""Deployment records on disk (SQLite in the state dir), so they survive a server restart."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

from kz_jupyter.server_ext.records import Deployment

SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
    name TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    updated_at REAL NOT NULL
)
"""


class DeploymentStore:
    """Keeps the latest record of each deployment; writes are small and synchronous."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(SCHEMA)

    def save(self, deployment: Deployment) -> None:
        """Write a deployment's current record."""
        record = json.dumps(deployment.to_dict())
        with self._lock:
            self._db.execute(
                "INSERT INTO deployments (name, record, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET record = excluded.record, "
                "updated_at = excluded.updated_at",
                (deployment.name, record, time.time()),
            )

    def load(self) -> list[Deployment]:
        """Every stored deployment; an unreadable record is skipped, not fatal."""
        with self._lock:
            rows = self._db.execute("SELECT record FROM deployments").fetchall()
        found = []
        for (record,) in rows:
            try:
                found.append(Deployment.from_dict(json.loads(record)))
            except (ValueError, KeyError, TypeError):
                continue
        return found

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
