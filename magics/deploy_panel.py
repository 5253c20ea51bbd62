"""`%kz deploy` as a panel: download progress, then each status step with its time (the current
one with a spinner and the seconds it has taken so far), then a ready-to-copy `openai` snippet
(the magic's line under the panel says where it serves, or the error and what to do)."""

from __future__ import annotations

import time
from html import escape

import ipywidgets as widgets

from kz_jupyter.magics.panel import TextRepr, spinner, status_html
from kz_jupyter.magics.text import format_bytes, format_failure, format_transition

CHAT_SNIPPET = """\
from kz_jupyter.client import KzClient

client = KzClient().openai()  # an openai.OpenAI for {base_url}, with this server's token
reply = client.chat.completions.create(
    model="{name}", messages=[{{"role": "user", "content": "Hello!"}}]
)
print(reply.choices[0].message.content)"""
EMBED_SNIPPET = """\
from kz_jupyter.client import KzClient

client = KzClient().openai()  # an openai.OpenAI for {base_url}, with this server's token
vectors = client.embeddings.create(model="{name}", input=["Hello!"]).data"""
RERANK_SNIPPET = """\
from kz_jupyter.client import KzClient

client = KzClient().openai()  # an openai.OpenAI for {base_url}, with this server's token
ranked = client.post(
    "/rerank", cast_to=object,
    body={{"model": "{name}", "query": "Hello?", "documents": ["Hello!", "Goodbye."]}},
)["results"]  # [{{"index": ..., "relevance_score": ...}}, ...]"""
SNIPPETS = {"embed": EMBED_SNIPPET, "rerank": RERANK_SNIPPET}


def snippet(name: str, base_url: str, task: str) -> str:
    """Code that calls the deployment with the openai client (the token stays out of it)."""
    return SNIPPETS.get(task, CHAT_SNIPPET).format(name=name, base_url=base_url)


class DeployPanel(TextRepr, widgets.VBox):
    """One deployment coming up, step by step."""

    def __init__(self, model: str, name: str, started: float):
        self.model, self.name, self.started = model, name, started
        self.steps: list[dict] = []
        self.outcome = ""
        self._bar = widgets.FloatProgress(min=0.0, max=1.0, description="download",
                                          layout=widgets.Layout(display="none"))  # fmt: skip
        self._bytes = widgets.Label()
        self._steps = widgets.HTML()
        self._waiting = widgets.HTML()
        self._result = widgets.HTML()
        title = widgets.HTML(f"<b>Deploying {escape(model)} as '{escape(name)}'</b>")
        super().__init__([title, widgets.HBox([self._bar, self._bytes]), self._steps,
                          self._waiting, self._result])  # fmt: skip

    def add_step(self, entry: dict) -> None:
        """Show a status transition with the seconds since the deploy began."""
        self.steps.append(entry)
        self._show_steps(self.steps)

    def _show_steps(self, steps: list[dict]) -> None:
        rows = "".join(
            f"<tr><td>{status_html(e['status'])}</td><td>+{e['at'] - self.started:.1f} s</td>"
            f"<td>{escape(e.get('detail') or '')}</td></tr>"
            for e in steps
        )
        self._steps.value = f"<table>{rows}</table>"

    def tick(self, record: dict, now: float | None = None) -> None:
        """Show the step under way with a spinner and how long it and the deploy have taken."""
        now = time.time() if now is None else now
        since = record["history"][-1]["at"] if record.get("history") else self.started
        self._waiting.value = (
            f"<span style='color:var(--jp-ui-font-color2)'>{spinner(now)} "
            f"{escape(record['status'])} "
            f"for {now - since:.0f} s, {now - self.started:.0f} s in all</span>"
        )

    def progress(self, done: int, total: int) -> None:
        """Show download progress in bytes."""
        self._bar.layout.display = None
        self._bar.value = done / total if total else 0.0
        self._bytes.value = f"{format_bytes(done)} of {format_bytes(total)}"

    def finish(self, record: dict, base_url: str) -> None:
        """Show the endpoint and a snippet, or the failure with its remediation."""
        self._waiting.value = ""
        if record["status"] in ("DEPLOYED", "UNLOADED"):
            task = (record.get("plan") or {}).get("task", "generate")
            code = snippet(self.name, base_url, task)
            self.outcome = (
                f"'{self.name}' is ready: OpenAI endpoint {base_url} (model='{self.name}')\n{code}"
            )
            self._result.value = (  # the line under the panel says it is ready and where
                "<pre style='background:var(--jp-cell-editor-background);padding:6px'>"
                f"{escape(code)}</pre>"
            )
            return
        self.outcome = format_failure(record)
        code = (record.get("error") or {}).get("code", "")
        if self.steps:  # the message and what to do are said once, by the line under the panel
            self._show_steps([*self.steps[:-1], self.steps[-1] | {"detail": code}])

    def text(self) -> str:
        """The steps so far and the outcome."""
        lines = [f"Deploying {self.model} as '{self.name}'"]
        lines += [format_transition(e, self.started) for e in self.steps]
        return "\n".join([*lines, self.outcome] if self.outcome else lines)
