"""Reranking the first candidates (a cross-encoder here; a reranker deployment is checked in
tests/engines/test_llama_server.py), each chunk's lead sentence embedded apart, and the
document's title in each chunk's context line."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from kz_jupyter import rag
from kz_jupyter.rag.chunks import Chunk, document_title
from kz_jupyter.rag.embedders import embed
from kz_jupyter.rag.index import RagError, RagIndex
from tests.support.model_files import write_cross_encoder

TOPICS = {
    "folders": "Recursively copy a directory tree and return the destination folder.",
    "trains": "The night train leaves the harbour station at eleven and reaches the hills by dawn.",
    "bread": "Knead the dough for ten minutes, then let it rise in a warm place for an hour.",
    "tides": "Spring tides come twice a month, when the sun and the moon pull in a line.",
    "stamps": "The first postage stamp showed a young queen in profile on a black ground.",
    "bees": "A worker bee visits some fifty flowers on each trip out of the hive.",
}
# details after each lead: many words on something else, so the whole chunk's vector drifts
DETAILS = (
    " If the optional flag is true, symbolic links in the source are kept as links; errors are "
    "gathered in a list and raised together at the end, with the permission bits, the access "
    "and modification times and the flags of every entry copied as far as the system allows."
)
QUESTION = "How do I copy a whole folder with all its subfolders?"


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    docs = tmp_path_factory.mktemp("docs")
    for name, lead in TOPICS.items():
        (docs / f"{name}.md").write_text(f"# {name.title()}\n\n{lead}{DETAILS * 3}\n")
    built = RagIndex("topics", tmp_path_factory.mktemp("rag"))
    built.update([docs])
    return built


@pytest.fixture(scope="module")
def cross_encoder(tmp_path_factory, index):
    words = re.findall(r"\w+", " ".join(c.embedding_text() for c in index.chunks) + QUESTION)
    return str(write_cross_encoder(tmp_path_factory.mktemp("ce"), [w.lower() for w in words]))


def test_the_title_of_a_document_is_in_each_chunks_context():
    assert document_title("/src/requests/README.md") == "requests"
    assert document_title("/docs/shutil.txt") == "shutil"
    chunk = Chunk("Recursively copy a directory tree.", "/docs/shutil.txt", "line 9", "copytree")
    assert chunk.embedding_text().startswith("shutil › copytree\n")
    assert chunk.lead_text() == "shutil › copytree\nRecursively copy a directory tree."


def test_a_chunk_is_found_by_its_lead_sentence_when_that_is_nearer(index):
    (hit,) = index.search(QUESTION, k=1)
    assert hit.chunk.source.endswith("folders.md")
    embedder = index._embedder_for(index.meta["model"])
    question, whole, lead = embed(
        embedder, [QUESTION, hit.chunk.embedding_text(), hit.chunk.lead_text()]
    )
    assert float(question @ lead) > float(question @ whole) + 0.05
    assert hit.score == pytest.approx(float(question @ lead), abs=1e-5)


def test_rerank_orders_the_first_candidates_by_the_cross_encoders_scores(index, cross_encoder):
    from sentence_transformers import CrossEncoder

    candidates = index.search(QUESTION, k=30, hybrid=True)
    scores = CrossEncoder(cross_encoder, device="cpu").predict(
        [(QUESTION, h.chunk.embedding_text()) for h in candidates]
    )
    order = np.argsort(-scores, kind="stable")[:3]
    reranked = index.search(QUESTION, k=3, hybrid=True, rerank=cross_encoder)
    assert [h.chunk for h in reranked] == [candidates[i].chunk for i in order]
    assert [h.rank for h in reranked] == [1, 2, 3]
    assert [h.score for h in reranked] == pytest.approx([float(scores[i]) for i in order])
    assert [h.chunk for h in reranked] != [h.chunk for h in candidates[:3]]  # it did reorder


def test_evaluate_adds_the_reranked_method(index, cross_encoder, tmp_path, monkeypatch):
    questions = tmp_path / "q.json"
    questions.write_text(json.dumps([{"question": QUESTION, "source": "folders.md"}]))
    monkeypatch.setenv("KZ_RAG_DIR", str(index.path.parent))
    evaluation = rag.evaluate("topics", questions, k=3, rerank=cross_encoder)
    assert list(evaluation.ranks) == ["vector", "hybrid", "reranked"]
    reranked = index.search(QUESTION, k=10, hybrid=True, rerank=cross_encoder)
    rank = next(h.rank for h in reranked if h.chunk.source.endswith("folders.md"))
    assert evaluation.ranks["reranked"] == [rank]
    words = rag.search("topics", "dough", k=2, hybrid=True, vector_weight=0.0)  # keywords alone
    assert words[0].chunk.source.endswith("bread.md") and [h.score for h in words] == [1.0, 0.0]
    assert rag.search("topics", "dough", k=2, hybrid=True)[1].score > 0  # the vector side's part
    html = evaluation._repr_html_()
    assert html.count("<rect") == 3 * 2 + 2  # two bars a method, and the legend's two keys
    with pytest.raises(RagError, match="The reranked method needs a reranker"):
        rag.evaluate("topics", questions, methods=["reranked"])


def test_a_reranker_that_cannot_be_loaded_says_what_to_give(index, tmp_path):
    missing = str(tmp_path / "no-reranker-here")  # a folder not there (a Hub name: the same
    with pytest.raises(RagError) as raised:  # message, after the Hub's retries offline)
        index.search(QUESTION, rerank=missing)
    message = str(raised.value)
    assert message.startswith(f"Reranker '{missing}' cannot be loaded (")
    assert "deployment:NAME for a reranker deployment" in message and "\n" not in message


def test_kz_rag_eval_and_search_take_rerank(index, cross_encoder, tmp_path, monkeypatch, capsys):
    from kz_jupyter.magics.kz_magics import build_parser
    from kz_jupyter.magics.rag_magics import run_rag

    questions = tmp_path / "q.csv"
    questions.write_text(f"question,source\n{QUESTION},folders.md\n")
    monkeypatch.setenv("KZ_RAG_DIR", str(index.path.parent))
    parse = build_parser().parse_args
    run_rag(parse(["rag", "eval", "topics", str(questions), "--rerank", cross_encoder]), None)
    table = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in table[1:4]] == ["vector", "hybrid", "reranked"]
    run_rag(parse(["rag", "search", "topics", "copy", "a", "folder", "--rerank", cross_encoder]),
            None)  # fmt: skip
    assert f"(vector search, reranked by {cross_encoder})" in capsys.readouterr().out
