"""Run kz-jupyter as a JupyterHub service: `python -m kz_jupyter.server_ext.access.hub_service` (or
`kz-jupyter-service`), started by the hub (a managed service) or by hand (an external one,
given the same JUPYTERHUB_* environment). It is a Jupyter server with the kz extension alone,
on the service's URL and prefix, where every request is authenticated by its hub token and
only the kz API (REST and OpenAI proxy) is served."""

from __future__ import annotations

import os
import sys
from urllib.parse import urlparse

REQUIRED = ("JUPYTERHUB_SERVICE_URL", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_API_URL")


def service_argv(environ: dict[str, str]) -> list[str]:
    """The Jupyter server options that make it the kz service the environment describes."""
    missing = [name for name in REQUIRED if not environ.get(name)]
    if missing:
        raise SystemExit(
            f"kz-jupyter-service runs as a JupyterHub service: {', '.join(missing)} unset. "
            "Declare it in jupyterhub_config.py (c.JupyterHub.services), see the README."
        )
    url = urlparse(environ["JUPYTERHUB_SERVICE_URL"])
    prefix = environ.get("JUPYTERHUB_SERVICE_PREFIX") or url.path or "/"
    extensions = {"kz_jupyter.server_ext": True, "jupyterlab": False, "notebook": False}
    return [
        *(f"--ServerApp.jpserver_extensions={name}={on}" for name, on in extensions.items()),
        f"--ServerApp.ip={url.hostname or '127.0.0.1'}",
        f"--ServerApp.port={url.port or 80}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.base_url={prefix}",
        "--ServerApp.open_browser=False",
        "--ServerApp.terminals_enabled=False",
        "--ServerApp.allow_root=True",  # it runs no kernels: root is the hub's choice to make
        "--ServerApp.identity_provider_class="
        "kz_jupyter.server_ext.access.hub_identity.HubIdentityProvider",
        "--ServerApp.authorizer_class=kz_jupyter.server_ext.access.hub_identity.KzOnlyAuthorizer",
    ]


def main() -> None:
    """Start the service (extra command-line options go to the server, e.g. --KzApp...)."""
    from jupyter_server.serverapp import ServerApp

    ServerApp.launch_instance(argv=service_argv(dict(os.environ)) + sys.argv[1:])


if __name__ == "__main__":
    main()
