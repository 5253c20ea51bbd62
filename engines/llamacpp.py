"""The llama.cpp engine: GGUF models served by llama-cpp-python's OpenAI server."""

from __future__ import annotations

import os
import re

import psutil

from kz_jupyter.engine_api import Engine, LaunchSpec, distribution_version
from kz_jupyter.planner import Plan
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


class LlamaCppEngine(Engine):
    """llama.cpp through `python -m llama_cpp.server`: GGUF on CPU, Metal or CUDA."""

    name = "llamacpp"
    formats = ("gguf",)
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
        (re.compile(r"^Traceback \(most recent call last\)|^\w+Error: "), ErrorCode.RUNTIME_ERROR),
    )

    def availability(self) -> tuple[bool, str, str]:
        """llama-cpp-python with its server extra must be installed."""
        version = distribution_version("llama_cpp_python")
        if version is None:
            return False, "", "llama-cpp-python is missing: pip install 'kz-jupyter[llamacpp]'"
        missing = [d for d in SERVER_DEPENDENCIES if distribution_version(d) is None]
        if missing:
            return (
                False,
                version,
                f"the llama-cpp-python server extra is missing ({', '.join(missing)}): "
                "pip install 'llama-cpp-python[server]'",
            )
        return True, version, ""

    def plan_chat(self, architecture: str, has_template: bool) -> tuple[str | None, bool, str]:
        """Use the GGUF's template, else the family's, else say the model cannot chat."""
        if has_template:
            return None, True, "the GGUF's own chat template"
        family = FAMILY_CHAT_FORMATS.get(architecture)
        if family:
            return family, True, f"no template in the GGUF: using the {architecture} family's"
        return None, False, f"no chat template in the GGUF and none known for '{architecture}'"

    def launch_spec(self, plan: Plan, served_name: str, host: str, port: int) -> LaunchSpec:
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
            served_name,
            "--host",
            host,
            "--port",
            str(port),
            "--n_ctx",
            str(plan.context_length),
            "--n_threads",
            threads,
            "--n_threads_batch",
            threads,
        ]
        if plan.chat_format:
            args += ["--chat_format", plan.chat_format]
        return LaunchSpec(args=(*args, *plan.extra_args), readiness_path="/v1/models")
