"""The quickstart notebook runs top to bottom in a real kernel (embedded mode, no server)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"


def test_quickstart_runs_in_a_kernel(tmp_path, monkeypatch):
    monkeypatch.setenv("KZ_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.delenv("KZ_SERVER_URL", raising=False)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={
        "metadata": {"path": str(tmp_path)}
    }).execute()  # fmt: skip

    def text_of(source_start: str) -> str:
        """What a cell printed and the text form of what it displayed (panels)."""
        cell = next(c for c in notebook.cells if c.source.startswith(source_start))
        return "".join(
            o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in cell.outputs
        )

    assert "llamacpp" in text_of("%kz hw")
    assert "'smollm2' is ready" in text_of("%kz deploy")
    assert "Paris" in text_of('%kz chat smollm2 "What is the capital')
    assert "STOPPED" in text_of("%kz stop")
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            assert output.output_type != "error", output
            assert "Traceback" not in output.get("text", "")
