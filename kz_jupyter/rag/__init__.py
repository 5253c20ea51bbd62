"""Retrieval over your documents: documents, chunks, embedders, the FAISS index, grounded
prompts, and the public API (`from kz_jupyter import rag`: index, search, ask)."""

from kz_jupyter.rag.api import Answer, ask, index, search
from kz_jupyter.rag.index import list_indexes, remove_index

__all__ = ["Answer", "ask", "index", "list_indexes", "remove_index", "search"]
