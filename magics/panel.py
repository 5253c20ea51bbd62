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


STATUS_COLORS = {
    "DEPLOYED": "#1a7f37",
    "FAILED": "#cf222e",
    "ERROR": "#cf222e",
    "STOPPED": "#6e7781",
    "UNLOADED": "#6e7781",
    "MUST_REDOWNLOAD": "#bc4c00",
}


def status_html(status: str) -> str:
    """A status word in its color (in-progress statuses are blue)."""
    color = STATUS_COLORS.get(status.split()[0], "#0969da")
    return f"<b style='color:{color}'>{escape(status)}</b>"
