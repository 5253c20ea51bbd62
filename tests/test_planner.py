"""Planning: engine choice with reasons, chat template fallback, context limits."""

from __future__ import annotations

import pytest

from kz_jupyter.hardware import probe_hardware
from kz_jupyter.hub import HubSettings
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
    assert "gemma3 family" in plan.chat_reason


def test_gguf_without_template_of_unknown_family_cannot_chat(tiny_gguf):
    plan = plan_for(tiny_gguf("llama", chat_template=None))
    assert not plan.can_chat
    assert "no chat template" in plan.chat_reason


def test_context_above_model_maximum_is_refused(tiny_gguf):
    with pytest.raises(PlanError, match="exceeds the model's maximum"):
        plan_for(tiny_gguf(context_length=1024), context_length=2048)


def test_unknown_engine_is_refused_with_known_ones(smollm2_path):
    with pytest.raises(PlanError, match="Known engines: echo, llamacpp, mlx, vllm"):
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
