"""File choice inside a repo: quant names, shards joined, projectors left out, the ladder."""

from __future__ import annotations

import pytest

from kz_jupyter.models.file_choice import (
    FileSelectionError,
    gguf_variants,
    pick_gguf,
    quant_of,
    safetensors_files,
)
from kz_jupyter.models.hub import RemoteFile


@pytest.mark.parametrize(
    ("name", "quant"),
    [
        ("SmolLM2-135M-Instruct.Q4_1.gguf", "Q4_1"),
        ("gemma-3-270m-it-Q4_K_M.gguf", "Q4_K_M"),
        ("model-q4_k_m.gguf", "Q4_K_M"),
        ("Llama-3.1-8B-Instruct-Q8_0-00001-of-00002.gguf", "Q8_0"),
        ("Q6_K/model-Q6_K-00002-of-00003.gguf", "Q6_K"),
        ("qwen-IQ4_XS.gguf", "IQ4_XS"),
        ("phi-f16.gguf", "F16"),
        ("x-BF16.gguf", "BF16"),
        ("tiny.gguf", ""),
    ],
)
def test_quant_is_read_from_the_file_name(name, quant):
    assert quant_of(name) == quant


def files(*names_and_sizes) -> list[RemoteFile]:
    return [RemoteFile(path=n, size=s) for n, s in names_and_sizes]


REPO = files(
    ("m-Q8_0.gguf", 800),
    ("m-Q2_K.gguf", 200),
    ("m-Q4_K_M.gguf", 400),
    ("m-F16.gguf", 1600),
    ("mmproj-m-F16.gguf", 100),
    ("big/m-Q6_K-00001-of-00002.gguf", 300),
    ("big/m-Q6_K-00002-of-00002.gguf", 300),
    ("README.md", 10),
)


def test_variants_follow_the_ladder_join_shards_and_skip_projectors():
    variants = gguf_variants(REPO)
    assert [v.quant for v in variants] == ["Q4_K_M", "Q6_K", "Q8_0", "Q2_K", "F16"]
    q6 = variants[1]
    assert q6.size == 600 and q6.first_file == "big/m-Q6_K-00001-of-00002.gguf"


def test_naming_a_quant_or_a_file_narrows_the_choice():
    assert [v.quant for v in pick_gguf(REPO, "q8_0", None)] == ["Q8_0"]
    assert [v.quant for v in pick_gguf(REPO, None, "m-F16.gguf")] == ["F16"]
    with pytest.raises(FileSelectionError, match="Quants: F16, Q2_K, Q4_K_M, Q6_K, Q8_0"):
        pick_gguf(REPO, "Q3_K_S", None)
    with pytest.raises(FileSelectionError, match="No GGUF file 'nope.gguf'"):
        pick_gguf(REPO, None, "nope.gguf")


def test_safetensors_need_a_config_and_take_tokenizer_files_along():
    repo = files(
        ("config.json", 1),
        ("model-00001-of-00002.safetensors", 5),
        ("model-00002-of-00002.safetensors", 5),
        ("model.safetensors.index.json", 1),
        ("tokenizer.json", 2),
        ("original/consolidated.safetensors", 9),
        ("README.md", 1),
    )
    chosen = [f.path for f in safetensors_files(repo)]
    assert chosen == [
        "config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "tokenizer.json",
    ]
    assert safetensors_files(files(("model.safetensors", 5))) == []
    assert safetensors_files(REPO) == []
