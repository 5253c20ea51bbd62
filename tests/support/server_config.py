"""The configuration of the in-process test server (pytest-jupyter's jp_server_config)."""

from __future__ import annotations

from pathlib import Path


def kz_server_config(tmp_path: Path, **kz_options: object) -> dict:
    """The kz extension enabled, its state in tmp_path, engines given 120 s to start, and
    more KzApp options."""
    return {
        "ServerApp": {"jpserver_extensions": {"kz_jupyter.server_ext": True}},
        "KzApp": {
            "state_dir": str(tmp_path / "kz-state"),
            "startup_timeout": 120.0,
            **kz_options,
        },
    }
