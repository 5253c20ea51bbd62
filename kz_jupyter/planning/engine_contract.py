"""The engine contract, and the registry that finds engines through entry points."""

from __future__ import annotations

import functools
import importlib.metadata
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from kz_jupyter.models.shapes import ModelShape
from kz_jupyter.planning.engine_environments import (
    EngineEnvironments,
    EnvironmentProbe,
    is_current_interpreter,
    probe_environment,
)
from kz_jupyter.planning.machine import HardwareProfile
from kz_jupyter.planning.memory import GIB, MIB, MemoryEstimate, kv_cache_bytes
from kz_jupyter.planning.plan import Plan
from kz_jupyter.states import ErrorCode

GENERIC_OVERHEAD = 1 * GIB
GENERIC_BATCH_TOKENS = 512

ENTRY_POINT_GROUP = "kz_jupyter.engines"


def python_failure(*more: str) -> tuple[re.Pattern[str], ErrorCode]:
    """The last, catch-all log pattern of a Python engine: a traceback or an `...Error: ` line
    (plus the engine's own more patterns) means RUNTIME_ERROR."""
    alternatives = (r"^Traceback \(most recent call last\)", r"^\w+Error: ", *more)
    return re.compile("|".join(alternatives)), ErrorCode.RUNTIME_ERROR


LineCallback = Callable[[str], None]
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class InstallRecipe:
    """What `%kz engines install` puts in an engine's own environment: pip packages, or a
    build that writes the engine into the folder (reporting progress lines) and returns the
    program it made."""

    packages: tuple[str, ...] = ()
    # Packages the engine's dependencies bring along that break it here (removed after).
    remove: tuple[str, ...] = ()
    build: Callable[[Path, LineCallback], Path] | None = None


@dataclass(frozen=True)
class EngineCheck:
    """Whether an engine can run here: its version, why not, what runs it and from where."""

    available: bool
    version: str = ""
    reason: str = ""
    # The interpreter or binary that runs the engine; None: the interpreter running kz.
    program: str | None = None
    source: str = "this environment"


@dataclass(frozen=True)
class LaunchTarget:
    """Where a replica's engine serves: its name for clients, address, and work folder."""

    served_name: str
    host: str
    port: int
    workdir: Path


@dataclass(frozen=True)
class LaunchSpec:
    """How to start an engine's OpenAI-compatible server: a command line and its environment.

    `program` None means "the Python interpreter running the replica", so the same spec works
    on every node of a Ray cluster. Readiness is a GET of `readiness_path`, or a POST of
    `readiness_body` there when set (for servers that answer GETs before the model is loaded).
    `health_path`, when set, is asked while the engine runs: an HTTP error status there means
    the engine is broken although its process lives, and it is ended.
    """

    args: tuple[str, ...]
    program: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    readiness_path: str = "/v1/models"
    readiness_body: dict | None = None
    health_path: str | None = None
    cwd: str | None = None


class Engine(ABC):
    """An inference engine that serves a model behind an OpenAI-compatible HTTP server.

    Rules for implementers:
    - `check()` and `availability()` never raise: they answer whether the engine can run, its
      version and why not, from what the engine's environment holds (`distributions` are
      looked up there; an engine that is a binary overrides `check()` to find it), so a user
      is told what to install instead of seeing a traceback.
    - `prepare()` runs on the replica's node before each start and may write files in the
      target's work folder; `launch_spec()` only builds the command line and does no I/O. The
      server it describes must listen on exactly the target's host and port, serve the OpenAI
      routes under `/v1` for the model named `target.served_name`, and answer its readiness
      probe with HTTP 200 once the model is loaded, not before.
    - `log_patterns` map engine log lines to error codes; the first match wins, so order them
      from the most specific to the most generic.
    """

    name: ClassVar[str]
    formats: ClassVar[tuple[str, ...]]
    # Distributions whose versions availability() needs from the engine's environment.
    distributions: ClassVar[tuple[str, ...]] = ()
    # What the engine serves: "generate" (completions, chat), "embed" (/v1/embeddings),
    # "rerank" (/v1/rerank).
    tasks: ClassVar[tuple[str, ...]] = ("generate",)
    # How the engine takes LoRA adapters: "peft" folders or "gguf" files.
    lora_format: ClassVar[str] = "peft"
    # Plan parameters (beyond context, replicas and extra args) this engine takes.
    parameters: ClassVar[frozenset[str]] = frozenset()
    log_patterns: ClassVar[tuple[tuple[re.Pattern[str], ErrorCode], ...]] = ()

    # OpenAI request features (see requested_features) this engine does not serve, each with
    # what to do instead: the proxy answers such a request 400 naming engine and feature.
    unsupported_features: ClassVar[dict[str, str]] = {}
    # The gauges the engine's server publishes at /metrics, by kz's name for them ("queue":
    # requests waiting, "running": requests being generated, "kv_cache": KV-cache use 0-1):
    # the server reads them for its own /kz/metrics and panels.
    metrics_gauges: ClassVar[dict[str, str]] = {}

    def availability(self, probe: EnvironmentProbe) -> tuple[bool, str, str]:
        """Return (available, version, reason when not available) for the probed environment:
        by default, available when its first distribution is installed there."""
        version = probe.version_of(*self.distributions[:1])
        if version is None:
            missing = self.distributions[0] if self.distributions else self.name
            return False, "", f"{missing} is missing: %kz engines install {self.name}"
        return True, version, ""

    def check(self, environments: EngineEnvironments) -> EngineCheck:
        """Find what runs this engine here; never raises.

        Python engines probe their environment's `distributions`; an engine that is a binary
        overrides this to find the binary instead.
        """
        probe = probe_environment(environments.python_for(self.name), self.distributions)
        if probe.error:
            return EngineCheck(
                False,
                reason=f"its environment is unusable ({probe.error}): "
                f"%kz engines install {self.name}",
            )
        available, version, reason = self.availability(probe)
        program = None if is_current_interpreter(probe.python) else probe.python
        return EngineCheck(available, version, reason, program, environments.describe(self.name))

    def install_recipe(self, hardware: HardwareProfile) -> InstallRecipe | None:
        """What to install in an own environment for this hardware; None: not installable."""
        return None

    def prepare(self, plan: Plan, target: LaunchTarget) -> None:
        """Write what the engine needs in target.workdir before it starts (default: nothing)."""
        return None

    @abstractmethod
    def launch_spec(self, plan: Plan, target: LaunchTarget) -> LaunchSpec:
        """Return the command that serves the planned model as target.served_name."""

    def adapter_request(self, body: dict, adapter: str, plan: Plan, served_name: str) -> dict:
        """The request to send for `model: DEPLOYMENT/ADAPTER`: by default unchanged (the
        engine serves each adapter under that name, as vLLM does)."""
        return body

    def plan_chat(self, architecture: str, has_template: bool) -> tuple[str | None, bool, str]:
        """Return (chat format override, can chat, reason) for a model of this architecture."""
        if has_template:
            return None, True, "the model's own chat template"
        return None, False, "the model has no chat template: use completions"

    def memory_budget(self, hardware: HardwareProfile) -> tuple[str, int]:
        """Where this engine keeps a model here, and how many bytes are free there."""
        return "RAM", hardware.ram_available

    def estimate_memory(
        self, shape: ModelShape, context_length: int, hardware: HardwareProfile, parallel: int = 1
    ) -> MemoryEstimate:
        """Estimate a replica's peak memory serving `parallel` requests of context_length tokens
        each (engines without slots are asked for one): weights, KV cache, buffers, overhead.

        The generic estimate counts f32 logits for one batch of tokens as buffers and a fixed
        overhead; engines override it with what they measurably allocate.
        """
        device, available = self.memory_budget(hardware)
        return MemoryEstimate(
            weights=shape.weights_bytes,
            kv_cache=kv_cache_bytes(shape, context_length, parallel),
            compute=shape.vocab_size * GENERIC_BATCH_TOKENS * 4 + 64 * MIB,
            overhead=GENERIC_OVERHEAD,
            device=device,
            available=available,
        )


def requested_features(body: dict) -> set[str]:
    """The OpenAI features a chat or completion request asks for beyond plain generation:
    logprobs, echo, n, json_object, json_schema, tools, stream_usage."""
    features = set()
    if body.get("logprobs") or body.get("top_logprobs"):
        features.add("logprobs")
    if body.get("echo"):
        features.add("echo")
    n = body.get("n")
    if isinstance(n, int) and not isinstance(n, bool) and n > 1:
        features.add("n")
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") in (
        "json_object",
        "json_schema",
    ):
        features.add(response_format["type"])
    if body.get("tools"):
        features.add("tools")
    stream_options = body.get("stream_options")
    if isinstance(stream_options, dict) and stream_options.get("include_usage"):
        features.add("stream_usage")
    return features


@functools.lru_cache(maxsize=1)
def load_engines() -> dict[str, Engine]:
    """Instantiate every engine registered in the `kz_jupyter.engines` entry-point group."""
    engines: dict[str, Engine] = {}
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        engine_class = entry_point.load()
        engines[entry_point.name] = engine_class()
    return engines


def get_engine(name: str) -> Engine:
    """Return the engine registered under name, or raise KeyError naming the known ones."""
    engines = load_engines()
    if name not in engines:
        known = ", ".join(sorted(engines)) or "none"
        raise KeyError(f"Unknown engine '{name}'. Known engines: {known}.")
    return engines[name]


def engine_availability(environments: EngineEnvironments | None = None) -> list[dict]:
    """Report, for every registered engine, whether it can run here, where, and why not."""
    environments = environments or EngineEnvironments()
    report = []
    for name, engine in sorted(load_engines().items()):
        check = engine.check(environments)
        report.append(
            {
                "name": name,
                "available": check.available,
                "version": check.version,
                "reason": check.reason,
                "environment": check.source,
            }
        )
    return report
