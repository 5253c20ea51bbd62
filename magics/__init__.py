"""The `%kz` magics (kernel side); they reach the server only through kz_jupyter.client."""

from __future__ import annotations


def load_ipython_extension(ipython) -> None:
    """Register the %kz magics (called by `%load_ext kz_jupyter`)."""
    from kz_jupyter.magics.kz_magics import KzMagics

    ipython.register_magics(KzMagics)
