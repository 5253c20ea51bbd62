"""`%kz ps` as a panel: a live table of deployments with stop, restart and logs buttons; it
follows status changes (polling that stops when the panel is closed)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from html import escape

import ipywidgets as widgets

from kz_jupyter.client import KzClient
from kz_jupyter.errors import KzError
from kz_jupyter.magics.logs_panel import LogsPanel
from kz_jupyter.magics.panel import Refresher, TextRepr, status_html
from kz_jupyter.magics.text import format_age, format_bytes, format_deployments

REFRESH_SECONDS = 1.0
COLUMNS = (
    "name", "model", "engine", "status", "replicas", "endpoint", "memory", "age", "owner", "",
)  # fmt: skip
ENDED = ("STOPPED", "FAILED")


def memory_text(record: dict) -> str:
    """The planned memory of a deployment (the estimate), or '-'."""
    total = ((record.get("plan") or {}).get("memory") or {}).get("total")
    return f"~{format_bytes(total)}" if total else "-"


class DeploymentRow:
    """The widgets of one deployment's row; its buttons act through the panel."""

    def __init__(self, name: str, act: Callable[[str, str], None]):
        self.name = name
        self.cells = {column: widgets.HTML() for column in COLUMNS[:-1]}
        self.stop = widgets.Button(description="stop", icon="stop", layout=_button())
        self.restart = widgets.Button(description="restart", icon="refresh", layout=_button())
        self.logs = widgets.Button(description="logs", icon="file-text", layout=_button())
        for button in (self.stop, self.restart, self.logs):
            button.on_click(lambda b, action=button.description: act(action, name))
        self.widgets = [*self.cells.values(), widgets.HBox([self.stop, self.restart, self.logs])]

    def update(self, record: dict, endpoint: str) -> None:
        """Show a record."""
        ready = sum(1 for r in record["replicas"] if r["status"] == "DEPLOYED")
        status = record["status"] + (f" {record['error']['code']}" if record.get("error") else "")
        values = {
            "name": f"<b>{escape(record['name'])}</b>",
            "model": escape(record["model"]),
            "engine": escape(record.get("engine") or "-"),
            "status": status_html(status),
            "replicas": f"{ready}/{len(record['replicas'])}",
            "endpoint": f"<code>{escape(endpoint)}</code>"
            if record["status"] == "DEPLOYED"
            else "-",
            "memory": memory_text(record),
            "age": format_age(record["created_at"]),
            "owner": escape(record.get("owner") or "-")
            + f"<br><small>{escape(record.get('visibility', 'private'))}</small>",
        }
        if record.get("error"):
            values["status"] += f"<br><small>{escape(record['error']['remediation'])}</small>"
        for column, value in values.items():
            if self.cells[column].value != value:
                self.cells[column].value = value
        self.stop.disabled = record["status"] in ENDED


def _button() -> widgets.Layout:
    return widgets.Layout(width="auto")


class DeploymentsPanel(TextRepr, widgets.VBox):
    """Every deployment with its status, kept current while open."""

    def __init__(self, client: KzClient, live: bool = True, interval: float = REFRESH_SECONDS):
        self._client = client
        self.records: list[dict] = client.deployments()
        self._rows: dict[str, DeploymentRow] = {}
        self._grid = widgets.GridBox(
            layout=widgets.Layout(grid_template_columns=f"repeat({len(COLUMNS)}, auto)",
                                  grid_gap="4px 14px", align_items="center")
        )  # fmt: skip
        self._note = widgets.HTML()
        self._detail = widgets.VBox()
        super().__init__([self._grid, self._note, self._detail])
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
        if names != list(self._rows) or not self._grid.children:
            self._rows = {n: self._rows.get(n) or DeploymentRow(n, self._act) for n in names}
            header = [widgets.HTML(f"<b>{c.upper()}</b>") for c in COLUMNS]
            cells = [w for row in self._rows.values() for w in row.widgets]
            empty = widgets.HTML("No deployments. Start one with: <code>%kz deploy smollm2</code>")
            self._grid.children = header + cells if cells else [empty]
        for record in records:
            self._rows[record["name"]].update(record, self._client.openai_base_url)

    def _act(self, action: str, name: str) -> None:
        """A row's button: logs opens below the table; stop and restart run in the background."""
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
