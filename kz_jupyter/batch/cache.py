"""Where a batch keeps each row's answer the moment it arrives (diskcache: SQLite on disk), so
that a restarted kernel or an interrupted cell resumes and never asks twice for a row it has.
An answer is keyed by the deployment, the model and files it serves, and the whole request."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import diskcache

from kz_jupyter.data_dirs import data_dir


def cache_dir() -> Path:
    """$KZ_BATCH_CACHE, else `<data home>/kz-jupyter/batch`."""
    return data_dir("KZ_BATCH_CACHE", "batch")


@dataclass(frozen=True)
class Answer:
    """One row's outcome: the answer's text and tokens, or what went wrong."""

    text: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    seconds: float = 0.0  # from sending the request to its answer


def answer_key(model: dict, body: dict) -> str:
    """The key of a request to a deployment serving model (its name, reference and files)."""
    identity = json.dumps({"model": model, "request": body}, sort_keys=True, default=str)
    return hashlib.sha256(identity.encode()).hexdigest()


class AnswerCache:
    """The answers on disk, shared by every kernel of this user."""

    def __init__(self, folder: Path | None = None):
        self._cache = diskcache.Cache(str(folder or cache_dir()))

    def get(self, key: str) -> Answer | None:
        """The answer kept under key, or None."""
        kept = self._cache.get(key)
        return Answer(**kept) if kept is not None else None

    def put(self, key: str, answer: Answer) -> None:
        """Keep an answer (written to disk before this returns)."""
        self._cache.set(key, asdict(answer))

    def close(self) -> None:
        """Close the database."""
        self._cache.close()
