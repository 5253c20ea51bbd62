"""Downloads that are cut off: the server killed halfway, the disk filling up mid-file. The cache
never holds a half-written model file under its real name, and the next pull resumes (an HTTP
Range request) and verifies the whole file."""

from __future__ import annotations

import hashlib
import signal
import time
from pathlib import Path

import pytest

from kz_jupyter.models.downloads import PARTIAL_SUFFIX
from tests.support.model_files import CHAT_TEMPLATE, fill_disk, write_tiny_gguf
from tests.support.server_process import JupyterServer

pytestmark = pytest.mark.slow

REPO = "kz-faults/resume-GGUF"
FILE = "resume-Q8_0.gguf"
RATE = 4 * 2**20  # bytes/s while a test needs the download to be in progress


@pytest.fixture
def big_repo(local_hub, tmp_path):
    """A 16 MB GGUF on the loopback Hub, served slowly until the test says otherwise."""
    model = write_tiny_gguf(tmp_path / FILE, "llama", CHAT_TEMPLATE, padding=16_000_000)
    local_hub.add_repo(REPO, {FILE: model})
    local_hub.set_throttle(RATE)
    yield hashlib.sha256(model.read_bytes()).hexdigest(), model.stat().st_size
    local_hub.set_throttle(0)


def server_for(local_hub, home: Path, cache: Path) -> JupyterServer:
    home.mkdir(parents=True, exist_ok=True)
    return JupyterServer(home, {"HF_ENDPOINT": local_hub.url, "HF_HUB_CACHE": str(cache),
                                "HF_HUB_OFFLINE": "0"})  # fmt: skip


def start_pull(server: JupyterServer) -> str:
    return server.api("POST", "api/pulls", json={"model": REPO})["job_id"]


def wait_pull(server: JupyterServer, job_id: str, until, timeout: float = 120) -> dict:
    """Poll the pull job until until(job) holds."""
    deadline = time.monotonic() + timeout
    while True:
        job = server.api("GET", f"api/pulls/{job_id}")
        if until(job):
            return job
        assert job["status"] == "running" and time.monotonic() < deadline, job
        time.sleep(0.1)


def halfway(job: dict) -> bool:
    return job["total"] > 0 and job["done"] >= job["total"] // 4


def cache_state(cache: Path) -> tuple[list[Path], list[Path]]:
    """(partial downloads, model files under their real name) in a Hugging Face cache."""
    partial = [*cache.rglob(f"*{PARTIAL_SUFFIX}"), *cache.rglob("*.incomplete")]
    return sorted(partial), sorted(cache.rglob(f"snapshots/*/{FILE}"))


def assert_resumed_whole(local_hub, server: JupyterServer, cache: Path, digest: str) -> None:
    """Pull again: it resumes where the cut left off and the file is whole."""
    local_hub.set_throttle(0)
    job = wait_pull(server, start_pull(server), lambda j: j["status"] != "running")
    assert job["status"] == "done", job
    (partial, (model,)) = cache_state(cache)
    assert partial == []
    assert hashlib.sha256(model.read_bytes()).hexdigest() == digest
    last = [line for line in local_hub.file_requests() if FILE in line][-1]
    assert "range=bytes=" in last and "range=bytes=0-" not in last, last


def test_a_download_killed_halfway_resumes_to_a_whole_file(local_hub, big_repo, tmp_path):
    digest, size = big_repo
    cache = tmp_path / "hf"
    server = server_for(local_hub, tmp_path / "home", cache)
    server.start()
    try:
        wait_pull(server, start_pull(server), halfway)
        server.stop(signal.SIGKILL)  # the server dies in the middle of the file

        (partial,), complete = cache_state(cache)
        assert 0 < partial.stat().st_size < size and complete == []
        server.start()
        assert_resumed_whole(local_hub, server, cache, digest)
    finally:
        server.stop()


def test_a_full_disk_fails_the_pull_clearly_then_it_resumes(
    local_hub, big_repo, small_disk, tmp_path
):
    digest, size = big_repo
    cache = small_disk(40 * 2**20)
    server = server_for(local_hub, tmp_path / "home", cache)
    server.start()
    try:
        job_id = start_pull(server)
        wait_pull(server, job_id, halfway)
        filler = fill_disk(cache)  # something else takes the rest of the disk
        job = wait_pull(server, job_id, lambda j: j["status"] != "running")
        assert job["status"] == "failed", job
        message = job["error"]["message"]
        assert f"The disk holding the model cache ({cache}) is full" in message, message
        assert "what was downloaded is kept and the download resumes" in message

        (partial,), complete = cache_state(cache)
        assert 0 < partial.stat().st_size < size and complete == []
        filler.unlink()  # space again
        assert_resumed_whole(local_hub, server, cache, digest)
    finally:
        server.stop()
