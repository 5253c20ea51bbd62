"""The llama.cpp engine: GGUF models served by llama.cpp's own `llama-server`.

The binary comes from, in order: `c.KzApp.engine_envs["llamacpp"]` (the binary, or a folder
with bin/llama-server), kz's own build (`%kz engines install llamacpp`, see llama_server_build),
or a `llama-server` on PATH (Homebrew, distribution packages and containers ship one).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import lru_cache, partial
from pathlib import Path

import psutil

from kz_jupyter.engines.llama_server_build import BINARY, build_llama_server
from kz_jupyter.models.shapes import ModelShape
from kz_jupyter.planning.engine_contract import (
    Engine,
    EngineCheck,
    InstallRecipe,
    LaunchSpec,
    LaunchTarget,
)
from kz_jupyter.planning.engine_environments import INSTALLED_MARKER, EngineEnvironments
from kz_jupyter.planning.machine import HardwareProfile
from kz_jupyter.planning.memory import KV_BYTES_PER_VALUE, MIB, MemoryEstimate
from kz_jupyter.planning.plan import Plan
from kz_jupyter.states import ErrorCode

# GGUF `general.architecture` -> llama.cpp built-in template, for files without a template.
FAMILY_TEMPLATES = {
    "gemma": "gemma",
    "gemma2": "gemma",
    "gemma3": "gemma",
    "qwen2": "chatml",
    "qwen3": "chatml",
    "mistral": "mistral-v1",
    "phi3": "phi3",
    "chatglm": "chatglm3",
}
VERSION_TIMEOUT = 20.0
TASK_FLAGS = {"embed": ["--embeddings"], "rerank": ["--reranking"]}
UBATCH_TOKENS = 512  # llama.cpp's default n_ubatch: prompts are processed this many at a time
# Measured on llama-server (its load log and peak RSS after a prompt, python -m bench memory):
# the process without a model, and what grows with the vocabulary (tokenizer, sampler).
SERVER_BASE_BYTES = 28 * MIB
VOCAB_BYTES_PER_TOKEN = 240
# Compute buffers of one ubatch: the MLP's activations (gate, up and their product, f32), the
# f16 attention mask over a slot's cache (flash attention keeps no score matrix), scratch.
MLP_BUFFERS = 3
SCRATCH_BYTES = 4 * MIB
# Layers of sliding-window attention per full-attention layer in llama.cpp's models with
# interleaved windows: their cache holds the window and one ubatch, not the whole context.
SLIDING_PATTERN = {"gemma2": 2, "gemma3": 6, "gemma3n": 5, "cohere2": 4}
# Quants the CPU backend keeps a second, repacked copy of, for files whose tensors were not read.
REPACKED_QUANTS = frozenset({"Q4_0", "IQ4_NL", "Q4_K_S", "Q4_K_M"})


def cache_cells(shape: ModelShape, context_length: int) -> float:
    """Cached tokens per slot, summed over layers: sliding-window layers keep the window and
    one ubatch, the others the whole context."""
    every = SLIDING_PATTERN.get(shape.architecture, 0) if shape.sliding_window else 0
    full_layers = shape.layers // every if every else shape.layers
    window = min(context_length, shape.sliding_window + UBATCH_TOKENS)
    return full_layers * context_length + (shape.layers - full_layers) * window


def kv_bytes(shape: ModelShape, context_length: int, parallel: int) -> int:
    """llama-server's KV cache: one per slot (not unified), f16 keys and values."""
    per_cell = shape.kv_heads * (shape.head_dim_k + shape.head_dim_v) * KV_BYTES_PER_VALUE
    return int(per_cell * cache_cells(shape, context_length) * parallel)


def repacked_bytes(shape: ModelShape, hardware: HardwareProfile) -> int:
    """The repacked copy the x86 CPU backend makes of Q4_0, Q4_K and IQ4_NL weights: as the
    file's tensors say, else (header only) all but a Q4_0-sized embedding table."""
    if hardware.machine not in ("x86_64", "AMD64") or hardware.gpus:
        return 0
    if shape.repackable_bytes >= 0:
        return shape.repackable_bytes
    if shape.dtype not in REPACKED_QUANTS:
        return 0
    embeddings = shape.vocab_size * shape.hidden_size * 18 // 32
    return max(shape.weights_bytes - embeddings, 0)


def gguf_chat_plan(
    architecture: str, has_template: bool, formats: dict[str, str], described: str
) -> tuple[str | None, bool, str]:
    """(chat format, can chat, reason) for a GGUF: its own template, else the format formats
    name for its architecture (described fills in that name), else it cannot chat."""
    if has_template:
        return None, True, "the GGUF's own chat template"
    family = formats.get(architecture)
    if family:
        return family, True, "no template in the GGUF: " + described.format(family)
    return None, False, f"no chat template in the GGUF and none known for '{architecture}'"


def find_llama_server(environments: EngineEnvironments) -> tuple[Path | None, str]:
    """The llama-server to run and where it came from, or None and what to do."""
    configured = environments.configured.get("llamacpp")
    if configured:
        path = Path(configured).expanduser()
        for candidate in (path, path / "bin" / BINARY, path / BINARY):
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate, f"configured: {candidate}"
        return None, (
            f'c.KzApp.engine_envs["llamacpp"] is {path}, which is no llama-server: name the '
            "binary, or a folder holding bin/llama-server"
        )
    own = environments.folder_for("llamacpp")
    built = own / "bin" / BINARY
    if (own / INSTALLED_MARKER).exists() and built.is_file():
        return built, f"built by kz: {built}"
    found = shutil.which(BINARY)
    if found:
        return Path(found), f"on PATH: {found}"
    return None, (
        "llama-server was not found (not configured, not built by kz, not on PATH): "
        "%kz engines install llamacpp builds it (about 7 minutes on 2 cores)"
    )


@lru_cache(maxsize=16)
def _version_of(binary: str, mtime: float) -> tuple[str, str]:
    """(version, error) from `llama-server --version`, kept while the file is unchanged."""
    try:
        done = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=VERSION_TIMEOUT
        )
    except (OSError, subprocess.SubprocessError) as error:
        return "", f"{binary} could not be run ({error})"
    text = done.stdout + done.stderr
    if done.returncode != 0:
        return "", f"{binary} --version failed: {text.strip()[-300:]}"
    version = re.search(r"version: (.+)", text)
    built = re.search(r"built with (.+)", text)
    words = [version.group(1).strip() if version else text.strip().split("\n")[0]]
    return " ".join(words + ([f"built with {built.group(1).strip()}"] if built else [])), ""


def llama_server_version(binary: Path) -> tuple[str, str]:
    """(version and build, error) of a llama-server binary."""
    try:
        mtime = binary.stat().st_mtime
    except OSError as error:
        return "", f"{binary} cannot be read ({error})"
    return _version_of(str(binary), mtime)


class LlamaCppEngine(Engine):
    """llama.cpp's `llama-server`: GGUF on CPU, Metal or CUDA, many requests at once."""

    name = "llamacpp"
    formats = ("gguf",)
    tasks = ("generate", "embed", "rerank")
    parameters = frozenset(
        {"gpu_layers", "parallel", "lora_adapters", "draft_model", "kv_cache_type"}
    )
    lora_format = "gguf"
    unsupported_features = {"echo": "put the prompt before the completion yourself"}
    metrics_gauges = {
        "queue": "llamacpp:requests_deferred",
        "running": "llamacpp:requests_processing",
    }
    log_patterns = (
        (
            re.compile(r"CUDA error|cudaMalloc failed|ggml_cuda_\w+: .*error", re.I),
            ErrorCode.CUDA_ERROR,
        ),
        (
            re.compile(
                r"failed to allocate|out of memory|Cannot allocate memory|"
                r"unable to allocate \w+ buffer|std::bad_alloc",
                re.I,
            ),
            ErrorCode.OOM,
        ),
        (
            re.compile(
                r"failed to load model|error loading model|gguf_init_from_file.*failed|"
                r"failed to read magic|invalid magic|not within the file bounds|"
                r"failed to open GGUF file|unknown model architecture",
                re.I,
            ),
            ErrorCode.MODEL_LOADING_FAILURE,
        ),
        (re.compile(r"^error: |: error: |GGML_ASSERT"), ErrorCode.RUNTIME_ERROR),
    )

    def check(self, environments: EngineEnvironments) -> EngineCheck:
        """Find the llama-server binary and ask it its version and build."""
        binary, source = find_llama_server(environments)
        if binary is None:
            return EngineCheck(False, reason=source, source="-")
        version, error = llama_server_version(binary)
        if error:
            return EngineCheck(
                False, reason=f"{error}: %kz engines install llamacpp", source=source
            )
        return EngineCheck(True, version, "", str(binary), source)

    def install_recipe(self, hardware: HardwareProfile) -> InstallRecipe:
        """Build llama-server from the pinned llama.cpp source for this machine (kept)."""
        return InstallRecipe(build=partial(build_llama_server, hardware=hardware))

    def adapter_request(self, body: dict, adapter: str, plan: Plan, served_name: str) -> dict:
        """Ask for the adapter by its index in llama-server's list, at full scale (the others,
        and requests to the base model, have it at scale 0)."""
        index = list(plan.lora_adapters).index(adapter)
        return body | {"model": served_name, "lora": [{"id": index, "scale": 1.0}]}

    def plan_chat(self, architecture: str, has_template: bool) -> tuple[str | None, bool, str]:
        """Use the GGUF's template, else llama.cpp's built-in one for the family, else none."""
        return gguf_chat_plan(
            architecture, has_template, FAMILY_TEMPLATES, "llama.cpp's {} template"
        )

    def estimate_memory(
        self, shape: ModelShape, context_length: int, hardware: HardwareProfile, parallel: int = 1
    ) -> MemoryEstimate:
        """Peak RSS of llama-server with `parallel` slots of context_length tokens: the mapped
        weights (and a repacked copy of some quants), the f16 KV cache of every slot, the
        compute buffers of one ubatch and the logits of every slot, and the server itself.
        (Prompt-cache reuse works inside each slot's cache; the extra RAM cache is off.)"""
        device, available = self.memory_budget(hardware)
        feed_forward = shape.feed_forward or 4 * shape.hidden_size
        kv = kv_bytes(shape, context_length, parallel)
        compute = (
            UBATCH_TOKENS * feed_forward * 4 * MLP_BUFFERS
            + UBATCH_TOKENS * context_length * 2
            + parallel * shape.vocab_size * 4
            + SCRATCH_BYTES
        )
        return MemoryEstimate(
            weights=shape.weights_bytes + repacked_bytes(shape, hardware),
            kv_cache=kv,
            compute=compute,
            overhead=SERVER_BASE_BYTES + VOCAB_BYTES_PER_TOKEN * shape.vocab_size,
            device=device,
            available=available,
        )

    def launch_spec(self, plan: Plan, target: LaunchTarget) -> LaunchSpec:
        """Serve the GGUF under the deployment's name: the planned slots, each with the
        planned context, continuous batching, metrics, prompt-cache reuse, one thread per
        physical core of the replica's node; LoRA adapters loaded at scale 0 (a request names
        one to apply it), a draft model, a quantized KV cache."""
        threads = str(psutil.cpu_count(logical=False) or os.cpu_count() or 1)
        slots = max(plan.parallel, 1)
        args = [
            "--model", plan.model_path,
            "--alias", target.served_name,
            "--host", target.host,
            "--port", str(target.port),
            "--ctx-size", str(plan.context_length * slots),
            "--parallel", str(slots),
            "--threads", threads,
            "--threads-batch", threads,
            "--cont-batching",
            "--metrics",
            "--cache-reuse", "256",
            "--cache-ram", "0",
            "--no-webui",
            "--jinja",
        ]  # fmt: skip
        if plan.chat_format:
            args += ["--chat-template", plan.chat_format]
        if plan.gpu_layers is not None:
            args += ["--n-gpu-layers", str(plan.gpu_layers)]
        args += TASK_FLAGS.get(plan.task, [])
        for adapter in plan.lora_adapters.values():
            args += ["--lora-scaled", f"{adapter}:0"]  # the plan holds expanded paths
        if plan.draft_model_path:
            args += ["--model-draft", plan.draft_model_path, "--spec-type", "draft-simple"]
            if plan.gpu_layers is not None:
                args += ["--gpu-layers-draft", str(plan.gpu_layers)]
        if plan.kv_cache_type:
            kinds = ("k", "v", "k-draft", "v-draft") if plan.draft_model_path else ("k", "v")
            for kind in kinds:
                args += [f"--cache-type-{kind}", plan.kv_cache_type]
        return LaunchSpec(
            args=(*args, *plan.extra_args),
            program=plan.engine_program,
            readiness_path="/health",  # 503 while the model loads, 200 once it serves
        )
