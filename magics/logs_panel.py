"""`%kz logs NAME` as a panel: the engine's log tail, then new lines as they are written, with
detected issue lines highlighted; following stops when the panel is closed."""

from __future__ import annotations

import threading
from html import escape

import ipywidgets as widgets

from kz_jupyter.client import KzClient
from kz_jupyter.errors import KzError
from kz_jupyter.magics.panel import ERROR_TEXT, TextRepr
from kz_jupyter.magics.text import format_log_event

KEPT_LINES = 500
BOX_STYLE = (
    "max-height:320px;overflow-y:auto;font-family:monospace;font-size:12px;"
    "white-space:pre-wrap;margin:0"
)


def event_html(event: dict) -> str:
    """One log line; an issue line in bold, marked in red, with its error code."""
    text = escape(f"{event['replica']} {event['line']}")
    if event.get("issue"):
        return (
            f"<span style='{ERROR_TEXT}padding-left:4px;font-weight:bold'>"
            f"[{escape(event['issue'])}] {text}</span>"
        )
    return text


class LogsPanel(TextRepr, widgets.VBox):
    """A live tail of a deployment's engine log."""

    def __init__(self, client: KzClient, name: str, lines: int = 100, live: bool = True):
        self._client, self.name, self.lines = client, name, lines
        self.events: list[dict] = []
        self._title = widgets.HTML(f"<b>Logs of '{escape(name)}'</b>")
        self._box = widgets.HTML()
        self._stop = threading.Event()
        super().__init__([self._title, self._box])
        if live:
            self._thread = threading.Thread(target=self._follow, daemon=True, name="kz-logs")
            self._thread.start()
        else:
            self._load()

    def _load(self) -> None:
        """Read the tail once (no following)."""
        logs = self._client.logs(self.name, self.lines)
        for replica, data in logs["replicas"].items():
            flagged = {number: code for number, code, _ in data["issues"]}
            for number, line in enumerate(data["lines"]):
                self._add({"replica": replica, "line": line, "issue": flagged.get(number)})
        self._render()

    def _follow(self) -> None:
        """Append events until the deployment stops or the panel closes."""
        try:
            for event in self._client.follow_logs(self.name, self.lines, stop=self._stop):
                self._add(event)
                self._render()
            ended = "the deployment is no longer running" if not self._stop.is_set() else ""
        except KzError as error:
            ended = str(error)
        if ended and not self._stop.is_set():
            self._title.value = f"<b>Logs of '{escape(self.name)}'</b> <i>({escape(ended)})</i>"

    def _add(self, event: dict) -> None:
        self.events.append(event)
        del self.events[:-KEPT_LINES]

    def _render(self) -> None:
        body = "\n".join(event_html(e) for e in self.events) or "<i>no lines yet</i>"
        self._box.value = f"<pre style='{BOX_STYLE}'>{body}</pre>"

    @property
    def following(self) -> bool:
        """True while the panel follows the log."""
        return hasattr(self, "_thread") and self._thread.is_alive()

    def text(self) -> str:
        """The lines so far, issue lines marked with '!'."""
        lines = [format_log_event(e) for e in self.events]
        return "\n".join([f"Logs of '{self.name}'", *lines])

    def close(self) -> None:
        """Stop following (at the next line or heartbeat) and close the widgets."""
        self._stop.set()
        super().close()
