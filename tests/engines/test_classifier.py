"""The log classifier on real engine logs: tests/fixtures/ENGINE/*.log, kept from real runs of
llama.cpp, vLLM (CPU) and MLX (CPU) that failed, and from healthy starts."""

from __future__ import annotations

import pytest

from kz_jupyter.engines.llamacpp import LlamaCppEngine
from kz_jupyter.log_issues import classify_log_lines, issue_lines
from kz_jupyter.planning.engine_contract import get_engine
from kz_jupyter.states import ErrorCode
from tests.support.paths import FIXTURES


def lines_of(engine: str, name: str) -> list[str]:
    return (FIXTURES / engine / name).read_text().splitlines()


@pytest.mark.parametrize(
    ("engine", "fixture", "code", "flagged"),
    [
        ("llamacpp", "trunc.log", "MODEL_LOADING_FAILURE", "data is not within the file bounds"),
        ("llamacpp", "garbage.log", "MODEL_LOADING_FAILURE", "failed to load model"),
        ("llamacpp", "missing.log", "MODEL_LOADING_FAILURE", "failed to open GGUF file"),
        ("llamacpp", "oom.log", "OOM", "failed to allocate buffer for kv cache"),
        ("llama-cpp-python", "trunc.log", "MODEL_LOADING_FAILURE", "not within the file bounds"),
        ("llama-cpp-python", "garbage.log", "MODEL_LOADING_FAILURE", "failed to load model"),
        ("llama-cpp-python", "missing.log", "MODEL_LOADING_FAILURE", "Model path does not exist"),
        ("vllm", "truncated.log", "MODEL_LOADING_FAILURE", "Error while deserializing header"),
        ("vllm", "architecture.log", "MODEL_LOADING_FAILURE", "are not supported for now"),
        ("vllm", "torchvision_mismatch.log", "RUNTIME_ERROR", "torchvision::nms does not exist"),
        ("mlx", "truncated.log", "MODEL_LOADING_FAILURE", "invalid data offsets"),
    ],
)
def test_real_failures_are_classified_and_flagged(engine, fixture, code, flagged):
    lines = lines_of(engine, fixture)
    patterns = get_engine(engine).log_patterns
    assert classify_log_lines(lines, patterns) is ErrorCode(code)
    issues = issue_lines(lines, patterns)
    assert any(flagged in line for _, _, line in issues)
    assert all(lines[number] == line for number, _, line in issues)


@pytest.mark.parametrize(
    ("engine", "fixture", "ready_line"),
    [
        ("llamacpp", "healthy_start.log", "listening on http://127.0.0.1"),
        ("llama-cpp-python", "healthy_start.log", "Uvicorn running"),
        ("vllm", "healthy_start.log", "Application startup complete"),
        ("mlx", "healthy_start.log", "Starting httpd at 127.0.0.1"),
    ],
)
def test_a_healthy_start_raises_no_issue(engine, fixture, ready_line):
    lines = lines_of(engine, fixture)
    patterns = get_engine(engine).log_patterns
    assert any(ready_line in line for line in lines)
    assert issue_lines(lines, patterns) == []
    assert classify_log_lines(lines, patterns) is None


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("ggml_backend_cpu_buffer_type_alloc_buffer: failed to allocate buffer of size 9", "OOM"),
        ("CUDA error: out of memory", "CUDA_ERROR"),
        ("0.00.01 E srv  operator(): GGML_ASSERT(n_tokens > 0) failed", "RUNTIME_ERROR"),
    ],
)
def test_patterns_order_specific_before_generic(line, code):
    assert classify_log_lines([line], LlamaCppEngine.log_patterns).value == code


@pytest.mark.parametrize(
    ("line", "code"),
    [  # vLLM's messages for a GPU out of memory and a KV cache smaller than one sequence
        ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", "OOM"),
        (
            "ValueError: To serve at least one request with the models's max seq len (8192), "
            "(1.5 GiB KV cache is needed, which is larger than the available KV cache memory "
            "(0.9 GiB).",
            "OOM",
        ),
        ("RuntimeError: NCCL error: unhandled system error", "CUDA_ERROR"),
    ],
)
def test_vllm_resource_failures_are_told_apart_from_generic_errors(line, code):
    assert classify_log_lines([line], get_engine("vllm").log_patterns).value == code


def test_every_code_has_a_remediation():
    for code in ErrorCode:
        assert code.remediation.endswith(".")
