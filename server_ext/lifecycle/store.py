"""Deployment records on disk (SQLite in the state dir), so they survive a server restart."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

from kz_jupyter.server_ext.lifecycle.records import Deployment

SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
    name TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    updated_at REAL NOT NULL
)
"""


class DeploymentStore:
    """Keeps the latest record of each deployment; writes are small and synchronous.

    A file that is not a readable database (damaged on disk, or overwritten) is moved aside as
    NAME.corrupt-TIME, kept for inspection, and a new store is started: the server keeps
    working instead of failing to load. `set_aside` names the moved file, if any.
    """

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.set_aside: Path | None = None
        self._lock = threading.Lock()
        try:
            self._db = self._open()
        except sqlite3.DatabaseError:
            self.set_aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
            path.rename(self.set_aside)
            for suffix in ("-wal", "-shm"):  # SQLite's side files belong to the old file
                path.with_name(path.name + suffix).unlink(missing_ok=True)
            self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        """Connect and make sure the table is there (raises DatabaseError on a bad file)."""
        db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL: a crash of the server loses nothing
            db.execute(SCHEMA)
            db.execute("SELECT count(*) FROM deployments").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

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

    def delete(self, name: str) -> None:
        """Forget a deployment's record."""
        with self._lock:
            self._db.execute("DELETE FROM deployments WHERE name = ?", (name,))

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
