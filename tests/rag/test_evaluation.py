"""Scoring retrieval: which chunk answers a question, recall@k and MRR from the ranks, questions
read from JSON, JSON lines or CSV, and bad questions files said clearly."""

from __future__ import annotations

import json

import pytest

from kz_jupyter.magics.evaluation_panel import format_evaluation
from kz_jupyter.rag.chunks import Chunk
from kz_jupyter.rag.evaluation import Question, QuestionsError, evaluate_with, read_questions

CHUNKS = {
    "a": Chunk("Retries wait\n  for the   Retry-After header.", "/docs/http/client.md", "line 3",
               "Retries"),
    "b": Chunk("Unrelated text.", "/docs/other.md", "line 1"),
    "c": Chunk("Retries wait for the Retry-After header.", "/docs/copy/client.md", "line 9"),
}  # fmt: skip


def test_a_chunk_answers_when_its_file_and_passage_match():
    question = Question("q", "client.md", "wait for the Retry-After header")
    assert question.answered_by(CHUNKS["a"])  # spacing aside
    assert not question.answered_by(CHUNKS["b"])
    assert Question("q", "http/client.md").answered_by(CHUNKS["a"])  # the end of its path
    assert not Question("q", "http/client.md").answered_by(CHUNKS["c"])
    assert not Question("q", "client.md", "a passage it lacks").answered_by(CHUNKS["a"])


def test_recall_and_mrr_are_counted_from_the_ranks():
    rankings = {"first": "abc", "third": "bca", "never": "b"}  # what each query finds, in order
    questions = [Question(query, "http/client.md", "Retry-After") for query in rankings]

    def search(query: str, method: str) -> list[Chunk]:
        found = [CHUNKS[key] for key in rankings[query]]
        return found if method == "vector" else list(reversed(found))

    evaluation = evaluate_with(search, questions, k=2)
    assert evaluation.ranks == {"vector": [1, 3, None], "hybrid": [3, 1, None]}
    assert evaluation.recall("vector") == 1 / 3 and evaluation.recall("hybrid") == 1 / 3
    assert evaluation.mrr("vector") == pytest.approx((1 + 1 / 3) / 3)
    assert [q.text for q in evaluation.misses("vector")] == ["third", "never"]
    text = format_evaluation(evaluation)
    assert "recall@2" in text and "MRR@10" in text and "1/3" in text and "███████" in text
    assert "vector missed: 'never' (http/client.md)" in text


def test_questions_are_read_from_json_json_lines_and_csv(tmp_path):
    listed = [{"question": "How?", "source": "a.md", "passage": "like this"},
              {"question": "Why?", "source": "b.md"}]  # fmt: skip
    (tmp_path / "q.json").write_text(json.dumps(listed))
    (tmp_path / "q.jsonl").write_text("\n".join(json.dumps(q) for q in listed) + "\n")
    (tmp_path / "q.csv").write_text("question,source,passage\nHow?,a.md,like this\nWhy?,b.md,\n")
    wanted = [Question("How?", "a.md", "like this"), Question("Why?", "b.md")]
    for name in ("q.json", "q.jsonl", "q.csv"):
        assert read_questions(tmp_path / name) == wanted, name


def test_a_bad_questions_file_says_what_to_fix(tmp_path):
    (tmp_path / "bad.json").write_text('[{"question": "How?"}]')
    with pytest.raises(QuestionsError, match="Question 1 is .*give each as"):
        read_questions(tmp_path / "bad.json")
    (tmp_path / "empty.json").write_text("[]")
    with pytest.raises(QuestionsError, match="No questions"):
        read_questions(tmp_path / "empty.json")
    (tmp_path / "broken.json").write_text("[{")
    with pytest.raises(QuestionsError, match="is not valid JSON"):
        read_questions(tmp_path / "broken.json")
    with pytest.raises(QuestionsError, match="cannot be read"):
        read_questions(tmp_path / "missing.json")
