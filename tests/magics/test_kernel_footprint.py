"""`%load_ext kz_jupyter` imports nothing heavy: widgets, HTTP and model libraries load when a
command needs them (the time itself is measured by `python -m bench kernel`)."""

from __future__ import annotations

import json
import subprocess
import sys

# Run in a fresh process with an IPython shell already up (as in a kernel): the time
# `%load_ext kz_jupyter` takes and the modules it adds (`python -m bench kernel` uses it too).
PROBE = """
import json, sys, time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
before = set(sys.modules)
started = time.perf_counter()
shell.run_line_magic("load_ext", "kz_jupyter")
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "added": sorted(set(sys.modules) - before)}))
"""
HEAVY = {"httpx", "ipywidgets", "openai", "ray", "numpy", "torch", "tqdm", "huggingface_hub",
         "jupyter_server", "faiss", "sentence_transformers", "psutil", "pydantic"}  # fmt: skip


def test_load_ext_imports_no_heavy_module():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    added = {name.split(".")[0] for name in json.loads(done.stdout)["added"]}
    assert "kz_jupyter" in added and not added & HEAVY, sorted(added & HEAVY)
