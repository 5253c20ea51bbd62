"""`%kz chat NAME` with no prompt: a small chat widget (Enter sends, Shift+Enter adds a line)
that streams replies (markdown rendered, a stop button, time to first token and tokens/s, copy
and "insert into a new cell" under each) and keeps the conversation's history; with `--rag
INDEX`, each turn is grounded in the index (retrieving with the conversation so far) and shows
its sources under the reply."""

from __future__ import annotations

import functools
import threading
from html import escape

import ipywidgets as widgets
from markdown_it import MarkdownIt

from kz_jupyter.client import KzClient
from kz_jupyter.client.replies import stream_reply
from kz_jupyter.errors import KzError
from kz_jupyter.magics.chat_input import ChatInput
from kz_jupyter.magics.chat_log import ChatLog, reply_actions
from kz_jupyter.magics.panel import ERROR_TEXT, TextRepr
from kz_jupyter.magics.text import format_reply_figures

# JupyterLab's theme variables, so the bubbles read well in light, dark and high-contrast themes.
BUBBLE = (
    "margin:4px 0;padding:2px 8px;border-radius:6px;overflow-wrap:anywhere;"
    "color:var(--jp-content-font-color1);border:1px solid var(--jp-border-color2);"
)
QUIET = "font-size:var(--jp-ui-font-size0);color:var(--jp-ui-font-color2)"
SOURCES = f"margin:0 20% 6px 8px;{QUIET}"
FIGURES = f"margin:0 20% 6px 8px;{QUIET}"
ROLE_STYLES = {
    "user": BUBBLE + "background:var(--jp-layout-color2);margin-left:20%;white-space:pre-wrap",
    "assistant": BUBBLE + "background:var(--jp-layout-color1);margin-right:20%",
    "error": BUBBLE + f"background:var(--jp-layout-color2);{ERROR_TEXT}",
}
# The model's markdown as HTML; raw HTML in it is shown as text, never run.
MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")


@functools.lru_cache(maxsize=256)
def markdown_html(text: str) -> str:
    """A reply as HTML (cached: each streamed token redraws the whole conversation)."""
    return MARKDOWN.render(text)


class ChatPanel(TextRepr, widgets.VBox):
    """Chat with a deployment: type, send, watch the reply stream in, stop it; history is
    kept."""

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
        self.figures: dict[int, str] = {}  # an assistant message's index: how it came
        self.errors: list[str] = []
        self._thread: threading.Thread | None = None
        self._halt = threading.Event()
        self._history = ChatLog()
        self._input = ChatInput(
            placeholder=f"Message {name} (Enter sends, Shift+Enter adds a line)",
            layout=widgets.Layout(flex="1 1 240px"),
        )
        self._input.on_send(self.send)
        self._send = widgets.Button(description="Send", button_style="primary", icon="paper-plane")
        self._stop = widgets.Button(description="Stop", icon="stop", disabled=True)
        self._clear = widgets.Button(description="Clear", icon="trash")
        self._send.on_click(lambda _: self.send(self._input.value))
        self._stop.on_click(lambda _: self.stop())
        self._clear.on_click(lambda _: self.clear())
        grounded = f" grounded in '{escape(rag)}'" if rag else ""
        title = widgets.HTML(f"<b>Chat with '{escape(name)}'{grounded}</b>")
        wrapping = widgets.Layout(flex="0 1 auto", flex_flow="row wrap", max_width="100%")
        buttons = widgets.HBox([self._send, self._stop, self._clear], layout=wrapping)
        controls = widgets.Box([self._input, buttons], layout=widgets.Layout(flex_flow="row wrap"))
        super().__init__([title, self._history, controls])
        self._render()

    def send(self, prompt: str) -> None:
        """Send a message (shown at once); the reply streams in on a background thread."""
        if not prompt.strip() or self.busy:
            return
        self._input.value = ""
        self.messages.append({"role": "user", "content": prompt.strip()})
        self.messages.append({"role": "assistant", "content": ""})
        self._halt.clear()
        self._set_busy(True)
        self._render()
        self._thread = threading.Thread(target=self._stream, daemon=True, name="kz-chat")
        self._thread.start()

    def stop(self) -> None:
        """End the reply being streamed; what came so far stays."""
        self._halt.set()

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
            self.messages, self.errors, self.sources, self.figures = [], [], {}, {}
            self._render()

    def _stream(self) -> None:
        number = len(self.messages) - 1
        reply = self.messages[number]

        def grow(_: str, text: str) -> None:
            reply["content"] = text
            self._render()

        try:
            answer = stream_reply(self._client, self.name, self._prompt(number),
                                  self.params | {"max_tokens": self.max_tokens}, grow,
                                  stop=self._halt)  # fmt: skip
            if answer.error:
                raise KzError(answer.error)
            self.figures[number] = format_reply_figures(answer, self.max_tokens)
        except KzError as error:
            self.messages.pop()  # no reply: the question stays, the error is shown under it
            self.sources.pop(number, None)
            self.errors.append(str(error))
        finally:
            self._set_busy(False)
            self._render()

    def _prompt(self, number: int) -> list[dict]:
        """The messages to send for the reply at number: the conversation, or a prompt
        grounded in the index (its sources kept for the reply)."""
        if not self.rag:
            return self.messages[:number]
        from kz_jupyter import rag

        grounded = rag.ground(self.rag, self.messages[number - 1]["content"], self.name,
                              k=self.k, max_tokens=self.max_tokens, client=lambda: self._client,
                              history=self.messages[: number - 1])  # fmt: skip
        self.sources[number] = grounded.source_lines()
        return grounded.messages

    def _set_busy(self, busy: bool) -> None:
        self._send.disabled = self._clear.disabled = busy
        self._stop.disabled = not busy
        self._send.description = "..." if busy else "Send"

    def _render(self) -> None:
        bubbles = []
        for number, m in enumerate(self.messages):
            if m["role"] == "assistant":
                content = markdown_html(m["content"]) if m["content"] else "&hellip;"
            else:
                content = escape(m["content"])
            bubbles.append(f"<div style='{ROLE_STYLES[m['role']]}'>{content}</div>")
            if self.figures.get(number):
                bubbles.append(f"<div style='{FIGURES}'>{escape(self.figures[number])}</div>")
                bubbles.append(reply_actions(number))
            if number in self.sources:
                lines = "<br>".join(escape(line) for line in self.sources[number])
                bubbles.append(f"<div style='{SOURCES}'>Sources:<br>{lines}</div>")
        bubbles += [f"<div style='{ROLE_STYLES['error']}'>{escape(e)}</div>" for e in self.errors]
        self._history.replies = {str(n): self.messages[n]["content"] for n in self.figures}
        self._history.value = "".join(bubbles) or "<i>No messages yet.</i>"

    def text(self) -> str:
        """The conversation as text."""
        lines = [f"Chat with '{self.name}'" + (f" grounded in '{self.rag}'" if self.rag else "")]
        for number, m in enumerate(self.messages):
            lines.append(f"{m['role']}: {m['content']}")
            lines += [f"  ({self.figures[number]})"] if self.figures.get(number) else []
            lines += [f"  source {line}" for line in self.sources.get(number, [])]
        return "\n".join(lines + [f"error: {e}" for e in self.errors])
