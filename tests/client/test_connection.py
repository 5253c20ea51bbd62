"""Finding the kz server: environment, the kernel's Jupyter server, or the embedded one."""

from __future__ import annotations

import pytest

from kz_jupyter.client import connection
from kz_jupyter.errors import KzError
from kz_jupyter.server_ext import embedded


def test_environment_names_the_server(monkeypatch):
    monkeypatch.setenv("KZ_SERVER_URL", "http://127.0.0.1:9/base/")
    monkeypatch.setenv("KZ_TOKEN", "secret")
    found = connection.find_server()
    assert (found.base_url, found.token, found.source) == (
        "http://127.0.0.1:9/base/",
        "secret",
        "environment",
    )
    assert found.url("kz/api", "deployments") == "http://127.0.0.1:9/base/kz/api/deployments"


def test_no_server_around_means_none(monkeypatch, tmp_path):
    monkeypatch.delenv("KZ_SERVER_URL", raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    assert connection.find_server() is None


def test_embedded_start_failure_is_one_clear_error(monkeypatch):
    def start():
        raise RuntimeError("port in use")

    monkeypatch.setattr(connection, "_embedded", None)
    monkeypatch.setattr(embedded, "start_embedded_server", start)
    with pytest.raises(KzError, match="Could not start the embedded kz server: port in use"):
        connection.start_embedded()
