"""The kernel's side of the REST API: finding the kz server and the client that talks to it.

`from kz_jupyter.client import KzClient` is the public entry point."""

from kz_jupyter.client.rest_client import KzClient

__all__ = ["KzClient"]
