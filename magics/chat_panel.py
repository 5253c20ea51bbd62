"""`%kz chat NAME` with no prompt: a small chat widget that streams replies and keeps the
conversation's history; with `--rag INDEX`, each turn is grounded in the index (retrieving with
the conversation so far) and shows its sources under the reply."""

from __future__ import annotations

import threading
from html import escape

import ipywidgets as widgets

from kz_jupyter.client import KzClient
from kz_jupyter.errors import KzError
from kz_jupyter.magics.panel import TextRepr

# JupyterLab's theme variables, so the bubbles read well in light, dark and high-contrast themes.
BUBBLE = (
    "margin:4px 0;padding:4px 8px;border-radius:6px;white-space:pre-wrap;"
    "color:var(--jp-content-font-color1);border:1px solid var(--jp-border-color2);"
)
SOURCES = "margin:0 20% 6px 8px;font-size:var(--jp-ui-font-size0);color:var(--jp-ui-font-color2)"
ROLE_STYLES = {
    "user": BUBBLE + "background:var(--jp-layout-color2);margin-left:20%",
    "assistant": BUBBLE + "background:var(--jp-layout-color1);margin-right:20%",
    "error": BUBBLE + "background:var(--jp-layout-color2);color:var(--jp-error-color1)",
}


class ChatPanel(TextRepr, widgets.VBox):
    """Chat with a deployment: type, send, watch the reply stream in; history is kept."""

    def __init__(
        self,
        client: KzClient,
        name: str,
        max_tokens: int = 256,
        rag: str | None = None,
        k: int = 5,
        **params,
    ):
        self._client, self.name, self.max_tokens, self.params = client, name, max_tokens, params
        self.rag, self.k = rag, k
        self.messages: list[dict] = []
        self.sources: dict[int, list[str]] = {}  # an assistant message's index: its sources
        self.errors: list[str] = []
        self._thread: threading.Thread | None = None
        self._history = widgets.HTML()
        self._input = widgets.Textarea(placeholder=f"Message {name} (Shift+Enter adds a line)",
                                       layout=widgets.Layout(width="70%"))  # fmt: skip
        self._send = widgets.Button(description="Send", button_style="primary", icon="paper-plane")
        self._clear = widgets.Button(description="Clear", icon="trash")
        self._send.on_click(lambda _: self.send(self._input.value))
        self._clear.on_click(lambda _: self.clear())
        grounded = f" grounded in '{escape(rag)}'" if rag else ""
        title = widgets.HTML(f"<b>Chat with '{escape(name)}'{grounded}</b>")
        controls = widgets.HBox([self._input, self._send, self._clear])
        super().__init__([title, self._history, controls])
        self._render()

    def send(self, prompt: str) -> None:
        """Send a message; the reply streams in on a background thread."""
        if not prompt.strip() or self.busy:
            return
        self._input.value = ""
        self.messages.append({"role": "user", "content": prompt.strip()})
        self.messages.append({"role": "assistant", "content": ""})
        self._set_busy(True)
        self._thread = threading.Thread(target=self._stream, daemon=True, name="kz-chat")
        self._thread.start()

    @property
    def busy(self) -> bool:
        """True while a reply is streaming."""
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the reply being streamed (for scripts and tests)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def clear(self) -> None:
        """Forget the conversation."""
        if not self.busy:
            self.messages, self.errors, self.sources = [], [], {}
            self._render()

    def _stream(self) -> None:
        reply = self.messages[-1]
        try:
            chunks = self._reply_chunks()
            for text in chunks:
                reply["content"] += text
                self._render()
        except KzError as error:
            self.messages.pop()  # no reply: the question stays, the error is shown under it
            self.errors.append(str(error))
        finally:
            self._set_busy(False)
            self._render()

    def _reply_chunks(self):
        """The reply's text as it streams: plain, or grounded in the index (its sources
        kept for the reply)."""
        if not self.rag:
            return self._client.chat(
                self.name, self.messages[:-1], max_tokens=self.max_tokens, **self.params
            )
        from kz_jupyter import rag
        from kz_jupyter.magics.rag_magics import source_lines

        answer = rag.ask(self.rag, self.messages[-2]["content"], self.name, k=self.k,
                         max_tokens=self.max_tokens, client=lambda: self._client,
                         history=self.messages[:-2], **self.params)  # fmt: skip
        self.sources[len(self.messages) - 1] = source_lines(answer)
        return answer

    def _set_busy(self, busy: bool) -> None:
        self._send.disabled = self._clear.disabled = busy
        self._send.description = "..." if busy else "Send"

    def _render(self) -> None:
        bubbles = []
        for number, m in enumerate(self.messages):
            content = escape(m["content"]) or "&hellip;"
            bubbles.append(f"<div style='{ROLE_STYLES[m['role']]}'>{content}</div>")
            if number in self.sources:
                lines = "<br>".join(escape(line) for line in self.sources[number])
                bubbles.append(f"<div style='{SOURCES}'>Sources:<br>{lines}</div>")
        bubbles += [f"<div style='{ROLE_STYLES['error']}'>{escape(e)}</div>" for e in self.errors]
        self._history.value = "".join(bubbles) or "<i>No messages yet.</i>"

    def text(self) -> str:
        """The conversation as text."""
        lines = [f"Chat with '{self.name}'" + (f" grounded in '{self.rag}'" if self.rag else "")]
        for number, m in enumerate(self.messages):
            lines.append(f"{m['role']}: {m['content']}")
            lines += [f"  source {line}" for line in self.sources.get(number, [])]
        return "\n".join(lines + [f"error: {e}" for e in self.errors])
