"""What the suites share: a `jupyter server` with the extension, a bare engine started by hand
from the same plan, streamed chats (one, or many at once) and process-tree peak memory."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import psutil

from kz_jupyter.client import KzClient
from kz_jupyter.client.connection import ServerConnection
from kz_jupyter.deploy_options import EngineOptions
from kz_jupyter.engines.process import engine_environment, free_port
from kz_jupyter.models.hub import HubSettings
from kz_jupyter.planning.engine_contract import LaunchTarget, get_engine
from kz_jupyter.planning.hardware import probe_hardware
from kz_jupyter.planning.plan import Plan
from kz_jupyter.planning.provisioning import prepare

PROMPT = [{"role": "user", "content": "Write a long story about a dragon who learns to cook."}]
HOST = "127.0.0.1"
PROFILE_VARIABLE = "KZ_BENCH_PROFILE"


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of values, linear between ranks; nan when there are none."""
    return float(np.percentile(values, q)) if values else float("nan")


def settle(busy_percent: float = 25.0, longest: float = 30.0) -> None:
    """Wait (at most longest seconds) until the machine's CPUs are mostly idle: work left
    behind by one timed run (a process starting in the background) must not slow the next."""
    deadline = time.monotonic() + longest
    while psutil.cpu_percent(interval=0.5) > busy_percent and time.monotonic() < deadline:
        pass


class JupyterServer:
    """`jupyter server` on loopback with the kz extension (the JupyterLab hosting mode), its
    kz state in a fresh folder; a context manager that ends it (and its deployments)."""

    def __init__(self, workdir: Path, args: tuple[str, ...] = ()):
        self.workdir, self.args = workdir, args
        self.port, self.token = free_port(HOST), secrets.token_hex(16)
        self.connection = ServerConnection(f"http://{HOST}:{self.port}/", self.token, "bench")
        self.process: subprocess.Popen | None = None
        self.profiler: subprocess.Popen | None = None

    def __enter__(self) -> JupyterServer:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root",
             f"--ServerApp.ip={HOST}", f"--ServerApp.port={self.port}",
             f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.workdir}",
             *self.args],
            env={**os.environ, "KZ_STATE_DIR": str(self.workdir / "kz-state")},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        while True:
            try:
                status = httpx.get(self.connection.url("api/status"), params={"token": self.token})
                if status.is_success:
                    self._profile()
                    return self
            except httpx.HTTPError:
                if self.process.poll() is not None:
                    raise RuntimeError("jupyter server exited at startup") from None
                time.sleep(0.2)

    def __exit__(self, *exc) -> None:
        assert self.process is not None
        if self.profiler is not None:
            self.profiler.send_signal(signal.SIGINT)  # py-spy writes its file and exits
            self.profiler.wait(timeout=60)
        self.process.terminate()
        self.process.wait(timeout=120)

    def _profile(self) -> None:
        """With $KZ_BENCH_PROFILE (a folder), sample the server and its subprocesses with py-spy
        into server-PID.txt there (collapsed stacks: one line per stack, with its count)."""
        folder = os.environ.get(PROFILE_VARIABLE)
        if folder:
            target = Path(folder) / f"server-{self.process.pid}.txt"
            self.profiler = subprocess.Popen(
                [str(Path(sys.executable).with_name("py-spy")), "record", "--subprocesses",
                 "--nonblocking", "--format", "raw", "--output", str(target),
                 "--pid", str(self.process.pid)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip

    def client(self, timeout: float = 120.0) -> KzClient:
        """A kz client of this server."""
        return KzClient(self.connection, timeout=timeout)

    @property
    def chat_url(self) -> str:
        """The proxy's chat completions URL."""
        return self.connection.url("kz/v1/chat/completions")

    @property
    def headers(self) -> dict[str, str]:
        """What a request to this server must carry."""
        return {"Authorization": f"token {self.token}"}


def plan_for(
    model: str, engine: str | None = None, context_length: int = 2048, **options: object
) -> Plan:
    """The plan kz-jupyter makes for model (no download: the model is local), with more plan
    options (EngineOptions fields) when given."""
    overrides = EngineOptions(engine=engine, context_length=context_length, force=True, **options)
    plan, _ = prepare(model, probe_hardware(), HubSettings.from_env(), overrides)
    return plan


class BareEngine:
    """The engine's own server started by hand with the plan's command line, as a user would
    without kz-jupyter: a process, then polling its readiness URL. A context manager."""

    def __init__(self, plan: Plan, name: str, workdir: Path):
        self.plan, self.name = plan, name
        self.engine = get_engine(plan.engine)
        self.target = LaunchTarget(name, HOST, free_port(HOST), workdir)
        self.endpoint = f"http://{HOST}:{self.target.port}"
        self.process: subprocess.Popen | None = None
        self.ready_s = float("nan")

    def __enter__(self) -> BareEngine:
        started = time.perf_counter()
        self.target.workdir.mkdir(parents=True, exist_ok=True)
        self.engine.prepare(self.plan, self.target)
        spec = self.engine.launch_spec(self.plan, self.target)
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [spec.program or sys.executable, *spec.args], env=engine_environment(spec),
            cwd=spec.cwd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        url = self.endpoint + spec.readiness_path
        with httpx.Client(timeout=5) as http:
            while True:
                if self.process.poll() is not None:
                    self.log.seek(0)
                    tail = self.log.read().decode(errors="replace")[-2000:]
                    raise RuntimeError(f"{self.plan.engine} exited at startup:\n{tail}")
                try:
                    if spec.readiness_body is None:
                        answer = http.get(url)
                    else:
                        answer = http.post(url, json=spec.readiness_body)
                    if answer.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        self.ready_s = time.perf_counter() - started
        return self

    def __exit__(self, *exc) -> None:
        assert self.process is not None
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)
        self.log.close()


def tree_peak_rss(pid: int) -> int:
    """The summed peak resident memory (VmHWM) of a process and every process it started."""
    root = psutil.Process(pid)
    total = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) * 1024
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


@dataclass
class Stream:
    """One streamed chat as a client saw it."""

    ttft_s: float
    tokens: int
    seconds: float
    finished: bool  # a finish reason came: the answer was not cut short
    error: str = ""


async def stream_chat(
    http: httpx.AsyncClient, url: str, model: str, max_tokens: int, headers: dict | None = None
) -> Stream:
    """Stream one chat completion (temperature 0); count content chunks as tokens."""
    body = {"model": model, "messages": PROMPT, "max_tokens": max_tokens, "temperature": 0,
            "stream": True}  # fmt: skip
    started = time.perf_counter()
    first, tokens, finished = None, 0, False
    try:
        async with http.stream("POST", url, json=body, headers=headers or {}) as response:
            if response.status_code != 200:
                answer = (await response.aread()).decode(errors="replace")
                code = response.status_code
                detail = "" if code == 429 else f": {answer[:200]}"  # what refused it, and why
                return Stream(0, 0, 0, False, f"HTTP {code}{detail}")
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                event = json.loads(line[6:])
                if "error" in event:
                    return Stream(0, tokens, 0, False, event["error"].get("message", "error"))
                choice = event["choices"][0] if event.get("choices") else {}
                if choice.get("delta", {}).get("content"):
                    first = first or time.perf_counter()
                    tokens += 1
                finished = finished or bool(choice.get("finish_reason"))
    except httpx.HTTPError as error:
        return Stream(0, tokens, 0, False, f"{type(error).__name__}: {error}")
    ended = time.perf_counter()
    ttft = (first or ended) - started
    return Stream(ttft, tokens, ended - started, finished, "" if finished else "cut short")


async def stream_batch(
    url: str, model: str, concurrency: int, max_tokens: int, headers: dict | None = None
) -> tuple[list[Stream], float]:
    """Start concurrency streamed chats at once; return them and the batch's wall time."""
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(900.0, connect=30.0)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as http:
        started = time.perf_counter()
        streams = await asyncio.gather(
            *(stream_chat(http, url, model, max_tokens, headers) for _ in range(concurrency))
        )
        return list(streams), time.perf_counter() - started


def run_batch(
    url: str, model: str, concurrency: int, max_tokens: int, headers: dict | None = None
) -> tuple[list[Stream], float]:
    """stream_batch from synchronous code."""
    return asyncio.run(stream_batch(url, model, concurrency, max_tokens, headers))


def summarize(batches: list[tuple[list[Stream], float]]) -> dict:
    """Tokens/s of whole batches (median) and TTFT percentiles over every stream of them."""
    streams = [s for batch, _ in batches for s in batch]
    ttfts = [s.ttft_s * 1000 for s in streams if not s.error]
    return {
        "tokens_per_s": statistics.median(sum(s.tokens for s in b) / t for b, t in batches),
        "ttft_p50_ms": percentile(ttfts, 50),
        "ttft_p99_ms": percentile(ttfts, 99),
        "errors": sum(bool(s.error) for s in streams),
        "streams": len(streams),
    }
