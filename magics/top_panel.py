"""`%kz top` and `%kz stats NAME` as a live panel: each deployment's figures of the last minute
and small plots of the last minutes, the machine's CPU, RAM and GPUs beside them; it refreshes
by itself until closed (its stop button, or closing the widget)."""

from __future__ import annotations

from html import escape

import ipywidgets as widgets

from kz_jupyter.client import KzClient
from kz_jupyter.magics.panel import Refresher, TextRepr, status_html
from kz_jupyter.magics.stats_text import deployment_cells, format_stats
from kz_jupyter.magics.text import format_bytes

REFRESH_SECONDS = 2.0
PLOT_WIDTH, PLOT_HEIGHT = 150, 36
CARD = (
    "border:1px solid var(--jp-border-color2);border-radius:4px;padding:6px 8px;"
    "margin:4px 0;background:var(--jp-layout-color1);color:var(--jp-ui-font-color1)"
)
FIGURES = ("requests", "req/s", "tok/s", "TTFT p50", "TTFT p95", "generation", "in flight",
           "queue", "memory")  # fmt: skip


def svg_plot(title: str, values: list[float | None], shown: str) -> str:
    """A small line plot of a series (gaps left out) with its title and latest value, drawn
    in the theme's colors."""
    known = [v for v in values if v is not None]
    top = max(known, default=0) or 1
    step = PLOT_WIDTH / max(len(values) - 1, 1)
    xy = [
        (i * step, PLOT_HEIGHT - 2 - v / top * (PLOT_HEIGHT - 4))
        for i, v in enumerate(values)
        if v is not None
    ]
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    dots = "".join(  # a point alone draws no line: a dot shows it
        f"<circle cx='{x:.1f}' cy='{y:.1f}' r='2' fill='var(--jp-brand-color1)'/>"
        for x, y in xy
        if len(xy) == 1
    )
    return (
        f"<div style='display:inline-block;margin:2px 10px 2px 0;vertical-align:top'>"
        f"<div style='font-size:var(--jp-ui-font-size0);color:var(--jp-ui-font-color2)'>"
        f"{escape(title)} <b style='color:var(--jp-ui-font-color1)'>{escape(shown)}</b></div>"
        f"<svg width='{PLOT_WIDTH}' height='{PLOT_HEIGHT}' role='img' "
        f"aria-label='{escape(title)}' style='background:var(--jp-layout-color2)'>"
        f"<polyline fill='none' stroke='var(--jp-brand-color1)' stroke-width='1.5' "
        f"points='{points}'/>{dots}</svg></div>"
    )


def deployment_html(d: dict) -> str:
    """A deployment's card: its figures, then its plots."""
    cells = deployment_cells(d)
    figures = "".join(
        f"<span style='margin-right:14px;white-space:nowrap'>"
        f"<span style='color:var(--jp-ui-font-color2)'>{label}</span> {escape(value)}</span>"
        for label, value in zip(FIGURES, cells[2:], strict=True)
    )
    series, gauges = d["series"], d["gauges"]
    plots = [
        svg_plot("req/s", series["requests_per_s"], cells[3]),
        svg_plot("tok/s", series["tokens_per_s"], cells[4]),
        svg_plot("TTFT p95", series["ttft_p95"], cells[6]),
    ]
    if any(v is not None for v in gauges["queue"]):
        plots.append(svg_plot("queue", gauges["queue"], cells[9]))
    plots.append(svg_plot("in flight", gauges["in_flight"], cells[8]))
    return (
        f"<div style='{CARD}'><b>{escape(d['name'])}</b> {status_html(d['status'])} "
        f"<small>{escape(d['engine'] or '-')}, {escape(d['replicas'])} replicas</small>"
        f"<div style='display:flex;flex-wrap:wrap;margin:4px 0'>{figures}</div>"
        f"<div style='display:flex;flex-wrap:wrap'>{''.join(plots)}</div></div>"
    )


def machine_html(machine: dict) -> str:
    """The machine's card: CPU, RAM and each GPU over the sampled minutes."""
    samples = machine["samples"]
    if not samples:
        return ""
    last = samples[-1]
    plots = [
        svg_plot("CPU", [s["cpu_percent"] for s in samples], f"{last['cpu_percent']:.0f}%"),
        svg_plot("RAM used", [s["ram_used"] for s in samples], format_bytes(last["ram_used"])),
    ]
    for index, gpu in enumerate(last["gpus"]):
        used = [s["gpus"][index]["memory_used"] if index < len(s["gpus"]) else None
                for s in samples]  # fmt: skip
        busy = [s["gpus"][index]["utilization"] if index < len(s["gpus"]) else None
                for s in samples]  # fmt: skip
        plots.append(svg_plot(f"GPU {gpu['index']} memory", used, format_bytes(used[-1])))
        if gpu["utilization"] is not None:
            plots.append(svg_plot(f"GPU {gpu['index']} busy", busy, f"{gpu['utilization']}%"))
    return (
        f"<div style='{CARD}'><b>machine</b> <small>sampled while this panel is open</small>"
        f"<div style='display:flex;flex-wrap:wrap'>{''.join(plots)}</div></div>"
    )


class TopPanel(TextRepr, widgets.VBox):
    """Every deployment's figures (or one's), live while open."""

    def __init__(
        self,
        client: KzClient,
        name: str | None = None,
        live: bool = True,
        interval: float = REFRESH_SECONDS,
    ):
        self._client, self._name = client, name
        self.stats = client.stats(name)
        self._body = widgets.HTML()
        self._note = widgets.HTML()
        self._stop = widgets.Button(description="stop", icon="stop", layout={"width": "auto"},
                                    tooltip="Stop refreshing")  # fmt: skip
        self._stop.on_click(lambda _: self.stop())
        title = widgets.HTML(f"<b>kz {'stats ' + escape(name) if name else 'top'}</b>")
        wrap = {"align_items": "center", "flex_flow": "row wrap"}
        header = widgets.HBox([title, self._stop, self._note], layout=wrap)
        super().__init__([header, self._body])
        self._show(self.stats)
        self.refresher = Refresher(interval, self.refresh, self._say)
        if live:
            self.refresher.start()
            self._say(f"refreshing every {interval:g} s")
        else:
            self._stop.disabled = True

    def refresh(self) -> None:
        """Read the figures again and show them."""
        self._show(self._client.stats(self._name))

    def stop(self) -> None:
        """Stop refreshing; the last figures stay."""
        self.refresher.stop()
        self._stop.disabled = True
        self._say("stopped")

    def _say(self, message: str) -> None:
        self._note.value = f"<small><i>{escape(message)}</i></small>" if message else ""

    def _show(self, stats: dict) -> None:
        self.stats = stats
        self._body.value = self.cards_html()

    def cards_html(self) -> str:
        """The deployments' and the machine's cards."""
        deployments = self.stats["deployments"]
        cards = "".join(deployment_html(d) for d in deployments) or (
            "<p>No deployments. Start one with: <code>%kz deploy smollm2</code></p>"
        )
        return cards + machine_html(self.stats["machine"])

    def text(self) -> str:
        """The figures as text."""
        return format_stats(self.stats)

    def close(self) -> None:
        """Stop refreshing and close the widgets."""
        self.refresher.stop()
        super().close()
