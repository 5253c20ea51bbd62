"""The %kz magics in a real IPython shell against the embedded app (no Jupyter server)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.support.magics_run import run_session

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def transcript(tmp_path_factory) -> tuple[dict[int, str], dict[int, str]]:
    """Run the session once; return (stdout per cell, stderr per cell)."""
    return run_session(tmp_path_factory.mktemp("magics"))


def test_every_cell_ran_without_a_traceback(transcript):
    out, err = transcript
    assert sorted(out) == list(range(14))
    for number in out:
        assert "Traceback" not in out[number] + err[number], (number, out[number], err[number])


def test_hw_shows_cpu_ram_and_engines(transcript):
    out, _ = transcript
    assert "CPU" in out[1] and "RAM" in out[1] and "llamacpp" in out[1]


def test_deploy_prints_each_transition_then_the_endpoint(transcript):
    out, _ = transcript
    statuses = re.findall(r"^(REQUESTED|DEPLOYING|INITIALIZING|DEPLOYED)\s", out[2], flags=re.M)
    assert statuses == ["REQUESTED", "DEPLOYING", "INITIALIZING", "DEPLOYED"]
    assert "'smollm2' is ready" in out[2] and "/kz/v1" in out[2]
    assert "=== ENGINES 1" in out[2]


def test_chat_line_and_cell_magics_stream_a_sensible_reply(transcript):
    out, _ = transcript
    assert "Paris" in out[3]
    assert "Paris" in out[4]


def test_ps_lists_then_shows_stopped(transcript):
    out, _ = transcript
    assert re.search(r"smollm2\s+DEPLOYED\s+llamacpp\s+1/1", out[5])
    assert re.search(r"smollm2\s+STOPPED", out[8])


def test_logs_show_the_engine_log(transcript):
    out, _ = transcript
    assert "== smollm2-0" in out[6]


def test_stop_leaves_no_engine_running(transcript):
    out, _ = transcript
    assert "'smollm2' is STOPPED." in out[7]
    assert "=== ENGINES 0" in out[7]


def test_errors_are_one_clear_line(transcript):
    out, err = transcript
    assert "kz: missing FAILED [MODEL_LOADING_FAILURE]" in err[9]
    assert "What to do:" in err[9]
    assert "kz: No deployment named 'ghost'" in err[10]
    assert "kz: argument command: invalid choice: 'frobnicate'" in err[11]
    assert "kz: the following arguments are required: model" in err[12]
    assert "kz: cannot parse the line" in err[13]


def test_a_terminal_script_prints_what_the_panels_show(tmp_path):
    script = tmp_path / "state.ipy"  # in `ipython script.ipy` a returned value is not shown
    script.write_text("%load_ext kz_jupyter\n%kz hw\n%kz ps\n")
    env = {**os.environ, "KZ_STATE_DIR": str(tmp_path / "state"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}  # fmt: skip
    env.pop("KZ_SERVER_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "IPython", "--quick", str(script)], capture_output=True,
        text=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert "CPU" in done.stdout and "RAM" in done.stdout, done.stdout + done.stderr
    assert "No deployments" in done.stdout
