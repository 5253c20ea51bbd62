"""Check downloaded files against the hashes the Hub published for them.

A file in the Hugging Face cache is a link to a blob named by its hash: the sha256 of an LFS file
or the git blob sha1 of a small one. A file is hashed once; later checks compare its size and
modification time with what was recorded then, and hash again only when they changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from kz_jupyter.models.hub import RemoteFile

CHUNK = 8 * 1024 * 1024
_LOCK = threading.Lock()


@dataclass(frozen=True)
class FileProblem:
    """One file that is missing or does not match the Hub's record of it."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def kz_cache_dir() -> Path:
    """kz-jupyter's own cache folder ($KZ_CACHE_DIR, else $XDG_CACHE_HOME/kz-jupyter)."""
    if os.environ.get("KZ_CACHE_DIR"):
        return Path(os.environ["KZ_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kz-jupyter"


def _manifest_path(snapshot: Path) -> Path:
    """Where the record of verified blobs of one Hugging Face cache is kept."""
    cache_root = snapshot.resolve().parents[2] if len(snapshot.parts) > 3 else snapshot
    key = hashlib.sha1(str(cache_root).encode()).hexdigest()[:12]
    return kz_cache_dir() / f"verified-{key}.json"


def _load(manifest: Path) -> dict[str, list[int]]:
    """Read a manifest; a missing or unreadable one is empty."""
    try:
        return json.loads(manifest.read_text())
    except (OSError, ValueError):
        return {}


def file_digest(path: Path, expected: RemoteFile) -> str:
    """Hash a file the way the Hub names it: sha256 for LFS files, else the git blob sha1."""
    if expected.sha256:
        digest = hashlib.sha256()
    else:
        digest = hashlib.sha1()
        digest.update(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_files(snapshot: Path, files: list[RemoteFile]) -> list[FileProblem]:
    """Check each file of a snapshot: present, of the right size, with the published hash."""
    manifest_path = _manifest_path(snapshot)
    with _LOCK:
        manifest = _load(manifest_path)
    problems, changed = [], False
    for expected in files:
        path = snapshot / expected.path
        if not path.is_file():
            problems.append(FileProblem(expected.path, "missing"))
            continue
        blob = str(path.resolve())
        stat = path.stat()
        if stat.st_size != expected.size:
            problems.append(
                FileProblem(expected.path, f"{stat.st_size} bytes, expected {expected.size}")
            )
            continue
        if manifest.get(blob) == [stat.st_size, stat.st_mtime_ns] or not expected.etag:
            continue
        if file_digest(path, expected) != expected.etag:
            problems.append(FileProblem(expected.path, "content does not match its hash"))
            continue
        manifest[blob], changed = [stat.st_size, stat.st_mtime_ns], True
    if changed:
        with _LOCK:
            manifest_path.parent.mkdir(parents=True, exist_ok=True)
            merged = _load(manifest_path) | manifest
            tmp = manifest_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(merged))
            tmp.replace(manifest_path)
    return problems
