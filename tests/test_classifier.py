"""The log classifier on real llama.cpp logs (tests/fixtures/llamacpp/*.log)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kz_jupyter.engines.llamacpp import LlamaCppEngine
from kz_jupyter.states import ErrorCode, classify_log_lines, issue_lines

FIXTURES = Path(__file__).with_name("fixtures") / "llamacpp"


def lines_of(name: str) -> list[str]:
    return (FIXTURES / name).read_text().splitlines()


@pytest.mark.parametrize(
    ("fixture", "code", "flagged"),
    [
        ("trunc.log", ErrorCode.MODEL_LOADING_FAILURE, "data is not within the file bounds"),
        ("garbage.log", ErrorCode.MODEL_LOADING_FAILURE, "failed to load model"),
        ("missing.log", ErrorCode.MODEL_LOADING_FAILURE, "Model path does not exist"),
    ],
)
def test_real_failures_are_classified_and_flagged(fixture, code, flagged):
    lines = lines_of(fixture)
    assert classify_log_lines(lines, LlamaCppEngine.log_patterns) is code
    issues = issue_lines(lines, LlamaCppEngine.log_patterns)
    assert any(flagged in line for _, _, line in issues)
    assert all(lines[number] == line for number, _, line in issues)


def test_a_healthy_start_raises_no_issue():
    lines = lines_of("healthy_start.log")
    assert any("Uvicorn running" in line for line in lines)
    assert issue_lines(lines, LlamaCppEngine.log_patterns) == []
    assert classify_log_lines(lines, LlamaCppEngine.log_patterns) is None


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("ggml_backend_cpu_buffer_type_alloc_buffer: failed to allocate buffer of size 9", "OOM"),
        ("CUDA error: out of memory", "CUDA_ERROR"),
        ("RuntimeError: something broke", "RUNTIME_ERROR"),
    ],
)
def test_patterns_order_specific_before_generic(line, code):
    assert classify_log_lines([line], LlamaCppEngine.log_patterns).value == code


def test_every_code_has_a_remediation():
    for code in ErrorCode:
        assert code.remediation.endswith(".")
