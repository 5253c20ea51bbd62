"""The benchmark entry point in its quick form (the smoke test; figures are not judged here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support.paths import ROOT

SUITES = ["proxy", "concurrency", "deploy", "engines", "memory", "rag", "kernel"]

pytestmark = pytest.mark.slow


@pytest.mark.timeout(1800)
def test_quick_run_writes_a_table_json_and_plot_per_suite(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=1750,
        env={**os.environ, "KZ_STATE_DIR": str(tmp_path / "state")},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    for suite in SUITES:
        result = json.loads((tmp_path / f"{suite}.json").read_text())
        assert result["quick"] and result["rows"], suite
        assert (tmp_path / f"{suite}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", suite
        assert f"== {result['title']} ==" in done.stdout
    proxy = json.loads((tmp_path / "proxy.json").read_text())
    assert [row["concurrency"] for row in proxy["rows"]] == [1, 8, 64]
    assert all(row["errors proxy"] == 0 for row in proxy["rows"]), proxy["rows"]
    report = (tmp_path / "report.md").read_text()
    assert "python -m bench --quick" in report and report.count("### ") == len(SUITES)


def test_an_unknown_suite_is_refused_with_the_list():
    done = subprocess.run(
        [sys.executable, "-m", "bench", "nope"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 2 and "unknown suite nope: choose from proxy" in done.stderr
