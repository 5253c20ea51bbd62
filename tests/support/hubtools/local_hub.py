"""Build model repos as git repos (large files as Git LFS objects) and serve them with olah."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

from tests.support.paths import ROOT

SERVE_HUB = Path(__file__).with_name("serve_hub.py")
LFS_THRESHOLD = 1024
GIT_ENV = {
    "GIT_AUTHOR_NAME": "kz-tests",
    "GIT_AUTHOR_EMAIL": "tests@kz-jupyter.invalid",
    "GIT_COMMITTER_NAME": "kz-tests",
    "GIT_COMMITTER_EMAIL": "tests@kz-jupyter.invalid",
}


def olah_python() -> Path | None:
    """The interpreter of the olah environment (KZ_OLAH_PYTHON, else .venv-hub)."""
    path = Path(os.environ.get("KZ_OLAH_PYTHON") or ROOT / ".venv-hub" / "bin" / "python")
    return path if path.exists() else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalHub:
    """A Hugging Face Hub on loopback serving the repos added to it."""

    def __init__(self, workdir: Path, token: str = "hf_kz_test_token"):
        self.workdir = workdir
        self.mirrors = workdir / "mirrors"
        self.token = token
        self.index: dict[str, dict] = {}
        self.throttle = 0.0
        self.process: subprocess.Popen | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The endpoint to put in HF_ENDPOINT."""
        return f"http://127.0.0.1:{self.port}"

    def add_repo(
        self,
        repo_id: str,
        files: dict[str, bytes | Path],
        downloads: int = 0,
        likes: int = 0,
        gated: bool = False,
    ) -> Path:
        """Create a git repo holding files; files over 1 KiB are stored as Git LFS objects."""
        repo = self.mirrors / "models" / repo_id
        if repo.exists():
            shutil.rmtree(repo)
        repo.mkdir(parents=True)
        self._git(repo, "init", "-q", "-b", "main")
        for name, content in files.items():
            data = content.read_bytes() if isinstance(content, Path) else content
            target = repo / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if len(data) > LFS_THRESHOLD:
                oid = hashlib.sha256(data).hexdigest()
                store = repo / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
                store.parent.mkdir(parents=True, exist_ok=True)
                store.write_bytes(data)
                target.write_text(
                    f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\n"
                    f"size {len(data)}\n"
                )
            else:
                target.write_bytes(data)
        self._git(repo, "add", "-A")
        self._git(repo, "commit", "-q", "-m", "add model")
        self.index[repo_id] = {"downloads": downloads, "likes": likes, "gated": gated}
        self._write_index()
        return repo

    @staticmethod
    def _git(repo: Path, *args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, check=True, env=os.environ | GIT_ENV)

    def _write_index(self) -> Path:
        path = self.workdir / "index.json"
        data = {"mirrors": str(self.mirrors), "token": self.token, "repos": self.index,
                "throttle": self.throttle}  # fmt: skip
        path.write_text(json.dumps(data))
        return path

    def set_throttle(self, bytes_per_second: float) -> None:
        """Serve file downloads at about this rate (0: as fast as it can), from now on."""
        self.throttle = bytes_per_second
        self._write_index()

    def file_requests(self) -> list[str]:
        """The file requests served so far: 'PATH range=RANGE status=CODE' lines."""
        log = self.workdir / "requests.log"
        return log.read_text().splitlines() if log.exists() else []

    def start(self) -> str:
        """Start olah in offline mode over the repos; return its URL."""
        python = olah_python()
        if python is None:
            raise RuntimeError("olah is not installed: run `make setup` (it creates .venv-hub)")
        self.port = self.port or _free_port()
        config = self.workdir / "olah.toml"
        config.write_text(
            f'[basic]\nhost = "127.0.0.1"\nport = {self.port}\n'
            f'repos-path = "{self.workdir / "olah-cache"}"\n'
            f'mirrors-path = ["{self.mirrors}"]\n[accessibility]\noffline = true\n'
        )
        log = open(self.workdir / "olah.out", "ab")
        self.process = subprocess.Popen(
            [str(python), str(SERVE_HUB), str(config), str(self._write_index())],
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"olah exited: {(self.workdir / 'olah.out').read_text()[-2000:]}"
                )
            try:
                httpx.get(f"{self.url}/api/models", timeout=1)
                return self.url
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError("olah did not start within 60 s")

    def stop(self) -> None:
        """Stop olah (it ignores SIGTERM)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None
