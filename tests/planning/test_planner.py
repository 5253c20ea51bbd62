"""Planning: engine choice with reasons, chat template fallback, context limits."""

from __future__ import annotations

import pytest

from kz_jupyter.deploy_options import EngineOptions
from kz_jupyter.models.companions import CompanionError, check_companions
from kz_jupyter.models.hub import HubSettings
from kz_jupyter.models.local_files import ModelNotFoundError
from kz_jupyter.planning.hardware import probe_hardware
from kz_jupyter.planning.memory import GIB, MIB
from kz_jupyter.planning.plan import Plan
from kz_jupyter.planning.planner import PlanError
from kz_jupyter.planning.provisioning import prepare
from kz_jupyter.states import ErrorCode


def plan_for(path, **options) -> Plan:
    plan, _ = prepare(str(path), probe_hardware(), HubSettings.from_env(), EngineOptions(**options))
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


def test_lora_adapters_are_the_form_the_engine_takes(smollm2_path, tmp_path):
    from bench.synthetic_ggufs import write_lora

    # llama.cpp takes GGUF adapters: a folder, or a GGUF model, is refused saying what to give
    with pytest.raises(PlanError, match="LoRA adapter 'fr': .*not a readable GGUF.*convert_lora"):
        plan_for(smollm2_path, lora_adapters={"fr": str(tmp_path)})
    with pytest.raises(PlanError, match="LoRA adapter 'fr': .*a GGUF model, not an adapter"):
        plan_for(smollm2_path, lora_adapters={"fr": str(smollm2_path)})
    odd = tmp_path / "a:b"
    odd.mkdir()
    with pytest.raises(PlanError, match="cannot take a path with ':' or ','"):
        plan_for(smollm2_path, lora_adapters={"fr": str(write_lora(odd / "fr.gguf", smollm2_path))})
    adapter = write_lora(tmp_path / "fr.gguf", smollm2_path)
    plain = plan_for(smollm2_path, parallel=1)
    adapted = plan_for(smollm2_path, parallel=1, lora_adapters={"fr": str(adapter)})
    assert adapted.memory["weights"] - plain.memory["weights"] == adapter.stat().st_size
    # vLLM takes PEFT folders: their adapter_config.json gives the rank
    with pytest.raises(CompanionError, match="LoRA adapter 'fr': .*adapter_config.json"):
        check_companions({"fr": str(tmp_path)}, "peft", None)
    (tmp_path / "adapter_config.json").write_text('{"r": 32}')
    assert check_companions({"fr": str(tmp_path)}, "peft", None).lora_rank == 32


def test_a_draft_model_and_a_quantized_kv_cache_are_planned_and_counted(smollm2_path, tiny_gguf):
    plain = plan_for(smollm2_path, parallel=2)
    drafted = plan_for(smollm2_path, parallel=2, draft_model="smollm2")
    assert drafted.draft_model_path == str(smollm2_path)
    for part in ("weights", "kv_cache"):  # the draft is a second copy of the same model
        assert drafted.memory[part] == 2 * plain.memory[part]
    quantized = plan_for(smollm2_path, parallel=2, kv_cache_type="q8_0")
    assert quantized.memory["kv_cache"] == int(plain.memory["kv_cache"] * 34 / 32 / 2)
    assert quantized.kv_cache_type == "q8_0" and plain.memory["kv_cache"] > 64 * MIB
    with pytest.raises(PlanError, match="Draft model 'nothing-here' is neither a GGUF file"):
        plan_for(smollm2_path, draft_model="nothing-here")
    with pytest.raises(PlanError, match="vllm does not take --draft, --kv-cache-type"):
        plan_for("all-minilm-l6-v2", engine="vllm", draft_model="smollm2", kv_cache_type="q8_0")


def test_embedding_and_reranker_ggufs_plan_as_their_tasks(tmp_path):
    from bench.synthetic_ggufs import write_bert

    embedder = plan_for(write_bert(tmp_path / "embedder.gguf"))
    assert (embedder.engine, embedder.task, embedder.can_chat) == ("llamacpp", "embed", False)
    reranker = plan_for(write_bert(tmp_path / "reranker.gguf", reranker=True))
    assert (reranker.task, reranker.can_chat) == ("rerank", False)
    assert "reranking model: use /v1/rerank" in reranker.chat_reason
    assert reranker.rejected["llama-cpp-python"] == "serves no reranking models"


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
        plan, _ = prepare(
            str(smollm2_path), hardware, HubSettings.from_env(), EngineOptions(**options)
        )
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
