"""`%kz compare` as panels: one prompt streamed from several deployments into columns side by
side, with each one's time to first token, tokens, tokens/s and length; or a template over rows,
each deployment's answers as a column with a summary (latency and tokens per deployment, as
bars). Their plain-text forms are in compare_text."""

from __future__ import annotations

import threading
from html import escape

import ipywidgets as widgets

from kz_jupyter.batch import Comparison, Reply, compare
from kz_jupyter.client import KzClient
from kz_jupyter.magics.compare_text import format_comparison, format_replies, reply_cells
from kz_jupyter.magics.panel import TextRepr
from kz_jupyter.magics.stats_text import millis

COLUMN = (
    "flex:1 1 240px;min-width:200px;margin:4px;padding:6px 8px;border-radius:4px;"
    "border:1px solid var(--jp-border-color2);background:var(--jp-layout-color1);"
    "color:var(--jp-ui-font-color1)"
)
BAR_WIDTH = 160


def bars_html(title: str, values: dict[str, float | None], shown: dict[str, str]) -> str:
    """Horizontal bars of one figure per deployment, in the theme's colors."""
    top = max((v for v in values.values() if v), default=0) or 1
    rows = "".join(
        f"<div style='display:flex;align-items:center;gap:6px'>"
        f"<span style='width:120px;overflow:hidden;text-overflow:ellipsis'>{escape(name)}</span>"
        f"<span style='display:inline-block;height:10px;background:var(--jp-brand-color1);"
        f"width:{(value or 0) / top * BAR_WIDTH:.0f}px'></span>"
        f"<span>{escape(shown[name])}</span></div>"
        for name, value in values.items()
    )
    return f"<div style='margin:4px 16px 4px 0'><b>{escape(title)}</b>{rows}</div>"


class ComparePanel(TextRepr, widgets.VBox):
    """One prompt streamed from several deployments into columns side by side."""

    def __init__(self, client: KzClient, deployments: list[str], prompt: str, **options):
        self.replies: list[Reply] = []
        self._columns = {name: widgets.HTML(self._column(name, "", "")) for name in deployments}
        box = widgets.Box(list(self._columns.values()),
                          layout={"flex_flow": "row wrap", "width": "100%"})  # fmt: skip
        super().__init__([widgets.HTML(f"<b>{escape(prompt)}</b>"), box])
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(client, deployments, prompt, options), daemon=True,
            name="kz-compare-panel",
        )  # fmt: skip
        self._thread.start()

    def _run(self, client: KzClient, deployments: list[str], prompt: str, options: dict) -> None:
        try:
            self.replies = compare(deployments, prompt, client=client, on_text=self._grow,
                                   **options)  # fmt: skip
            for reply in self.replies:
                cells = reply_cells(reply)
                figures = " · ".join(cells[1:])
                self._columns[reply.deployment].value = self._column(
                    reply.deployment, reply.error or reply.text, figures
                )
        finally:
            self._done.set()

    def _grow(self, deployment: str, text: str) -> None:
        self._columns[deployment].value = self._column(deployment, text, "streaming...")

    @staticmethod
    def _column(name: str, text: str, figures: str) -> str:
        return (
            f"<div style='{COLUMN}'><b>{escape(name)}</b> <small style='color:"
            f"var(--jp-ui-font-color2)'>{escape(figures)}</small>"
            f"<div style='white-space:pre-wrap;margin-top:4px'>{escape(text)}</div></div>"
        )

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every deployment has answered; True when they have."""
        return self._done.wait(timeout)

    def text(self) -> str:
        """The replies as text (once they are all in)."""
        return format_replies(self.replies) if self.replies else "comparing..."


class ComparisonPanel(TextRepr, widgets.VBox):
    """A template over rows on several deployments: the summary as bars, then the answers."""

    def __init__(self, comparison: Comparison):
        self.comparison = comparison
        names = [s["deployment"] for s in comparison.summary]
        latency = {s["deployment"]: s["latency_p50"] for s in comparison.summary}
        tokens = {s["deployment"]: s["tokens_per_answer"] for s in comparison.summary}
        bars = widgets.HTML(
            "<div style='display:flex;flex-wrap:wrap'>"
            + bars_html("latency p50", latency, {n: millis(latency[n]) for n in names})
            + bars_html("tokens per answer", tokens,
                        {n: "-" if tokens[n] is None else f"{tokens[n]:.1f}" for n in names})
            + "</div>"
        )  # fmt: skip
        answers = comparison.answers
        table = answers.to_html() if hasattr(answers, "to_html") else escape(str(answers))
        super().__init__([bars, widgets.HTML(f"<div style='overflow-x:auto'>{table}</div>")])

    def text(self) -> str:
        """The summary and the answers as text."""
        return format_comparison(self.comparison)
