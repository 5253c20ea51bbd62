"""`%kz rag ask` in a notebook: the phase under way with its time (retrieving, then
generating), the sources as soon as they are found, the answer streaming in as markdown, then
its figures and whether it was cut at --max-tokens."""

from __future__ import annotations

import time
from collections.abc import Callable
from html import escape

import ipywidgets as widgets

from kz_jupyter.client import KzClient
from kz_jupyter.client.replies import stream_reply
from kz_jupyter.errors import KzError
from kz_jupyter.magics.chat_panel import markdown_html
from kz_jupyter.magics.panel import Refresher, TextRepr, spinner
from kz_jupyter.magics.text import format_reply_figures

QUIET = "color:var(--jp-ui-font-color2);font-size:var(--jp-ui-font-size0)"


class AskPanel(TextRepr, widgets.VBox):
    """A grounded question and its answer, shown phase by phase."""

    def __init__(self, index: str, question: str, deployment: str, k: int = 5,
                 hybrid: bool = False, max_tokens: int = 256,
                 rerank: str | None = None):  # fmt: skip
        self.index, self.question, self.deployment = index, question, deployment
        self.k, self.hybrid, self.max_tokens, self.rerank = k, hybrid, max_tokens, rerank
        self.answer = ""
        self.sources: list[str] = []
        self.figures = ""
        self.cut = False
        self._phase_name, self._phase_since = "", time.monotonic()
        self._phase = widgets.HTML()
        self._sources = widgets.HTML()
        self._answer = widgets.HTML()
        self._figures = widgets.HTML()
        about = f"({deployment}, grounded in '{index}')"
        title = widgets.HTML(
            f"<b>{escape(question)}</b> <span style='{QUIET}'>{escape(about)}</span>"
        )
        super().__init__([title, self._phase, self._sources, self._answer, self._figures])

    def run(self, client: Callable[[], KzClient]) -> None:
        """Retrieve, show the sources, then stream the answer (the phase line ticks along)."""
        from kz_jupyter import rag

        ticker = Refresher(0.5, self._tick, lambda _: None)
        self._enter(f"retrieving from '{self.index}'")
        ticker.start()
        try:
            grounded = rag.ground(
                self.index, self.question, self.deployment, k=self.k, hybrid=self.hybrid,
                max_tokens=self.max_tokens, client=client, rerank=self.rerank,
            )  # fmt: skip
            self.sources = grounded.source_lines()
            lines = "<br>".join(escape(line) for line in self.sources)
            self._sources.value = f"<div style='{QUIET}'>Sources:<br>{lines}</div>"
            self._enter(f"generating with {self.deployment}")
            reply = stream_reply(client(), self.deployment, grounded.messages,
                                 {"max_tokens": self.max_tokens}, self._grow)  # fmt: skip
            if reply.error:
                raise KzError(reply.error)
            self.cut = reply.finish_reason == "length"
            self.figures = format_reply_figures(reply, self.max_tokens)
            self._grow("", reply.text)
            self._figures.value = f"<div style='{QUIET}'>{escape(self.figures)}</div>"
        finally:
            ticker.stop()
            self._phase.value = ""

    def _enter(self, phase: str) -> None:
        self._phase_name, self._phase_since = phase, time.monotonic()
        self._tick()

    def _tick(self) -> None:
        seconds = time.monotonic() - self._phase_since
        phase = f"{spinner(seconds)} {self._phase_name} {seconds:.0f} s"
        self._phase.value = f"<span style='{QUIET}'>{escape(phase)}</span>"

    def _grow(self, _: str, text: str) -> None:
        self.answer = text
        self._answer.value = markdown_html(text)

    def text(self) -> str:
        """The answer (marked when cut at --max-tokens), then its sources, as in a terminal;
        the question alone before the answer (what a notebook keeps of the panel)."""
        if not self.answer:
            return f"{self.question} ({self.deployment}, grounded in '{self.index}')"
        cut = f" [cut at --max-tokens {self.max_tokens}]" if self.cut else ""
        lines = [self.answer + cut, "Sources:", *(f"  {line}" for line in self.sources)]
        return "\n".join(lines)
