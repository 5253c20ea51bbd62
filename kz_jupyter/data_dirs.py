"""Where kz-jupyter keeps its own data on a machine: engine environments, retrieval indexes."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir(variable: str, leaf: str) -> Path:
    """$variable when set, else `<XDG data home>/kz-jupyter/<leaf>` (~/.local/share/...)."""
    configured = os.environ.get(variable)
    if configured:
        return Path(configured).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "kz-jupyter" / leaf
