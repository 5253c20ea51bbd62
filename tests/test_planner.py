"""Planning: engine choice with reasons, chat template fallback, context limits."""

from __future__ import annotations

import pytest

from kz_jupyter.hardware import probe_hardware
from kz_jupyter.hub import HubSettings
from kz_jupyter.memory import GIB
from kz_jupyter.model_files import ModelNotFoundError
from kz_jupyter.planner import Overrides, Plan, PlanError, lora_rank
from kz_jupyter.provisioning import prepare
from kz_jupyter.states import ErrorCode


def plan_for(path, **options) -> Plan:
    plan, _ = prepare(str(path), probe_hardware(), HubSettings.from_env(), Overrides(**options))
    return plan


def test_smollm2_plans_on_llamacpp_with_its_own_template(smollm2_path):
    plan = plan_for(smollm2_path)
    assert plan.engine == "llamacpp"
    assert "gguf" in plan.engine_reason
    assert plan.architecture == "llama"
    assert plan.can_chat and plan.chat_format is None
    assert plan.context_length == 4096
    assert plan.weights_bytes == smollm2_path.stat().st_size
    assert Plan.from_dict(plan.to_dict()) == plan


def test_gguf_without_template_falls_back_to_family(tiny_gguf):
    plan = plan_for(tiny_gguf("gemma3", chat_template=None))
    assert plan.chat_format == "gemma" and plan.can_chat
    assert "llama.cpp's gemma template" in plan.chat_reason


def test_gguf_without_template_of_unknown_family_cannot_chat(tiny_gguf):
    plan = plan_for(tiny_gguf("llama", chat_template=None))
    assert not plan.can_chat
    assert "no chat template" in plan.chat_reason


def test_context_above_model_maximum_is_refused(tiny_gguf):
    with pytest.raises(PlanError, match="exceeds the model's maximum"):
        plan_for(tiny_gguf(context_length=1024), context_length=2048)


def test_unknown_engine_is_refused_with_known_ones(smollm2_path):
    with pytest.raises(
        PlanError, match="Known engines: echo, llama-cpp-python, llamacpp, mlx, vll"
    ):
        plan_for(smollm2_path, engine="nope")


def test_not_a_gguf_file_is_a_loading_failure(tmp_path):
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"definitely not gguf" * 10)
    with pytest.raises(ModelNotFoundError, match="not a readable GGUF") as error:
        plan_for(bogus)
    assert error.value.code is ErrorCode.MODEL_LOADING_FAILURE


def test_lora_adapters_need_an_engine_that_takes_them_and_a_readable_config(smollm2_path, tmp_path):
    with pytest.raises(PlanError, match="llamacpp does not take --lora"):
        plan_for(smollm2_path, lora_adapters={"fr": str(tmp_path)})
    with pytest.raises(PlanError, match="LoRA adapter 'fr': .*adapter_config.json"):
        lora_rank({"fr": str(tmp_path)})
    (tmp_path / "adapter_config.json").write_text('{"r": 32}')
    assert lora_rank({"fr": str(tmp_path)}) == 32


def test_the_pip_shipped_sentence_transformers_model_plans_as_an_embedding_model():
    plan = plan_for("all-minilm-l6-v2")
    assert plan.source == "pip" and plan.format == "safetensors" and plan.task == "embed"
    assert plan.engine == "vllm" and plan.architecture == "bert"
    assert plan.context_length == 256  # sentence_bert_config.json's max_seq_length, not 512
    assert not plan.can_chat and "embedding model: use /v1/embeddings" in plan.chat_reason
    assert plan.rejected["mlx"] == "serves no embedding models"
    assert plan.rejected["llamacpp"].startswith("gguf only")
    assert Plan.from_dict(plan.to_dict()) == plan


def test_a_generative_model_has_the_generate_task(smollm2_path):
    assert plan_for(smollm2_path).task == "generate"


def test_llamacpp_plans_as_many_parallel_requests_as_memory_allows(smollm2_path):
    import dataclasses

    def planned(ram: int, **options) -> Plan:
        hardware = dataclasses.replace(probe_hardware(), ram_available=ram)
        plan, _ = prepare(str(smollm2_path), hardware, HubSettings.from_env(), Overrides(**options))
        return plan

    eight = planned(64 * GIB)
    assert eight.parallel == 8 and eight.context_length == 4096
    per_request = planned(64 * GIB, parallel=1).memory["kv_cache"]
    assert eight.memory["kv_cache"] == 8 * per_request  # the estimate covers every slot
    four = planned(64 * GIB, parallel=4).memory["total"]
    two = planned(64 * GIB, parallel=2).memory["total"]
    # the most slots that leave half of the free memory to others ...
    assert planned(2 * four + 2**20).parallel == 4
    # ... else the most that fit at all
    short = planned((four + two) // 2)
    assert short.parallel == 2 and short.memory["fits"]
    assert planned(64 * GIB, parallel=16).parallel == 16  # --parallel N is taken as given


def test_parallel_is_refused_by_engines_without_slots(smollm2_path):
    with pytest.raises(PlanError, match="llama-cpp-python does not take --parallel"):
        plan_for(smollm2_path, engine="llama-cpp-python", parallel=2)
