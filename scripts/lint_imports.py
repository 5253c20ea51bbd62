"""Check the import contracts of pyproject.toml ([tool.importlinter]) with import-linter.

engines/, server_ext/ and magics/ are mapped into the kz_jupyter namespace by setuptools'
package-dir, which import-linter (it walks one package folder) cannot follow; so the check runs
over a view of the tree laid out as installed: kz_jupyter/ with those three folders inside, as
links to the real files. Usage: python scripts/lint_imports.py [import-linter options]."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from importlinter.cli import lint_imports_command

ROOT = Path(__file__).resolve().parent.parent
MAPPED = ("engines", "server_ext", "magics")


def installed_view(into: Path) -> Path:
    """A folder holding kz_jupyter/ as installed, made of links to the repository's files."""
    package = into / "kz_jupyter"
    package.mkdir()
    for entry in (ROOT / "kz_jupyter").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    for room in MAPPED:
        (package / room).symlink_to(ROOT / room)
    return into


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(installed_view(Path(folder)))  # import-linter puts the working folder first
        sys.argv = [sys.argv[0], str(ROOT / "pyproject.toml"), "--no-cache", *sys.argv[1:]]
        lint_imports_command()
