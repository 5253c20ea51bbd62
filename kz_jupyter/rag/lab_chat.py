"""What JupyterLab's docked chat asks a kernel of its own for, as one JSON line on stdout each:
the indexes there are, and a grounded prompt with its sources. Retrieval runs where the indexes
and the embedder are, on the kernel side, as it does for `%kz chat --rag` in a notebook."""

from __future__ import annotations

import json

from kz_jupyter.rag.api import ground
from kz_jupyter.rag.index import list_indexes


def print_indexes() -> None:
    """Print the names of the indexes that can be searched, as a JSON list."""
    names = [meta["name"] for meta in list_indexes() if "error" not in meta]
    print(json.dumps(names))


def print_grounded(request: str) -> None:
    """Print the grounded prompt for a JSON request {index, question, deployment, history,
    max_tokens}: {messages, sources}, the sources numbered as the model cites them."""
    asked = json.loads(request)
    prompt = ground(
        asked["index"],
        asked["question"],
        asked["deployment"],
        max_tokens=asked["max_tokens"],
        history=asked.get("history"),
    )
    print(json.dumps({"messages": prompt.messages, "sources": prompt.source_lines()}))
