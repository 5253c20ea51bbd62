"""Embedded mode: the same Jupyter server app, started in-process on loopback with a random token.

Used where no Jupyter server is reachable (nbval, plain IPython, a script). The server runs on its
own thread and event loop, so the caller's thread (a kernel's, a script's) is never blocked.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import secrets
import threading
from pathlib import Path

from jupyter_core.paths import jupyter_runtime_dir
from jupyter_server.serverapp import ServerApp

from kz_jupyter.engines.process import free_port

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0


class EmbeddedServer:
    """A Jupyter ServerApp with only the kz extension, served from a daemon thread."""

    def __init__(self) -> None:
        self.token = secrets.token_hex(24)
        self.port = free_port(LOOPBACK)
        self.serverapp: ServerApp | None = None
        self.log_path: Path | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="kz-embedded-server", daemon=True)

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://{LOOPBACK}:{self.port}/"

    def _run(self) -> None:
        """Create the server on this thread's own event loop and serve until stopped."""
        asyncio.set_event_loop(asyncio.new_event_loop())
        try:
            app = ServerApp(jpserver_extensions={"kz_jupyter.server_ext": True})
            app.init_signal = lambda: None  # signal handlers belong to the main thread
            app.initialize(
                argv=[
                    f"--ServerApp.ip={LOOPBACK}",
                    f"--ServerApp.port={self.port}",
                    "--ServerApp.port_retries=0",
                    "--ServerApp.open_browser=False",
                    "--ServerApp.allow_root=True",
                    # answers reach the user through the client; the log (faults, 5xx) goes
                    # to a file, not into the cell of the kernel that runs this server
                    "--ServerApp.log_level=ERROR",
                    "--KzApp.persist=False",  # an embedded app lives and ends with its process
                    "--KzApp.prestart_ray=False",  # a kernel may never deploy: Ray on demand
                    f"--IdentityProvider.token={self.token}",
                ],
                find_extensions=False,
            )
            self._log_to_file(app)
            app.start_app()
            self.serverapp = app
        except BaseException as error:  # reported to the starting thread
            self._error = error
            self._started.set()
            return
        self._started.set()
        app.start_ioloop()

    def _log_to_file(self, app: ServerApp) -> None:
        """Send the server's log to kz-embedded-PID.log in the Jupyter runtime folder."""
        self.log_path = Path(jupyter_runtime_dir()) / f"kz-embedded-{os.getpid()}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(self.log_path)
        handler.setLevel(logging.WARNING)  # refusals and faults, not every request
        handler.setFormatter(logging.Formatter("[%(levelname)s %(asctime)s %(name)s] %(message)s"))
        for old in list(app.log.handlers):
            app.log.removeHandler(old)
        app.log.addHandler(handler)
        app.log.propagate = False

    def start(self) -> None:
        """Start serving and wait until the server listens."""
        self._thread.start()
        if not self._started.wait(START_TIMEOUT):
            raise RuntimeError(f"it did not start in {START_TIMEOUT:.0f} s")
        if self._error is not None:
            raise RuntimeError(str(self._error)) from self._error
        atexit.register(self.stop)

    def stop(self) -> None:
        """Stop the server (and with it every deployment it started)."""
        if self.serverapp is not None and self._thread.is_alive():
            self.serverapp.stop()
            self._thread.join(STOP_TIMEOUT)


def start_embedded_server() -> tuple[str, str]:
    """Start the embedded server; return its (base URL, token)."""
    server = EmbeddedServer()
    server.start()
    return server.url, server.token
