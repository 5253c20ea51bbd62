"""The ranked chunks of a retrieval search as a table widget: score, source, heading, text."""

from __future__ import annotations

from html import escape
from pathlib import Path

import ipywidgets as widgets

from kz_jupyter.magics.panel import TextRepr
from kz_jupyter.magics.text import format_table
from kz_jupyter.rag.index import Hit

PREVIEW_CHARS = 60
STYLE = (
    "<style>.kz-hits td{vertical-align:top;padding:2px 8px;text-align:left}"
    ".kz-hits th{text-align:left;padding:2px 8px}.kz-hits summary{cursor:pointer}</style>"
)


def where(hit: Hit) -> str:
    """The chunk's file name and location, like `guide.md:lines3-9`."""
    return f"{Path(hit.chunk.source).name}:{hit.chunk.location.replace(' ', '')}"


def format_hits(hits: list[Hit]) -> str:
    """Ranked chunks as a text table: rank, score, where, heading, the start of the text."""
    rows = [("#", "SCORE", "SOURCE", "HEADING", "TEXT")]
    for hit in hits:
        text = " ".join(hit.chunk.text.split())
        preview = text[:PREVIEW_CHARS] + ("..." if len(text) > PREVIEW_CHARS else "")
        rows.append((str(hit.rank), f"{hit.score:.3f}", where(hit), hit.chunk.heading[:30],
                     preview))  # fmt: skip
    return format_table(rows)


class SearchTable(TextRepr, widgets.VBox):
    """A search's hits: one row each, the whole chunk text one click away."""

    def __init__(
        self, index: str, query: str, hits: list[Hit], hybrid: bool = False,
        rerank: str | None = None,
    ):  # fmt: skip
        self.index, self.query, self.hits, self.hybrid = index, query, hits, hybrid
        self.rerank = rerank
        super().__init__([widgets.HTML(self.html())])

    def _caption(self) -> str:
        """What was searched, and how."""
        how = "hybrid (vector + BM25) search" if self.hybrid else "vector search"
        if self.rerank:
            how += f", reranked by {self.rerank}"
        return f"{len(self.hits)} chunks of '{self.index}' for {self.query!r} ({how})"

    def text(self) -> str:
        """The caption and the text table."""
        return f"{self._caption()}\n{format_hits(self.hits)}"

    def html(self) -> str:
        """An HTML table; each chunk's full text folds out of its preview."""
        rows = []
        for hit in self.hits:
            text = " ".join(hit.chunk.text.split())
            preview = escape(text[:PREVIEW_CHARS] + ("..." if len(text) > PREVIEW_CHARS else ""))
            rows.append(
                f"<tr><td>{hit.rank}</td><td>{hit.score:.3f}</td>"
                f"<td title='{escape(hit.chunk.source, quote=True)}'>{escape(where(hit))}</td>"
                f"<td>{escape(hit.chunk.heading)}</td><td><details><summary>{preview}</summary>"
                f"<pre style='white-space:pre-wrap'>{escape(hit.chunk.text)}</pre></details></td>"
                "</tr>"
            )
        head = "<tr><th>#</th><th>score</th><th>source</th><th>heading</th><th>text</th></tr>"
        return (
            f"{STYLE}<div class='kz-hits'><b>{escape(self._caption())}</b>"
            f"<table>{head}{''.join(rows)}</table></div>"
        )
