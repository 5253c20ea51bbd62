"""Hub models through a Hub on loopback (olah): search, file choice per hardware, downloads with
progress, verification, offline reuse, memory fit, and bad input."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from kz_jupyter.deploy_options import EngineOptions
from kz_jupyter.models.hub import HubError, HubSettings, RemoteFile, search_hub
from kz_jupyter.models.local_files import ModelNotFoundError
from kz_jupyter.models.references import ModelReferenceError, parse_reference
from kz_jupyter.models.sources import open_source
from kz_jupyter.models.verification import verify_files
from kz_jupyter.planning.engine_environments import EngineEnvironments
from kz_jupyter.planning.hardware import probe_hardware
from kz_jupyter.planning.machine import GpuInfo, HardwareProfile
from kz_jupyter.planning.memory import GIB
from kz_jupyter.planning.planner import PlanError
from kz_jupyter.planning.provisioning import fetch, prepare
from kz_jupyter.states import ErrorCode

TINY = "kz-test/tiny-llama-GGUF"


def machine(ram: int, gpus: int = 0) -> HardwareProfile:
    """This machine's profile with chosen free RAM (and simulated NVIDIA GPUs)."""
    gpu = GpuInfo(0, "NVIDIA H100", 80 * GIB, 0, 80 * GIB)
    return dataclasses.replace(probe_hardware(), ram_available=ram, gpus=(gpu,) * gpus)


def total(model: str, settings, **overrides) -> int:
    plan, _ = prepare(model, machine(64 * GIB), settings, EngineOptions(**overrides))
    return plan.memory["total"]


def test_search_lists_hub_models_by_downloads_with_formats(hub_env):
    found = search_hub("llama", hub_env)
    ids = [m.repo_id for m in found]
    assert ids[0] == TINY and ids.index(TINY) < ids.index("kz-test/tiny-llama-safetensors")
    tiny = found[0]
    assert (tiny.downloads, tiny.likes, tiny.formats) == (500, 7, ("gguf",))
    gated = next(m for m in found if m.repo_id == "kz-test/gated-llama-GGUF")
    assert gated.gated
    safetensors = next(m for m in found if m.repo_id == "kz-test/tiny-llama-safetensors")
    assert safetensors.formats == ("safetensors",)


def test_search_with_the_hub_out_of_reach_says_so_without_retrying(monkeypatch):
    def no_api_call(self):
        raise AssertionError("asked the unreachable Hub anyway")

    monkeypatch.setattr(HubSettings, "api", no_api_call)
    with pytest.raises(HubError, match=r"\(http://127.0.0.1:9\) is not reachable.*%kz models"):
        search_hub("llama", HubSettings(endpoint="http://127.0.0.1:9"))


def test_default_file_choice_is_q4_k_m_without_projector(hub_env):
    plan, source = prepare(TINY, machine(64 * GIB), hub_env)
    assert (plan.engine, plan.format, plan.variant) == ("llamacpp", "gguf", "Q4_K_M")
    assert plan.files == ("tiny-llama-Q4_K_M.gguf",)
    assert plan.download_bytes > 200_000 and plan.model_path == ""
    assert [c.label for c in source.candidates][:3] == ["Q4_K_M", "Q5_K_M", "Q8_0"]
    assert plan.architecture == "llama" and plan.can_chat
    assert plan.memory["fits"] and plan.memory["weights"] == plan.download_bytes


def test_tight_memory_steps_down_the_ladder_then_refuses_with_oom(hub_env):
    one = EngineOptions(parallel=1)  # one request at a time: the quant is what must give
    q2 = total(f"{TINY}:Q2_K", hub_env, parallel=1)
    q4 = total(f"{TINY}:Q4_K_M", hub_env, parallel=1)
    assert q2 < q4
    plan, _ = prepare(TINY, machine(q2 + 1000), hub_env, one)
    assert plan.variant == "Q2_K"
    with pytest.raises(PlanError, match="Will not fit") as error:
        prepare(TINY, machine(q2 - 1000), hub_env, one)
    assert error.value.code is ErrorCode.OOM
    assert "Tried Q4_K_M" in str(error.value) and "Q2_K" in str(error.value)
    forced, _ = prepare(TINY, machine(q2 - 1000), hub_env, EngineOptions(force=True, parallel=1))
    assert forced.forced and forced.variant == "Q4_K_M"
    # left to the planner, fewer parallel requests come before a smaller quant
    plan, _ = prepare(TINY, machine(q4 + 1000), hub_env)
    assert plan.variant == "Q4_K_M" and plan.memory["fits"]


def test_a_gpu_machine_without_vllm_still_gets_gguf_and_says_why(hub_env):
    plan, _ = prepare(TINY, machine(64 * GIB, gpus=1), hub_env)
    assert plan.engine == "llamacpp" and "1 NVIDIA GPU" in plan.engine_reason


def test_named_quant_and_named_file(hub_env):
    plan, _ = prepare(f"{TINY}:q8_0", machine(64 * GIB), hub_env)
    assert plan.files == ("tiny-llama-Q8_0.gguf",)
    plan, _ = prepare(f"{TINY}/tiny-llama-Q5_K_M.gguf", machine(64 * GIB), hub_env)
    assert plan.variant == "Q5_K_M"


def test_sharded_gguf_is_one_variant_downloaded_whole(hub_env):
    plan, source = prepare("kz-test/tiny-llama-sharded-GGUF", machine(64 * GIB), hub_env)
    assert plan.variant == "Q8_0" and len(plan.files) == 2
    assert plan.entry == "Q8_0/tiny-llama-Q8_0-00001-of-00002.gguf"
    fetched = fetch(plan, source)
    assert fetched.model_path.endswith("tiny-llama-Q8_0-00001-of-00002.gguf")


def test_safetensors_shape_is_read_from_headers_and_config(hub_env, tmp_path):
    source = open_source(parse_reference("kz-test/tiny-llama-safetensors"), hub_env)
    (candidate,) = source.candidates
    shape = source.shape(candidate)
    assert (shape.layers, shape.kv_heads, shape.head_dim_k) == (2, 2, 16)
    assert shape.parameters == 32 * 64 + 128 * 64 and shape.dtype == "BF16"
    assert shape.weights_bytes == shape.parameters * 2 and shape.has_chat_template
    nowhere = EngineEnvironments(root=tmp_path / "no-engines")
    with pytest.raises(PlanError) as refused:
        prepare("kz-test/tiny-llama-safetensors", machine(64 * GIB), hub_env, None, None, nowhere)
    message = str(refused.value)
    assert "llamacpp: gguf only; the model offers safetensors" in message
    assert "vllm: not usable here: vLLM is not installed" in message
    assert "%kz engines install vllm" in message and "%kz engines install mlx" in message


def test_pull_reports_progress_and_verifies(hub_env):
    plan, source = prepare(TINY, machine(64 * GIB), hub_env)
    seen = []
    fetched = fetch(plan, source, lambda done, total: seen.append((done, total)))
    assert seen and seen[-1] == (plan.download_bytes, plan.download_bytes)
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:], strict=False))
    assert fetched.model_path.endswith("tiny-llama-Q4_K_M.gguf")
    again, _ = prepare(TINY, machine(64 * GIB), hub_env)
    assert again.download_bytes == 0 and again.model_path == fetched.model_path


def test_gated_repo_needs_a_token(hub_env, local_hub):
    with pytest.raises(HubError, match="gated: accept its terms .* set HF_TOKEN"):
        prepare("kz-test/gated-llama-GGUF", machine(64 * GIB), hub_env)
    authorized = dataclasses.replace(hub_env, token=local_hub.token)
    plan, source = prepare("kz-test/gated-llama-GGUF", machine(64 * GIB), authorized)
    assert fetch(plan, source).model_path


def test_cached_model_is_reused_with_the_hub_stopped(hub_env, local_hub):
    plan, source = prepare(TINY, machine(64 * GIB), hub_env)
    path = fetch(plan, source).model_path
    local_hub.stop()
    try:
        offline, source = prepare(TINY, machine(64 * GIB), hub_env)
        assert source.from_cache_only and offline.model_path == path
        assert fetch(offline, source).model_path == path
        with pytest.raises(HubError, match="not reachable"):
            prepare("kz-test/huge-llama-GGUF", machine(64 * GIB), hub_env)
    finally:
        local_hub.start()


def test_truncated_file_must_be_downloaded_again(hub_env):
    plan, source = prepare(TINY, machine(64 * GIB), hub_env)
    path = fetch(plan, source).model_path
    with open(path, "r+b") as file:
        file.truncate(1000)
    plan, source = prepare(TINY, machine(64 * GIB), hub_env)
    with pytest.raises(ModelNotFoundError, match="--redownload") as error:
        fetch(plan, source)
    assert error.value.code is ErrorCode.MUST_REDOWNLOAD
    plan, source = prepare(TINY, machine(64 * GIB), hub_env)
    assert fetch(plan, source, redownload=True).model_path == path


def test_a_corrupt_file_of_the_right_size_must_be_downloaded_again(hub_env):
    plan, source = prepare(TINY, machine(64 * GIB), hub_env)
    path = Path(fetch(plan, source).model_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte flipped: the size is right, only the hash tells
    path.write_bytes(bytes(data))
    plan, source = prepare(TINY, machine(64 * GIB), hub_env)
    with pytest.raises(ModelNotFoundError, match="does not match its hash") as error:
        fetch(plan, source)
    assert error.value.code is ErrorCode.MUST_REDOWNLOAD and "--redownload" in str(error.value)


def test_a_file_the_hub_gives_no_hash_for_is_checked_by_its_size(tmp_path, monkeypatch):
    monkeypatch.setenv("KZ_CACHE_DIR", str(tmp_path / "kz-cache"))
    (tmp_path / "notes.txt").write_text("any text")
    unhashed = RemoteFile("notes.txt", len("any text"))
    assert verify_files(tmp_path, [unhashed]) == []  # its content cannot be checked
    longer = RemoteFile("notes.txt", 100)
    assert [p.reason for p in verify_files(tmp_path, [longer])] == ["8 bytes, expected 100"]


def test_over_size_model_is_refused_with_oom_and_suggestions(hub_env):
    with pytest.raises(PlanError) as error:
        prepare(
            "kz-test/huge-llama-GGUF",
            machine(16 * GIB),
            hub_env,
            EngineOptions(context_length=1_048_576),
        )
    assert error.value.code is ErrorCode.OOM
    assert "--context" in str(error.value) and "smaller quant" in str(error.value)


@pytest.mark.parametrize(
    ("model", "error", "message"),
    [
        ("kz-test/no-such-repo", HubError, "No model repo 'kz-test/no-such-repo'"),
        (f"{TINY}:Q3_K_S", HubError, "No Q3_K_S GGUF in the repo. Quants: Q2_K, Q4_K_M"),
        ("not a repo!", ModelReferenceError, "neither a local path"),
        (f"{TINY}/../../etc/passwd", ModelReferenceError, "not a file inside the repository"),
    ],
)
def test_bad_model_references_get_one_clear_line(hub_env, model, error, message):
    with pytest.raises(error, match=message.replace(".", r"\.")) as raised:
        prepare(model, machine(64 * GIB), hub_env)
    assert "\n" not in str(raised.value)


def test_offline_mode_uses_the_cache_only(hub_env, monkeypatch):
    plan, source = prepare(TINY, machine(64 * GIB), hub_env)
    path = fetch(plan, source).model_path
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = HubSettings.from_env()
    plan, source = prepare(TINY, machine(64 * GIB), offline)
    assert source.from_cache_only and plan.model_path == path
    with pytest.raises(HubError, match="Offline mode"):
        prepare("kz-test/tiny-llama-sharded-GGUF", machine(64 * GIB), offline)


def test_engine_parameters_the_engine_does_not_take_are_refused(hub_env):
    plan, _ = prepare(TINY, machine(64 * GIB), hub_env, EngineOptions(gpu_layers=0))
    assert plan.gpu_layers == 0
    with pytest.raises(PlanError, match="llamacpp does not take --dtype, --tensor-parallel"):
        prepare(
            TINY, machine(64 * GIB), hub_env, EngineOptions(dtype="bfloat16", tensor_parallel=2)
        )
