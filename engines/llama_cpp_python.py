"""GGUF models served by llama-cpp-python's OpenAI server: a second llama.cpp engine.

It serves one request at a time, so it is never the first choice (the `llamacpp` engine runs
llama.cpp's own server); it stays for comparison (python -m bench concurrency) and for
environments that have llama-cpp-python but no llama-server.
"""

from __future__ import annotations

import os
import re

import psutil

from kz_jupyter.engines.llamacpp import gguf_chat_plan
from kz_jupyter.models.shapes import ModelShape
from kz_jupyter.planning.engine_contract import (
    Engine,
    InstallRecipe,
    LaunchSpec,
    LaunchTarget,
    python_failure,
)
from kz_jupyter.planning.engine_environments import EnvironmentProbe
from kz_jupyter.planning.machine import HardwareProfile
from kz_jupyter.planning.memory import MIB, MemoryEstimate, kv_cache_bytes
from kz_jupyter.planning.plan import Plan
from kz_jupyter.states import ErrorCode

SERVER_DEPENDENCIES = ("uvicorn", "fastapi", "sse-starlette", "pydantic-settings")

# GGUF `general.architecture` -> llama-cpp-python chat format, for files without a template.
FAMILY_CHAT_FORMATS = {
    "gemma": "gemma",
    "gemma2": "gemma",
    "gemma3": "gemma",
    "qwen2": "qwen",
    "qwen3": "qwen",
    "mistral": "mistral-instruct",
    "phi2": "phind",
    "chatglm": "chatglm3",
}


# Calibrated on llama-cpp-python 0.3.36 against the peak RSS of SmolLM2 135M and Gemma 3 270M
# with a prompt filling the context (python -m bench memory): the server process without
# a model (Python, uvicorn, libllama mapped), its vocabulary tables per token, and the attention
# scratch per context token (scores and softmax of one ubatch: 1.6 x heads f32 values, plus one
# f32 mask per attention kind).
SERVER_BASE_BYTES = 91 * MIB
VOCAB_BYTES_PER_TOKEN = 133
SCORES_PER_HEAD = 1.6
ACTIVATION_BYTES = 8 * MIB
UBATCH_TOKENS = 512  # llama.cpp's default n_ubatch: prompts are processed this many at a time


class LlamaCppPythonEngine(Engine):
    """llama.cpp through `python -m llama_cpp.server`: GGUF on CPU, Metal or CUDA."""

    name = "llama-cpp-python"
    formats = ("gguf",)
    distributions = ("llama_cpp_python", *SERVER_DEPENDENCIES)
    parameters = frozenset({"gpu_layers"})
    unsupported_features = {
        "logprobs": "deploy with --arg --logits_all --arg True, or on llamacpp",
        "echo": "deploy on llamacpp",
        "n": "send n requests, or deploy on llamacpp",
        "json_schema": "use json_object, or deploy on llamacpp",
        "stream_usage": "count tokens without streaming, or deploy on llamacpp",
    }
    log_patterns = (
        (
            re.compile(r"CUDA error|cudaMalloc failed|ggml_cuda_\w+: .*error", re.I),
            ErrorCode.CUDA_ERROR,
        ),
        (
            re.compile(
                r"failed to allocate|out of memory|Cannot allocate memory|MemoryError", re.I
            ),
            ErrorCode.OOM,
        ),
        (
            re.compile(
                r"failed to load model|error loading model|gguf_init_from_file.*failed|"
                r"invalid magic|Model path does not exist",
                re.I,
            ),
            ErrorCode.MODEL_LOADING_FAILURE,
        ),
        python_failure(),
    )

    def availability(self, probe: EnvironmentProbe) -> tuple[bool, str, str]:
        """llama-cpp-python with its server extra must be installed."""
        version = probe.version_of("llama_cpp_python")
        if version is None:
            return False, "", "llama-cpp-python is missing: %kz engines install llama-cpp-python"
        missing = [d for d in SERVER_DEPENDENCIES if probe.version_of(d) is None]
        if missing:
            return (
                False,
                version,
                f"the llama-cpp-python server extra is missing ({', '.join(missing)}): "
                "pip install 'llama-cpp-python[server]'",
            )
        return True, version, ""

    def install_recipe(self, hardware: HardwareProfile) -> InstallRecipe:
        """llama-cpp-python with its OpenAI server (built from source for this machine)."""
        return InstallRecipe(packages=("llama-cpp-python[server]",))

    def plan_chat(self, architecture: str, has_template: bool) -> tuple[str | None, bool, str]:
        """Use the GGUF's template, else the family's, else say the model cannot chat."""
        return gguf_chat_plan(
            architecture, has_template, FAMILY_CHAT_FORMATS, "llama-cpp-python's {} format"
        )

    def estimate_memory(
        self, shape: ModelShape, context_length: int, hardware: HardwareProfile, parallel: int = 1
    ) -> MemoryEstimate:
        """Peak RSS of llama_cpp.server with a full context: mapped weights, f16 KV cache (full
        size on every layer, as llama-cpp-python allocates it, sliding-window layers too), the
        attention scratch of one ubatch over the whole context, one row of logits, and the
        server process with its vocabulary tables.
        """
        device, available = self.memory_budget(hardware)
        masks = 2 if shape.sliding_window else 1
        per_context_token = UBATCH_TOKENS * 4 * (SCORES_PER_HEAD * max(shape.heads, 1) + masks)
        return MemoryEstimate(
            weights=shape.weights_bytes,
            kv_cache=kv_cache_bytes(shape, context_length),
            compute=int(context_length * per_context_token)
            + ACTIVATION_BYTES
            + 4 * shape.vocab_size,
            overhead=SERVER_BASE_BYTES + VOCAB_BYTES_PER_TOKEN * shape.vocab_size,
            device=device,
            available=available,
        )

    def launch_spec(self, plan: Plan, target: LaunchTarget) -> LaunchSpec:
        """Serve the GGUF file under the deployment's name, one thread per physical core.

        Runs on the replica's node, so the core count is that node's. llama-cpp-python's own
        default (half the logical cores) leaves half of a machine without SMT idle.
        """
        threads = str(psutil.cpu_count(logical=False) or os.cpu_count() or 1)
        args = [
            "-m",
            "llama_cpp.server",
            "--model",
            plan.model_path,
            "--model_alias",
            target.served_name,
            "--host",
            target.host,
            "--port",
            str(target.port),
            "--n_ctx",
            str(plan.context_length),
            "--n_threads",
            threads,
            "--n_threads_batch",
            threads,
        ]
        if "--logits_all" not in plan.extra_args:
            # The server's default (True) keeps f32 logits for every token of the context:
            # n_ctx x n_vocab x 4 bytes (8 GiB for Gemma 3 at 8k). Only logprobs need them:
            # deploy with --arg --logits_all --arg True for those.
            args += ["--logits_all", "False"]
        if "--interrupt_requests" not in plan.extra_args:
            # The server's default (True) ends a stream early, without a finish reason, as soon
            # as another request waits: with two users, one answer would be cut short. Queue.
            args += ["--interrupt_requests", "False"]
        if plan.chat_format:
            args += ["--chat_format", plan.chat_format]
        if plan.gpu_layers is not None:
            args += ["--n_gpu_layers", str(plan.gpu_layers)]
        return LaunchSpec(
            args=(*args, *plan.extra_args), program=plan.engine_program, readiness_path="/v1/models"
        )
