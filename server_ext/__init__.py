"""The kz-jupyter Jupyter server extension."""

from __future__ import annotations


def _jupyter_server_extension_points() -> list[dict]:
    """Tell Jupyter where the extension app is."""
    from kz_jupyter.server_ext.app import KzApp

    return [{"module": "kz_jupyter.server_ext", "app": KzApp}]
