"""kz-jupyter: the notebook as the control room for local LLMs."""

from __future__ import annotations

__version__ = "0.1.0"


def load_ipython_extension(ipython) -> None:
    """`%load_ext kz_jupyter` loads the %kz magics."""
    from kz_jupyter.magics import load_ipython_extension as load_magics

    load_magics(ipython)


def _jupyter_labextension_paths() -> list[dict]:
    """Where the built JupyterLab extension is (for `jupyter labextension develop`)."""
    return [{"src": "labextension", "dest": "@kz-jupyter/labextension"}]
