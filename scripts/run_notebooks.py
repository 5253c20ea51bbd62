"""Run the notebooks top to bottom in a fresh kernel and save them with their outputs and
widget state (what nbval then checks, and what JupyterLab renders). Run it after changing a
notebook: .venv/bin/python scripts/run_notebooks.py [notebooks/NAME.ipynb ...]"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def run(path: Path) -> None:
    """Execute one notebook in its folder and write it back."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        store_widget_state=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    nbformat.write(notebook, path)
    print(f"ran {path.name}")


def main() -> None:
    """Run the notebooks given (default: all), each with fresh kz state."""
    os.environ.pop("KZ_SERVER_URL", None)  # an embedded server, as under nbval
    os.environ.setdefault("KZ_ENGINE_ENVS_DIR", str(ROOT / ".engines"))  # as the tests set it
    with tempfile.TemporaryDirectory() as state:
        os.environ["KZ_STATE_DIR"] = state
        paths = [Path(p) for p in sys.argv[1:]] or sorted(NOTEBOOKS.glob("*.ipynb"))
        for path in paths:
            run(path.resolve())


if __name__ == "__main__":
    main()
