"""`%kz chat NAME` with no prompt: a small chat widget that streams replies and keeps the
conversation's history."""

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
ROLE_STYLES = {
    "user": BUBBLE + "background:var(--jp-layout-color2);margin-left:20%",
    "assistant": BUBBLE + "background:var(--jp-layout-color1);margin-right:20%",
    "error": BUBBLE + "background:var(--jp-layout-color2);color:var(--jp-error-color1)",
}


class ChatPanel(TextRepr, widgets.VBox):
    """Chat with a deployment: type, send, watch the reply stream in; history is kept."""

    def __init__(self, client: KzClient, name: str, max_tokens: int = 256, **params):
        self._client, self.name, self.max_tokens, self.params = client, name, max_tokens, params
        self.messages: list[dict] = []
        self.errors: list[str] = []
        self._thread: threading.Thread | None = None
        self._history = widgets.HTML()
        self._input = widgets.Textarea(placeholder=f"Message {name} (Shift+Enter adds a line)",
                                       layout=widgets.Layout(width="70%"))  # fmt: skip
        self._send = widgets.Button(description="Send", button_style="primary", icon="paper-plane")
        self._clear = widgets.Button(description="Clear", icon="trash")
        self._send.on_click(lambda _: self.send(self._input.value))
        self._clear.on_click(lambda _: self.clear())
        title = widgets.HTML(f"<b>Chat with '{escape(name)}'</b>")
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
            self.messages, self.errors = [], []
            self._render()

    def _stream(self) -> None:
        reply = self.messages[-1]
        try:
            chunks = self._client.chat(
                self.name, self.messages[:-1], max_tokens=self.max_tokens, **self.params
            )
            for text in chunks:
                reply["content"] += text
                self._render()
        except KzError as error:
            self.messages.pop()  # no reply: the question stays, the error is shown under it
            self.errors.append(str(error))
        finally:
            self._set_busy(False)
            self._render()

    def _set_busy(self, busy: bool) -> None:
        self._send.disabled = self._clear.disabled = busy
        self._send.description = "..." if busy else "Send"

    def _render(self) -> None:
        bubbles = [
            f"<div style='{ROLE_STYLES[m['role']]}'>{escape(m['content']) or '&hellip;'}</div>"
            for m in self.messages
        ]
        bubbles += [f"<div style='{ROLE_STYLES['error']}'>{escape(e)}</div>" for e in self.errors]
        self._history.value = "".join(bubbles) or "<i>No messages yet.</i>"

    def text(self) -> str:
        """The conversation as text."""
        lines = [f"Chat with '{self.name}'"]
        lines += [f"{m['role']}: {m['content']}" for m in self.messages]
        return "\n".join(lines + [f"error: {e}" for e in self.errors])
