"""The GGUF header reader, checked against the gguf package's reader on real and tiny files."""

from __future__ import annotations

import pytest
from gguf import GGUFReader

from kz_jupyter.models.gguf_header import (
    GgufReadError,
    GgufTruncatedError,
    parse_gguf_header,
    read_gguf_metadata,
)


def reference_fields(path) -> dict:
    fields = GGUFReader(path).fields
    arch = fields["general.architecture"].contents()
    template = fields.get("tokenizer.chat_template")
    return {
        "architecture": arch,
        "context_length": fields[f"{arch}.context_length"].contents(),
        "chat_template": template.contents() if template else None,
    }


def test_smollm2_header_matches_the_gguf_package(smollm2_path):
    meta = read_gguf_metadata(smollm2_path)
    expected = reference_fields(smollm2_path)
    assert meta.architecture == expected["architecture"] == "llama"
    assert meta.context_length == expected["context_length"] == 8192
    assert meta.chat_template == expected["chat_template"]
    assert meta.file_type == 3  # Q4_1
    assert meta.size_bytes == smollm2_path.stat().st_size


@pytest.mark.parametrize("template", [None, "{% for m in messages %}{{ m.content }}{% endfor %}"])
def test_tiny_files_match_the_gguf_package(tiny_gguf, template):
    path = tiny_gguf("gemma3", chat_template=template, context_length=32768)
    meta = read_gguf_metadata(path)
    expected = reference_fields(path)
    assert (meta.architecture, meta.context_length, meta.chat_template) == (
        expected["architecture"],
        expected["context_length"],
        expected["chat_template"],
    )
    assert meta.has_chat_template == (template is not None)


@pytest.mark.parametrize(
    "content", [b"", b"NOPE" + b"\0" * 32, b"GGUF\x09\0\0\0", b"GGUF\x03\0\0\0" + b"\xff" * 30]
)
def test_broken_files_raise_a_clear_error(tmp_path, content):
    path = tmp_path / "broken.gguf"
    path.write_bytes(content)
    with pytest.raises(GgufReadError, match="is not a readable GGUF file"):
        read_gguf_metadata(path)


def test_shape_fields_match_the_gguf_package(smollm2_path):
    meta = read_gguf_metadata(smollm2_path)
    fields = GGUFReader(smollm2_path).fields
    assert meta.block_count == fields["llama.block_count"].contents() == 30
    assert meta.head_count == fields["llama.attention.head_count"].contents() == 9
    assert meta.head_count_kv == fields["llama.attention.head_count_kv"].contents() == 3
    assert meta.embedding_length == fields["llama.embedding_length"].contents() == 576
    assert meta.vocab_size == len(fields["tokenizer.ggml.tokens"].data) == 49152
    assert meta.key_length == meta.value_length == 64  # embedding / heads


def test_a_prefix_of_the_file_asks_for_more_then_parses(smollm2_path):
    data = smollm2_path.read_bytes()[: 4 << 20]
    with pytest.raises(GgufTruncatedError):
        parse_gguf_header(data[:100_000], len(data))
    assert parse_gguf_header(data, 123).architecture == "llama"


def test_the_tensors_llama_cpp_repacks_are_counted_from_the_tensor_descriptions(tmp_path):
    import gguf
    import numpy as np

    path = tmp_path / "quants.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    q4_0, q4_k = gguf.GGMLQuantizationType.Q4_0, gguf.GGMLQuantizationType.Q4_K
    blocks = {  # name -> (type, rows, bytes per row: 256 values of Q4_0, 512 of Q4_K)
        "token_embd.weight": (q4_0, 32, 144),  # read by row: not repacked
        "blk.0.ffn_up.weight": (q4_0, 64, 144),
        "blk.0.attn_q.weight": (q4_k, 16, 288),
    }
    for name, (kind, rows, size) in blocks.items():
        data = np.zeros((rows, size), dtype=np.uint8)
        writer.add_tensor(name, data, raw_dtype=kind)  # shape: from the bytes per row
    writer.add_tensor("blk.0.attn_norm.weight", np.zeros(256, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    meta = read_gguf_metadata(path)
    assert meta.repackable_bytes == 64 * 144 + 16 * 288
    data = path.read_bytes()
    header_only = data[: data.index(b"blk.0.attn_q.weight")]  # cut inside the descriptions
    assert parse_gguf_header(header_only, len(data)).repackable_bytes == -1  # not known
