"""The MLX engine: safetensors models behind `mlx_lm.server`, on Apple Silicon (or Linux CPU).

Quirks handled here so that a user never gets garbage or a silent failure from them:
- mlx_lm reads `rope_theta` (and `rope_scaling`) only at the top level of config.json, while
  transformers 5 writes them inside `rope_parameters`: without them the model runs with the
  default rope base and answers gibberish. The engine is given a view of the model folder whose
  config.json has them at the top level.
- `mlx_lm.server` loads a model by the request's `model` field (a path or a Hub id). The view
  is named after the deployment and the server runs beside it, so requests for the deployment
  load exactly that folder, and answers carry the deployment's name.
- It answers `/v1/models` (with other models from the Hugging Face cache, never ours) and
  `/health` before the model is loaded, and a model that fails to load leaves the process
  running with a dead generation thread: readiness is a one-token completion, and a `/health`
  error status ends the engine.
"""

from __future__ import annotations

import json
import platform
import re
from pathlib import Path

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

# Measured with mlx-lm 0.32 on Linux CPU (python -m bench engines): the server without weights.
SERVER_BYTES = 160 * MIB
# The versions `%kz engines install mlx` installs: the ones the suite runs. To upgrade: change
# them, install again (`%kz engines install mlx`, or remove .engines/mlx and run
# scripts/setup.sh), then run tests/engines and `python -m bench engines`.
MLX_LM_VERSION = "0.32.2"
MLX_VERSION = "0.32.4"
PREFILL_STEP = 2048  # mlx_lm.server's --prefill-step-size default


def mlx_config(config: dict) -> dict:
    """config.json as mlx_lm reads it: rope settings lifted from `rope_parameters`."""
    rope = config.get("rope_parameters")
    if not isinstance(rope, dict):
        return config
    fixed = dict(config)
    if "rope_theta" not in fixed and "rope_theta" in rope:
        fixed["rope_theta"] = rope["rope_theta"]
    kind = rope.get("rope_type") or rope.get("type")
    if "rope_scaling" not in fixed and kind not in (None, "default"):
        fixed["rope_scaling"] = {k: v for k, v in rope.items() if k != "rope_theta"}
    return fixed


class MlxEngine(Engine):
    """MLX through `python -m mlx_lm.server`: safetensors on Apple Silicon or a Linux CPU."""

    name = "mlx"
    formats = ("safetensors",)
    distributions = ("mlx-lm", "mlx")
    log_patterns = (
        (
            re.compile(r"\[metal::malloc\]|std::bad_alloc|out of memory|MemoryError", re.I),
            ErrorCode.OOM,
        ),
        (
            re.compile(
                r"\[load_safetensors\]|Invalid json header|HFValidationError|"
                r"RepositoryNotFoundError|No safetensors found|Model type \S+ not supported|"
                r"Received parameters not in model|Missing parameters",
                re.I,
            ),
            ErrorCode.MODEL_LOADING_FAILURE,
        ),
        python_failure("health check"),
    )

    def availability(self, probe: EnvironmentProbe) -> tuple[bool, str, str]:
        """mlx-lm and mlx must be installed in the engine's environment."""
        version = probe.version_of("mlx-lm")
        if version is None or probe.version_of("mlx") is None:
            return False, "", "mlx-lm is not installed in its environment: %kz engines install mlx"
        return True, version, ""

    def install_recipe(self, hardware: HardwareProfile) -> InstallRecipe | None:
        """mlx-lm on Apple Silicon; its CPU build on Linux; MLX_LM_VERSION and MLX_VERSION."""
        if hardware.apple_silicon:
            return InstallRecipe(packages=(f"mlx-lm=={MLX_LM_VERSION}", f"mlx=={MLX_VERSION}"))
        if hardware.system == "Linux" and platform.machine() in ("x86_64", "aarch64"):
            return InstallRecipe(
                packages=(f"mlx-lm[cpu]=={MLX_LM_VERSION}", f"mlx[cpu]=={MLX_VERSION}")
            )
        return None

    def estimate_memory(
        self, shape: ModelShape, context_length: int, hardware: HardwareProfile, parallel: int = 1
    ) -> MemoryEstimate:
        """Weights as stored, a KV cache in the weights' precision, the attention scores of one
        prompt step (mlx-lm reads a prompt PREFILL_STEP tokens at a time, against everything
        before them), and the server."""
        device, available = self.memory_budget(hardware)
        factor = 2 if shape.dtype == "F32" else 1
        step = min(context_length, PREFILL_STEP)
        scores = shape.heads * step * context_length * 2 * factor
        return MemoryEstimate(
            weights=shape.weights_bytes,
            kv_cache=kv_cache_bytes(shape, context_length) * factor,
            compute=scores + 4 * shape.vocab_size * factor,
            overhead=SERVER_BYTES,
            device=device,
            available=available,
        )

    def prepare(self, plan: Plan, target: LaunchTarget) -> None:
        """A view of the model folder named after the deployment, with an mlx-ready config."""
        view = target.workdir / target.served_name
        view.mkdir(parents=True, exist_ok=True)
        for old in view.iterdir():
            old.unlink()
        source = Path(plan.model_path)
        for item in source.iterdir():
            if item.name != "config.json":
                (view / item.name).symlink_to(item.resolve())
        config = json.loads((source / "config.json").read_text())
        (view / "config.json").write_text(json.dumps(mlx_config(config), indent=2))

    def launch_spec(self, plan: Plan, target: LaunchTarget) -> LaunchSpec:
        """mlx_lm.server on the view, run from the work folder so the name resolves to it."""
        args = [
            "-m",
            "mlx_lm.server",
            "--model",
            target.served_name,
            "--host",
            target.host,
            "--port",
            str(target.port),
        ]
        return LaunchSpec(
            args=(*args, *plan.extra_args),
            program=plan.engine_program,
            env={"HF_HUB_OFFLINE": "1"},
            readiness_path="/v1/completions",
            readiness_body={"model": target.served_name, "prompt": "Hi", "max_tokens": 1},
            health_path="/health",
            cwd=str(target.workdir),
        )
