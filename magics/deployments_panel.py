"""`%kz ps` as a panel: a live list of deployments with stop, restart, logs and remove buttons
that stay usable at any width; it follows status changes (polling that stops when the panel is
closed)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from html import escape

import ipywidgets as widgets

from kz_jupyter.client import KzClient
from kz_jupyter.errors import KzError
from kz_jupyter.magics.logs_panel import LogsPanel
from kz_jupyter.magics.panel import ERROR_TEXT, Refresher, TextRepr, status_html
from kz_jupyter.magics.text import format_age, format_bytes, format_deployments

REFRESH_SECONDS = 1.0
ENDED = ("STOPPED", "FAILED")
ACTIONS = (("stop", "stop"), ("restart", "refresh"), ("logs", "file-text"), ("remove", "trash"))
# A row wraps: its summary takes the width it can, its buttons keep their size and move under
# it when the output is narrow; long paths and messages break anywhere instead of spilling.
ROW = {"display": "flex", "flex_flow": "row wrap", "align_items": "center",
       "border_bottom": "1px solid var(--jp-border-color2)", "padding": "4px 0"}  # fmt: skip
SUMMARY = {"flex": "1 1 320px", "min_width": "0"}
DETAIL = {"flex": "1 1 100%", "min_width": "0"}
BUTTONS = {"flex_flow": "row wrap", "flex": "0 1 auto", "max_width": "100%"}
WRAP = "overflow-wrap:anywhere"
QUIET = "color:var(--jp-ui-font-color2)"


def memory_text(record: dict) -> str:
    """The planned memory of a running deployment (the estimate), or '-' (none is held by a
    stopped or failed one)."""
    total = ((record.get("plan") or {}).get("memory") or {}).get("total")
    return f"~{format_bytes(total)}" if total and record["status"] not in ENDED else "-"


def summary_html(record: dict) -> str:
    """A deployment's first line: name, status, engine, replicas, memory, age, owner."""
    ready = sum(1 for r in record["replicas"] if r["status"] == "DEPLOYED")
    status = record["status"] + (f" {record['error']['code']}" if record.get("error") else "")
    facts = [
        record.get("engine") or "-",
        f"{ready}/{len(record['replicas'])} replicas",
        memory_text(record),
        format_age(record["created_at"]),
        f"{record.get('owner') or '-'} ({record.get('visibility', 'private')})",
    ]
    quiet = " · ".join(escape(fact) for fact in facts)
    return (
        f"<div style='{WRAP}'><b>{escape(record['name'])}</b> {status_html(status)} "
        f"<span style='{QUIET}'>{quiet}</span></div>"
    )


def detail_html(record: dict, endpoint: str) -> str:
    """A deployment's model, endpoint when it serves, and its error with what to do."""
    lines = [f"<span style='{QUIET}'>model</span> {escape(record['model'])}"]
    if record["status"] == "DEPLOYED":
        lines.append(f"<span style='{QUIET}'>endpoint</span> <code>{escape(endpoint)}</code>")
    error = record.get("error")
    if error:
        lines.append(
            f"<span style='{ERROR_TEXT}padding-left:6px'>{escape(error['message'])}</span>"
        )
        lines.append(f"What to do: {escape(error['remediation'])}")
    return "".join(f"<div style='{WRAP}'>{line}</div>" for line in lines)


class DeploymentRow:
    """The widgets of one deployment's row; its buttons act through the panel."""

    def __init__(self, name: str, act: Callable[[str, str], None]):
        self.name = name
        self.summary = widgets.HTML(layout=widgets.Layout(**SUMMARY))
        self.detail = widgets.HTML(layout=widgets.Layout(**DETAIL))
        self.buttons = {
            action: widgets.Button(description=action, icon=icon, tooltip=f"{action} {name}",
                                   layout=widgets.Layout(width="auto", flex="0 0 auto"))
            for action, icon in ACTIONS
        }  # fmt: skip
        for action, button in self.buttons.items():
            button.on_click(lambda _, action=action: act(action, name))
        self.stop, self.remove = self.buttons["stop"], self.buttons["remove"]
        self.bar = widgets.HBox(list(self.buttons.values()), layout=widgets.Layout(**BUTTONS))
        self.box = widgets.Box([self.summary, self.bar, self.detail], layout=widgets.Layout(**ROW))
        self.box.add_class("kz-ps-row")

    def close(self) -> None:
        """Close the row's widgets (its deployment has left the list)."""
        for widget in (self.box, self.bar, self.summary, self.detail, *self.buttons.values()):
            widget.close()

    def update(self, record: dict, endpoint: str) -> None:
        """Show a record: stop while it runs, remove once it has ended."""
        for cell, value in ((self.summary, summary_html(record)),
                            (self.detail, detail_html(record, endpoint))):  # fmt: skip
            if cell.value != value:
                cell.value = value
        ended = record["status"] in ENDED
        self.stop.disabled = ended
        self.remove.layout.display = None if ended else "none"


class DeploymentsPanel(TextRepr, widgets.VBox):
    """Every deployment with its status, kept current while open."""

    def __init__(self, client: KzClient, live: bool = True, interval: float = REFRESH_SECONDS):
        self._client = client
        self.records: list[dict] = client.deployments()
        self._rows: dict[str, DeploymentRow] = {}
        self._table = widgets.VBox()
        self._note = widgets.HTML()
        self._detail = widgets.VBox()
        super().__init__([self._table, self._note, self._detail])
        self._show(self.records)
        self.refresher = Refresher(interval, self.refresh, self._say)
        if live:
            self.refresher.start()

    def refresh(self) -> None:
        """Read the deployments again and show what changed."""
        self._show(self._client.deployments())

    def _say(self, message: str) -> None:
        self._note.value = f"<i>{escape(message)}</i>" if message else ""

    def _show(self, records: list[dict]) -> None:
        self.records = records
        names = [r["name"] for r in records]
        if names != list(self._rows) or not self._table.children:
            for gone in set(self._rows) - set(names):
                self._rows[gone].close()
            self._rows = {n: self._rows.get(n) or DeploymentRow(n, self._act) for n in names}
            empty = widgets.HTML("No deployments. Start one with: <code>%kz deploy smollm2</code>")
            self._table.children = [row.box for row in self._rows.values()] or [empty]
        for record in records:
            self._rows[record["name"]].update(record, self._client.openai_base_url)

    def _act(self, action: str, name: str) -> None:
        """A row's button: logs opens below the table; stop, restart and remove run in the
        background."""
        if action == "logs":
            for old in self._detail.children:
                old.close()
            self._detail.children = [LogsPanel(self._client, name)]
            return
        self._say(f"{action} {name}...")
        threading.Thread(target=self._run, args=(action, name), daemon=True).start()

    def _run(self, action: str, name: str) -> None:
        try:
            getattr(self._client, action)(name)
            self._say("")
            self.refresh()
        except KzError as error:
            self._say(f"{action} {name}: {error}")

    def text(self) -> str:
        """The deployments as a text table."""
        return format_deployments(self.records)

    def close(self) -> None:
        """Stop refreshing, close an open logs panel and the widgets."""
        self.refresher.stop()
        for panel in self._detail.children:
            panel.close()
        super().close()
