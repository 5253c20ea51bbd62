"""The Python package build also builds the JupyterLab extension (labextension/, TypeScript):
npm installs its dependencies from package-lock.json and jupyter-builder (from the jupyterlab
build requirement) bundles it into kz_jupyter/labextension, which the wheel ships under
share/jupyter/labextensions/. A build that is newer than every source is kept.
KZ_SKIP_LABEXTENSION=1 leaves it out (`make demo`: the terminal demo needs no JupyterLab)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SOURCE = ROOT / "labextension"
BUILT = ROOT / "kz_jupyter" / "labextension" / "package.json"


def labextension_is_current() -> bool:
    """True when the built extension is newer than all of its sources."""
    inputs = [SOURCE / "package.json", SOURCE / "package-lock.json", SOURCE / "tsconfig.json"]
    inputs += [*SOURCE.glob("src/*"), *SOURCE.glob("style/*")]
    return BUILT.exists() and BUILT.stat().st_mtime >= max(p.stat().st_mtime for p in inputs)


def build_labextension() -> None:
    """npm install (as package-lock.json pins), then tsc and jupyter-builder (npm run build)."""
    if labextension_is_current() or os.environ.get("KZ_SKIP_LABEXTENSION") == "1":
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("Building the JupyterLab extension needs Node.js 18+ and npm.")
    bin_dir = str(Path(sys.executable).parent)  # jupyter-builder of this build environment
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    install = [npm, "install", "--no-audit", "--no-fund"]  # npm 11 ci trips on optional deps
    subprocess.run(install, cwd=SOURCE, env=env, check=True)
    subprocess.run([npm, "run", "build"], cwd=SOURCE, env=env, check=True)


class BuildPyWithLabextension(build_py):
    """build_py that builds the JupyterLab extension first."""

    def run(self) -> None:
        """Build the extension, then the Python modules."""
        build_labextension()
        super().run()


setup(cmdclass={"build_py": BuildPyWithLabextension})
