"""Retrieval over your documents: documents, chunks, embedders, the FAISS index, grounded
prompts, and the public API (`from kz_jupyter import rag`: index, search, ground, ask,
evaluate)."""

from kz_jupyter.rag.api import Answer, ask, evaluate, ground, index, search
from kz_jupyter.rag.evaluation import Evaluation, Question
from kz_jupyter.rag.index import list_indexes, remove_index

__all__ = [
    "Answer", "Evaluation", "Question", "ask", "evaluate", "ground", "index", "list_indexes",
    "remove_index", "search",
]  # fmt: skip
