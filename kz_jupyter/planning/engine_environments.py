"""Engine environments: which Python interpreter runs each engine, and what is installed there.

Heavy engines pin their own torch and friends, so each engine may run from its own virtual
environment: one configured by path, else `<root>/<engine>` when it exists (where `%kz engines
install` creates it), else the interpreter running kz-jupyter.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kz_jupyter.data_dirs import data_dir

ENVS_DIR_VARIABLE = "KZ_ENGINE_ENVS_DIR"
INSTALLED_MARKER = "kz-installed"  # written into an own folder when its installation finished
PROBE_TIMEOUT = 60.0

_VERSIONS_SCRIPT = """
import importlib.metadata, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        found[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        found[name] = None
print(json.dumps({"python": sys.version.split()[0], "versions": found}))
"""


def default_envs_dir() -> Path:
    """Where engine environments are created: $KZ_ENGINE_ENVS_DIR, else the user data dir."""
    return data_dir(ENVS_DIR_VARIABLE, "engines")


def interpreter_in(path: Path) -> Path:
    """The Python interpreter of a virtual environment folder (existing or to be), or path
    itself when it is an interpreter."""
    if path.is_file():
        return path
    windows = path / "Scripts" / "python.exe"
    return windows if windows.exists() else path / "bin" / "python"


def is_current_interpreter(python: str | None) -> bool:
    """True when python names the interpreter running this process (None means it too).

    Compared without resolving links: every venv's python links to the same base interpreter.
    """
    return python is None or os.path.abspath(python) == os.path.abspath(sys.executable)


@dataclass(frozen=True)
class EnvironmentProbe:
    """What one interpreter holds: its Python version and the versions of some distributions."""

    python: str
    python_version: str = ""
    versions: Mapping[str, str | None] = field(default_factory=dict)
    error: str = ""

    def version_of(self, *names: str) -> str | None:
        """The version of the first of names that is installed, else None."""
        return next((self.versions[n] for n in names if self.versions.get(n)), None)


def probe_environment(python: str | None, distributions: Iterable[str]) -> EnvironmentProbe:
    """Ask an interpreter which of distributions it has; never raises (see `error`)."""
    names = list(distributions)
    if is_current_interpreter(python):
        versions = {}
        for name in names:
            try:
                versions[name] = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                versions[name] = None
        return EnvironmentProbe(sys.executable, sys.version.split()[0], versions)
    assert python is not None
    if not Path(python).exists():
        return EnvironmentProbe(python, error=f"{python} does not exist")
    stamp = _packages_stamp(python)
    key = (os.path.abspath(python), tuple(names), stamp)
    if stamp is not None and key in _probes:
        return _probes[key]
    probe = _run_probe(python, names)
    if stamp is not None and not probe.error:
        _probes[key] = probe
    return probe


# Probes of other environments, kept while their packages do not change (planning asks on
# every deploy, and each probe is a Python start: about 0.1 s).
_probes: dict[tuple, EnvironmentProbe] = {}


def _packages_stamp(python: str) -> tuple[float, ...] | None:
    """When the environment's site-packages folders last changed (a package installed, removed
    or upgraded changes them), or None when they cannot be found."""
    folders = sorted(Path(python).parent.parent.glob("lib/python*/site-packages"))
    try:
        return tuple(folder.stat().st_mtime for folder in folders) or None
    except OSError:
        return None


def _run_probe(python: str, names: list[str]) -> EnvironmentProbe:
    """Run the versions script in python."""
    try:
        done = subprocess.run(
            [python, "-I", "-c", _VERSIONS_SCRIPT, *names],  # -I: not the cwd's packages
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
            check=True,
        )
        answer = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as error:
        return EnvironmentProbe(python, error=f"{python} could not be run ({error})")
    return EnvironmentProbe(python, answer["python"], answer["versions"])


@dataclass(frozen=True)
class EngineEnvironments:
    """Where each engine's environment is: configured paths, then `root/<engine>`."""

    root: Path = field(default_factory=default_envs_dir)
    configured: Mapping[str, str] = field(default_factory=dict)

    def folder_for(self, engine: str) -> Path:
        """The folder `%kz engines install` creates for engine."""
        return self.root / engine

    def python_for(self, engine: str) -> str | None:
        """The interpreter that runs engine; None means the one running kz-jupyter.

        An own folder counts once an installation into it has finished: one interrupted or
        failed must not hide an engine this environment already has."""
        if engine in self.configured:
            return str(interpreter_in(Path(self.configured[engine]).expanduser()))
        python = interpreter_in(self.folder_for(engine))
        finished = (self.folder_for(engine) / INSTALLED_MARKER).exists()
        return str(python) if python.exists() and finished else None

    def describe(self, engine: str) -> str:
        """Where engine runs, in words."""
        python = self.python_for(engine)
        if python is None:
            return "this environment"
        source = "configured" if engine in self.configured else "own environment"
        return f"{source}: {python}"
