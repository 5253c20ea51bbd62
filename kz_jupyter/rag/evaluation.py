"""Measuring retrieval on the user's own documents: questions with the file that answers each
(and, optionally, a passage of it), asked of an index by each search method; recall@k and the
mean reciprocal rank per method, so settings can be chosen on one's own corpus."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kz_jupyter.rag.chunks import Chunk

METHODS = ("vector", "hybrid", "reranked")  # reranked: hybrid's candidates, reranked
SEARCHES = METHODS[:2]  # the methods that need no reranker
DEPTH = 10  # ranks looked at for the mean reciprocal rank


class QuestionsError(ValueError):
    """A questions file or list that cannot be read; the message says what to fix."""


@dataclass(frozen=True)
class Question:
    """A question, the file that answers it (a name or the end of its path), and optionally a
    passage of that file the answer must hold."""

    text: str
    source: str
    passage: str = ""

    def answered_by(self, chunk: Chunk) -> bool:
        """Whether the chunk is from the file and holds the passage (spacing aside)."""
        source = chunk.source.replace("\\", "/")
        wanted = self.source.replace("\\", "/")
        if source != wanted and not source.endswith("/" + wanted.lstrip("/")):
            return False
        return not self.passage or squeezed(self.passage) in squeezed(
            f"{chunk.heading}\n{chunk.text}"
        )


def squeezed(text: str) -> str:
    """Text with every run of whitespace made one space."""
    return " ".join(text.split())


@dataclass
class Evaluation:
    """The rank at which each question was answered (None: not in the first DEPTH), by method."""

    questions: list[Question]
    k: int
    ranks: dict[str, list[int | None]] = field(default_factory=dict)

    def recall(self, method: str) -> float:
        """The share of questions answered within the first k results."""
        found = [r for r in self.ranks[method] if r is not None and r <= self.k]
        return len(found) / len(self.questions)

    def mrr(self, method: str) -> float:
        """The mean reciprocal rank of each question's first answer (0 when not found)."""
        return sum(1 / r for r in self.ranks[method] if r is not None) / len(self.questions)

    def rows(self) -> list[dict]:
        """A row per method: recall@k, MRR, questions answered within k."""
        total = len(self.questions)
        return [
            {"method": method, f"recall@{self.k}": round(self.recall(method), 3),
             f"MRR@{DEPTH}": round(self.mrr(method), 3),
             "answered": f"{total - len(self.misses(method))}/{total}"}
            for method in self.ranks
        ]  # fmt: skip

    def _repr_html_(self) -> str:
        """In a notebook: the table, a small bar chart of recall and MRR, and the misses."""
        from kz_jupyter.rag.evaluation_chart import evaluation_html, evaluation_svg

        figures = {m: (self.recall(m), self.mrr(m)) for m in self.ranks}
        misses = [(m, q.text, q.source) for m in self.ranks for q in self.misses(m)]
        caption = f"{len(self.questions)} questions, the first {self.k} results"
        return evaluation_html(caption, self.rows(), evaluation_svg(self.k, figures), misses)

    def misses(self, method: str) -> list[Question]:
        """The questions a method did not answer within k."""
        return [
            q
            for q, r in zip(self.questions, self.ranks[method], strict=True)
            if r is None or r > self.k
        ]


def first_rank(chunks: list[Chunk], question: Question) -> int | None:
    """The rank (from 1) of the first chunk that answers the question, else None."""
    return next((n for n, c in enumerate(chunks, start=1) if question.answered_by(c)), None)


def as_questions(items: Iterable[object]) -> list[Question]:
    """Questions from Question objects, dicts (question, source, passage) or tuples."""
    questions = []
    for number, item in enumerate(items, start=1):
        if isinstance(item, Question):
            questions.append(item)
        elif isinstance(item, dict) and item.get("question") and item.get("source"):
            questions.append(
                Question(str(item["question"]), str(item["source"]), str(item.get("passage") or ""))
            )
        elif isinstance(item, list | tuple) and len(item) in (2, 3) and all(item[:2]):
            questions.append(Question(*(str(part) for part in item)))
        else:
            raise QuestionsError(
                f"Question {number} is {item!r}: give each as {{'question': ..., 'source': "
                "FILE, 'passage': optional text}, or (question, source[, passage])."
            )
    if not questions:
        raise QuestionsError("No questions: give at least one, with the file that answers it.")
    return questions


def read_questions(path: str | Path) -> list[Question]:
    """Questions from a JSON list, JSON lines, or a CSV with the columns question, source and
    (optionally) passage."""
    path = Path(path).expanduser()
    try:
        text = path.read_text()
    except OSError as error:
        raise QuestionsError(f"{path} cannot be read ({error.strerror or error}).") from None
    try:
        if path.suffix.lower() == ".csv":
            return as_questions(csv.DictReader(text.splitlines()))
        if path.suffix.lower() == ".jsonl":
            return as_questions(json.loads(line) for line in text.splitlines() if line.strip())
        return as_questions(json.loads(text))
    except json.JSONDecodeError as error:
        raise QuestionsError(f"{path} is not valid JSON ({error}).") from None


def evaluate_with(
    search: Callable[[str, str], list[Chunk]], questions: Iterable[object], k: int = 5,
    methods: Iterable[str] = SEARCHES,
) -> Evaluation:  # fmt: skip
    """Ask every question by each method with search(query, method) (its first DEPTH chunks)."""
    asked = as_questions(questions)
    evaluation = Evaluation(asked, k)
    for method in methods:
        evaluation.ranks[method] = [first_rank(search(q.text, method), q) for q in asked]
    return evaluation
