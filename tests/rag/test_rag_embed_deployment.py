"""The embedding model as a deployment: all-MiniLM-L6-v2 (pip-shipped) planned as an embedding
model, served by vLLM on /kz/v1/embeddings, and used by `%kz rag` to index and search; the
ranking matches the in-process sentence-transformers index."""

from __future__ import annotations

import re

import pytest

from tests.support.magics_run import run_session
from tests.support.ragtools.corpus import generate_corpus

pytestmark = pytest.mark.slow

MODEL = "all-minilm-l6-v2"


@pytest.fixture(scope="module")
def transcript(tmp_path_factory):
    home = tmp_path_factory.mktemp("rag-embed")
    corpus = home / "corpus"
    corpus.mkdir()
    question = generate_corpus(corpus)[3][0]
    cells = [
        "%load_ext kz_jupyter",
        f"%kz plan {MODEL}",
        f"%kz deploy {MODEL}",
        f"%kz rag index {corpus} --name remote --model deployment:{MODEL}",
        f"%kz rag index {corpus} --name local",
        f'%kz rag search remote "{question}" -k 5',
        f'%kz rag search local "{question}" -k 5',
        f"%kz chat {MODEL} hello",
        f"%kz rag index {corpus} --name ghost --model deployment:ghost",
        "%kz rag list",
        f"%kz stop {MODEL}",
    ]
    return run_session(home, cells, KZ_RAG_DIR=str(home / "rag"))


def test_no_cell_shows_a_traceback(transcript):
    out, err = transcript
    assert sorted(out) == list(range(11))
    for number in out:
        assert "Traceback" not in out[number] + err[number], (number, out[number], err[number])


def test_plan_and_deploy_as_an_embedding_model_on_vllm(transcript):
    out, err = transcript
    assert "engine   vllm" in out[1] and "serves   embeddings (/v1/embeddings)" in out[1]
    assert "context  256 tokens" in out[1] and "not mlx: serves no embedding models" in out[1]
    assert f"'{MODEL}' is ready" in out[2], (out[2], err[2])


def test_index_through_the_deployment_ranks_like_the_local_model(transcript):
    out, err = transcript
    assert "'remote': 414 chunks from 46 new or changed files" in out[3], (out[3], err[3])
    assert "'local': 414 chunks" in out[4]

    def ranking(text: str) -> list[list[str]]:
        rows = [line.split() for line in text.splitlines() if re.match(r"\d+ +\d\.\d{3} ", line)]
        return [[row[0], *row[2:5]] for row in rows]  # rank, source, heading words; no score

    assert len(ranking(out[5])) == 5 and ranking(out[5]) == ranking(out[6])
    assert "deployment:" + MODEL in out[9] and "all-MiniLM-L6-v2" in out[9]


def test_wrong_uses_are_clear_refusals(transcript):
    _, err = transcript
    assert f"'{MODEL}' is an embedding model: use /v1/embeddings." in err[7]
    assert "No deployment named 'ghost'" in err[8]
