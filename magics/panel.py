"""What every kz panel shares: a full plain-text repr for terminals and nbval (ipywidgets cuts
its own at 110 characters), and static HTML for renderers that cannot run widgets."""

from __future__ import annotations

import threading
from collections.abc import Callable
from html import escape


class TextRepr:
    """Mixin for ipywidgets panels: subclasses define `text()` (the panel as plain text) and
    may override `html()`."""

    def html(self) -> str | None:
        """The panel as static HTML, or None."""
        return None

    def __repr__(self) -> str:
        return self.text()

    def _repr_mimebundle_(self, **kwargs) -> dict:
        """The widget view, with the full text (and HTML) beside it."""
        data = super()._repr_mimebundle_(**kwargs) or {}
        data["text/plain"] = self.text()
        html = self.html()
        if html:
            data["text/html"] = html
        return data


class Refresher:
    """Calls refresh() every interval seconds on a daemon thread until stop(); a failing
    refresh is reported to on_error and tried again at the next tick."""

    def __init__(
        self, interval: float, refresh: Callable[[], None], on_error: Callable[[str], None]
    ):
        self.interval = interval
        self._refresh = refresh
        self._on_error = on_error
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="kz-panel-refresh")

    def start(self) -> Refresher:
        """Start ticking; returns self."""
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        """True until stopped."""
        return self._thread.is_alive() and not self._stopped.is_set()

    def stop(self) -> None:
        """Stop ticking (the thread ends at its next wake-up)."""
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self._refresh()
            except Exception as error:  # a panel keeps its last state and says why
                self._on_error(f"refresh failed: {error}")


def in_kernel() -> bool:
    """True inside a Jupyter kernel, where widgets can render (as tqdm.autonotebook decides)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in shell.config


def shown(panel: TextRepr) -> TextRepr | None:
    """A panel to display in a notebook; elsewhere (a terminal, `ipython script.ipy`, where a
    returned value is not shown) its text is printed."""
    if in_kernel():
        return panel
    print(panel.text())
    return None


# Each status's dot, in JupyterLab's theme colors (the word itself stays in the text color,
# which reads well in every theme; a dot needs only 3:1 against its background).
STATUS_COLORS = {
    "DEPLOYED": "var(--jp-success-color1)",
    "FAILED": "var(--jp-error-color1)",
    "ERROR": "var(--jp-error-color1)",
    "STOPPED": "var(--jp-ui-font-color2)",
    "UNLOADED": "var(--jp-ui-font-color2)",
    "MUST_REDOWNLOAD": "var(--jp-warn-color0)",
}
# An error's text: the text color (readable in every theme; JupyterLab's error red is under
# 4.5:1 on the dark theme's panels), marked by a bar in the error color.
ERROR_TEXT = "color:var(--jp-ui-font-color1);border-left:3px solid var(--jp-error-color1);"
DOT = "display:inline-block;width:0.6em;height:0.6em;border-radius:50%;margin-right:0.3em;"


SPINNER = "◐◓◑◒"


def spinner(seconds: float) -> str:
    """A spinner's frame for a time in seconds (it turns twice a second)."""
    return SPINNER[int(seconds * 2) % len(SPINNER)]


def status_html(status: str) -> str:
    """A status word after a dot in its color (in-progress statuses are the brand color)."""
    color = STATUS_COLORS.get(status.split()[0], "var(--jp-brand-color1)")
    return (
        f"<span><span aria-hidden='true' style='{DOT}"
        f"background:{color}'></span><b>{escape(status)}</b></span>"
    )
