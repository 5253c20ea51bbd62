"""Quiet transformers: no progress bars of its own while kz-jupyter loads or converts a model
(a bar per search or conversion clutters cells, and makes notebook outputs differ by run)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def no_progress_bars() -> Iterator[None]:
    """Turn transformers' progress bars off for the block, then back on if they were on."""
    from transformers.utils import logging as transformers_logging

    was_enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            transformers_logging.enable_progress_bar()
