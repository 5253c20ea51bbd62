"""Finding the kz server: given by env, the Jupyter server of this kernel, or embedded."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import psutil
from jupyter_core.paths import jupyter_runtime_dir

from kz_jupyter.errors import KzError


@dataclass(frozen=True)
class ServerConnection:
    """Where the kz REST API lives and the token that opens it."""

    base_url: str
    token: str
    source: str

    def url(self, *parts: str) -> str:
        """Join path parts onto the server's base URL."""
        return self.base_url.rstrip("/") + "/" + "/".join(p.strip("/") for p in parts)


def _from_environment() -> ServerConnection | None:
    """A server named by KZ_SERVER_URL, opened by KZ_TOKEN; in a JupyterHub user's kernel, the
    kz service the hub configured, opened by the token the hub gave the user's server."""
    url = os.environ.get("KZ_SERVER_URL")
    if not url:
        return None
    token = os.environ.get("KZ_TOKEN") or os.environ.get("JUPYTERHUB_API_TOKEN", "")
    return ServerConnection(url, token, "environment")


def _from_parent_jupyter_server() -> ServerConnection | None:
    """The Jupyter server that started this kernel, from its runtime file jpserver-<pid>.json."""
    parent = os.getppid()
    info_file = Path(jupyter_runtime_dir()) / f"jpserver-{parent}.json"
    if not info_file.is_file() or not psutil.pid_exists(parent):
        return None
    try:
        info = json.loads(info_file.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return ServerConnection(info["url"], info.get("token", ""), f"jupyter server pid {parent}")


_embedded: ServerConnection | None = None
_embedded_lock = threading.Lock()


def start_embedded() -> ServerConnection:
    """Start the kz app in this process on loopback (once) and return its connection: the
    embedded hosting mode, the one place the kernel's side imports the server's (lazily, so a
    kernel that finds a server never loads it; the import contract names this exception)."""
    global _embedded
    with _embedded_lock:
        if _embedded is None:
            try:
                from kz_jupyter.server_ext.embedded import start_embedded_server

                url, token = start_embedded_server()
            except Exception as error:  # any failure to start is the user's one-line error
                raise KzError(f"Could not start the embedded kz server: {error}") from error
            _embedded = ServerConnection(url, token, "embedded")
        return _embedded


def find_server() -> ServerConnection | None:
    """Return the configured or enclosing server, without starting anything."""
    return _from_environment() or _from_parent_jupyter_server()


def connect() -> ServerConnection:
    """Return a connection to a kz server, starting the embedded one when none is reachable."""
    return find_server() or start_embedded()
