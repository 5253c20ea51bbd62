"""Packaging: one wheel with the mapped subpackages, auto-enabled server extension, entry points."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile

import pytest

from tests.support.paths import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("kz_jupyter-*.whl")
    return zipfile.ZipFile(path)


def test_wheel_maps_the_rooms_into_one_namespace(wheel):
    names = set(wheel.namelist())
    for module in (
        "kz_jupyter/deploy_options.py",
        "kz_jupyter/client/rest_client.py",
        "kz_jupyter/models/presets.toml",
        "kz_jupyter/planning/planner.py",
        "kz_jupyter/rag/index.py",
        "kz_jupyter/engines/pool.py",
        "kz_jupyter/server_ext/app.py",
        "kz_jupyter/server_ext/access/sharing.py",
        "kz_jupyter/server_ext/api/openai_proxy.py",
        "kz_jupyter/server_ext/lifecycle/controller.py",
        "kz_jupyter/magics/kz_magics.py",
    ):
        assert module in names
    assert not any(n.startswith(("engines/", "server_ext/", "magics/", "tests/")) for n in names)


def test_wheel_enables_the_server_extension_on_install(wheel):
    (config,) = [
        n for n in wheel.namelist() if n.endswith("jupyter_server_config.d/kz_jupyter.json")
    ]
    assert "/data/etc/jupyter/" in config
    enabled = json.loads(wheel.read(config))["ServerApp"]["jpserver_extensions"]
    assert enabled == {"kz_jupyter.server_ext": True}


def test_wheel_registers_the_engines(wheel):
    (entry_points,) = [n for n in wheel.namelist() if n.endswith("entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "[kz_jupyter.engines]" in text and "llamacpp = kz_jupyter.engines.llamacpp" in text


def test_wheel_ships_the_built_jupyterlab_extension(wheel):
    prefix = "kz_jupyter-0.1.0.data/data/share/jupyter/labextensions/@kz-jupyter/labextension/"
    names = set(wheel.namelist())
    package = json.loads(wheel.read(prefix + "package.json"))
    assert package["name"] == "@kz-jupyter/labextension"
    assert package["jupyterlab"]["_build"]["load"].startswith("static/remoteEntry.")
    assert prefix + package["jupyterlab"]["_build"]["load"] in names
    assert not any(n.startswith("kz_jupyter/labextension/") for n in names)  # shipped once


def test_jupyterlab_lists_the_extension_enabled():
    listing = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"],
        capture_output=True,
        text=True,
        check=True,
    )
    output = re.sub(r"\x1b\[[0-9;]*m", "", listing.stdout + listing.stderr)
    assert re.search(r"@kz-jupyter/labextension v0\.1\.0\s+enabled\s+OK", output), output


def test_extension_is_enabled_in_this_environment():
    listing = subprocess.run(
        [sys.executable, "-m", "jupyter", "server", "extension", "list"],
        capture_output=True,
        text=True,
        check=True,
    )
    output = re.sub(r"\x1b\[[0-9;]*m", "", listing.stdout + listing.stderr)  # no colors
    assert re.search(r"kz_jupyter\.server_ext\s+enabled", output)
    assert re.search(r"kz_jupyter\.server_ext\s+OK", output)


def test_core_never_imports_jupyter_server_ipython_or_widgets():
    code = (
        "import sys, kz_jupyter.client, kz_jupyter.planning.planner, kz_jupyter.planning.hardware, "
        "kz_jupyter.client.connection, kz_jupyter.demo;"
        "bad = [m for m in ('jupyter_server', 'IPython', 'ipywidgets') if m in sys.modules];"
        "print(bad)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
