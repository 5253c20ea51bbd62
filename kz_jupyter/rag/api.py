"""Retrieval over your documents, from Python: index, search, ask a deployment with sources.

from kz_jupyter import rag
rag.index(["./docs"], name="handbook")
hits = rag.search("handbook", "reset my password", k=5, hybrid=True)
answer = rag.ask("handbook", "How do I reset my password?", deployment="smollm2")
for text in answer: print(text, end="")
print(answer.sources)
rag.evaluate("handbook", "questions.json")   # recall@5 and MRR per method: a table and a chart
rag.search("handbook", "reset my password", hybrid=True, rerank="deployment:bge-reranker")
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kz_jupyter.client import KzClient
from kz_jupyter.rag.chunks import Chunk
from kz_jupyter.rag.conversation import grounded_turn, retrieval_query
from kz_jupyter.rag.embedders import ProgressCallback
from kz_jupyter.rag.evaluation import (
    DEPTH,
    METHODS,
    SEARCHES,
    Evaluation,
    evaluate_with,
    read_questions,
)
from kz_jupyter.rag.fusion import VECTOR_WEIGHT
from kz_jupyter.rag.index import Hit, RagError, RagIndex, UpdateReport
from kz_jupyter.rag.prompt import GroundedPrompt

DEFAULT_CONTEXT = 2048  # a deployment whose plan does not say its context


def index(
    paths: Iterable[str | Path],
    name: str,
    model: str | None = None,
    progress: ProgressCallback | None = None,
    client: Callable[[], KzClient] | None = None,
    phase: Callable[[str], None] | None = None,
) -> UpdateReport:
    """Create or update index name from the documents under paths (only changed files are
    embedded). model: a sentence-transformers name, or `deployment:NAME` to embed through an
    embedding deployment. progress hears (chunks embedded, chunks); phase each step."""
    return RagIndex(name, client=client).update(paths, model, progress=progress, phase=phase)


def search(
    name: str,
    query: str,
    k: int = 5,
    hybrid: bool = False,
    client: Callable[[], KzClient] | None = None,
    rerank: str | None = None,
    vector_weight: float = VECTOR_WEIGHT,
) -> list[Hit]:
    """The k chunks of index name nearest to query (hybrid: fused with BM25 keyword scores,
    the vector side's share vector_weight); rerank: a cross-encoder, or `deployment:NAME` of a
    reranker deployment, orders the first candidates again."""
    return RagIndex(name, client=client).search(
        query, k=k, hybrid=hybrid, rerank=rerank, vector_weight=vector_weight
    )


def evaluate(
    name: str,
    questions: Iterable[object] | str | Path,
    k: int = 5,
    methods: Iterable[str] | None = None,
    client: Callable[[], KzClient] | None = None,
    rerank: str | None = None,
    vector_weight: float = VECTOR_WEIGHT,
) -> Evaluation:
    """Ask index name each question (with the file that answers it, and optionally a passage)
    by each method (vector, hybrid, and reranked: hybrid's candidates ordered by the rerank
    model); recall@k and MRR per method (`.rows()`; in a notebook a table and a chart), the
    ranks and the misses. vector_weight: hybrid search's vector share, to try others on one's
    own documents. questions: a list, or a JSON, JSON lines or CSV file of them."""
    methods = list(methods or (METHODS if rerank else SEARCHES))
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise RagError(f"Unknown method {unknown[0]!r}: choose from {', '.join(METHODS)}.")
    if "reranked" in methods and not rerank:
        raise RagError("The reranked method needs a reranker: give rerank=MODEL_OR_DEPLOYMENT.")
    asked = read_questions(questions) if isinstance(questions, str | Path) else questions
    opened = RagIndex(name, client=client)
    depth = max(k, DEPTH)

    def ranked(query: str, method: str) -> list[Chunk]:
        hits = opened.search(query, k=depth, hybrid=method != "vector",
                             rerank=rerank if method == "reranked" else None,
                             vector_weight=vector_weight)  # fmt: skip
        return [h.chunk for h in hits]

    return evaluate_with(ranked, asked, k=k, methods=methods)


@dataclass
class Answer:
    """A streamed answer (iterate it for text) and the sources its prompt carried."""

    prompt: GroundedPrompt
    stream: Iterator[str]

    def __iter__(self) -> Iterator[str]:
        return self.stream

    @property
    def sources(self) -> list[Hit]:
        """The retrieved chunks in the prompt, numbered from 1 as the model cites them."""
        return self.prompt.used


def ground(
    name: str,
    question: str,
    deployment: str,
    k: int = 5,
    hybrid: bool = False,
    max_tokens: int = 256,
    client: Callable[[], KzClient] | None = None,
    history: list[dict] | None = None,
    rerank: str | None = None,
) -> GroundedPrompt:
    """Retrieve k chunks for question (reordered by rerank when given, as `search`) and put
    those that fit the deployment's context (less max_tokens for the answer) in a grounded
    prompt. With history (the conversation so far, as chat messages), the retrieval uses the
    user's recent turns too, and the earlier turns that fit go into the prompt."""
    kz = client() if client else KzClient()
    plan = kz.deployment(deployment).get("plan") or {}
    history = history or []
    query = retrieval_query(history, question)
    hits = RagIndex(name, client=lambda: kz).search(query, k=k, hybrid=hybrid, rerank=rerank)
    context = plan.get("context_length") or DEFAULT_CONTEXT
    return grounded_turn(history, question, hits, context, max_tokens)


def ask(
    name: str,
    question: str,
    deployment: str,
    k: int = 5,
    hybrid: bool = False,
    max_tokens: int = 256,
    client: Callable[[], KzClient] | None = None,
    history: list[dict] | None = None,
    rerank: str | None = None,
    **params: object,
) -> Answer:
    """The grounded prompt (`ground`) and the deployment's answer to it, streamed: a chat
    grounded in the index, turn after turn, with history. More keyword arguments
    (temperature, ...) go into the chat request."""
    kz = client() if client else KzClient()
    prompt = ground(name, question, deployment, k=k, hybrid=hybrid, max_tokens=max_tokens,
                    client=lambda: kz, history=history, rerank=rerank)  # fmt: skip
    return Answer(prompt, kz.chat(deployment, prompt.messages, max_tokens=max_tokens, **params))
