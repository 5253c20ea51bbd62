"""`%kz hw` as a panel: CPU, RAM and each GPU's memory as bars, the engines usable here;
memory refreshed live until the panel is closed."""

from __future__ import annotations

from html import escape

import ipywidgets as widgets

from kz_jupyter.client import KzClient
from kz_jupyter.magics.panel import Refresher, TextRepr
from kz_jupyter.magics.text import format_bytes, format_hardware

REFRESH_SECONDS = 2.0


def memory_bar(label: str) -> tuple[widgets.HBox, widgets.FloatProgress, widgets.Label]:
    """A labelled bar for one memory (RAM, a GPU), its progress and text widgets."""
    bar = widgets.FloatProgress(min=0.0, max=1.0, layout=widgets.Layout(width="240px"))
    text = widgets.Label()
    name = widgets.Label(label, layout=widgets.Layout(width="60px"))
    return widgets.HBox([name, bar, text]), bar, text


def show_usage(bar: widgets.FloatProgress, text: widgets.Label, used: int, total: int) -> None:
    """Set a bar to used of total; green, then orange above 70 %, red above 90 %."""
    share = used / total if total else 0.0
    bar.value = share
    bar.bar_style = "success" if share < 0.7 else "warning" if share < 0.9 else "danger"
    text.value = (
        f"{format_bytes(used)} used, {format_bytes(total - used)} free of {format_bytes(total)}"
    )


def engines_html(engines: list[dict]) -> str:
    """The engines as a small table: usable (with version) or why not."""
    rows = "".join(
        f"<tr><td><b>{escape(e['name'])}</b></td><td>"
        + (
            f"&#10003; {escape(e['version'])}"
            if e["available"]
            else f"&#10007; {escape(e['reason'])}"
        )
        + "</td></tr>"
        for e in engines
    )
    return f"<table>{rows}</table>"


class HardwarePanel(TextRepr, widgets.VBox):
    """The server machine's CPU, memory bars and engines, kept current while open."""

    def __init__(self, client: KzClient, live: bool = True, interval: float = REFRESH_SECONDS):
        self._client = client
        self.profile = client.hardware()
        self._cpu = widgets.HTML()
        self._bars: dict[str, tuple[widgets.FloatProgress, widgets.Label]] = {}
        self._memory = widgets.VBox()
        self._note = widgets.HTML()
        engines = widgets.HTML(engines_html(self.profile["engines"]))
        super().__init__([self._cpu, self._memory, engines, self._note])
        self._show(self.profile)
        self.refresher = Refresher(interval, self.refresh, self._say)
        if live:
            self.refresher.start()

    def refresh(self) -> None:
        """Read memory use again (engines are probed once, when the panel opens)."""
        profile = self._client.hardware(engines=False)
        self.profile = profile | {"engines": self.profile["engines"]}
        self._show(self.profile)
        self._note.value = ""

    def _say(self, message: str) -> None:
        self._note.value = f"<i>{escape(message)}</i>"

    def _show(self, profile: dict) -> None:
        """Put a profile in the widgets."""
        self._cpu.value = (
            f"<b>CPU</b> {escape(profile['cpu_model'])}: {profile['cpu_cores_physical']} cores, "
            f"{profile['cpu_cores_logical']} threads"
            + (
                ""
                if profile["gpus"]
                else f" &middot; <b>GPU</b> none ({escape(profile['gpu_note'])})"
            )
        )
        usage = {"RAM": (profile["ram_total"] - profile["ram_available"], profile["ram_total"])}
        for gpu in profile["gpus"]:
            usage[f"GPU {gpu['index']}"] = (gpu["memory_used"], gpu["memory_total"])
        if set(usage) != set(self._bars):
            self._bars, rows = {}, []
            for label in usage:
                row, bar, text = memory_bar(label)
                self._bars[label] = (bar, text)
                rows.append(row)
            self._memory.children = rows
        for label, (used, total) in usage.items():
            show_usage(*self._bars[label], used, total)

    def text(self) -> str:
        """The profile as lines of text."""
        return format_hardware(self.profile)

    def close(self) -> None:
        """Stop refreshing and close the widgets."""
        self.refresher.stop()
        super().close()
