"""What every kz panel shares: a full plain-text repr for terminals and nbval (ipywidgets cuts
its own at 110 characters), and static HTML for renderers that cannot run widgets."""

from __future__ import annotations


class TextRepr:
    """Mixin for ipywidgets panels: subclasses say what they show as text (and HTML)."""

    def text(self) -> str:
        """The panel as plain text."""
        raise NotImplementedError

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
