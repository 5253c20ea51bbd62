"""%kz engines, %kz engines install, and deploy -> chat -> stop on every engine, in a real
IPython shell against the embedded app."""

from __future__ import annotations

import pytest

from tests.support.magics_run import run_session

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def transcript(tmp_path_factory, smollm2_safetensors_path):
    """Deploy, chat with and stop SmolLM2 on MLX, vLLM and the plugin engine from magics."""
    model = smollm2_safetensors_path
    cells = [
        "%load_ext kz_jupyter",
        "%kz engines",
        f"%kz plan {model}",
        f"%kz deploy {model} --engine mlx --name m --context 1024",
        '%kz chat m "What is the capital of France? Answer in one word." --temperature 0 '
        "--max-tokens 24",
        "%kz stop m",
        f"%kz deploy {model} --engine vllm --name v --context 1024",
        '%kz chat v "What is the capital of France? Answer in one word." --temperature 0 '
        "--max-tokens 24",
        "%kz stop v",
        "%kz deploy smollm2 --engine echo --name e",
        '%kz chat e "hello there"',
        "%kz stop e --forget\n%kz ps",
        "%kz engines install",
        "%kz engines install nonesuch",
        f"%kz deploy {model} --engine llamacpp",
    ]
    return run_session(tmp_path_factory.mktemp("engine-magics"), cells)


def test_no_cell_shows_a_traceback(transcript):
    out, err = transcript
    assert sorted(out) == list(range(15))
    for number in out:
        assert "Traceback" not in out[number] + err[number], (number, out[number], err[number])


def test_engines_lists_each_with_version_and_environment(transcript):
    out, _ = transcript
    lines = out[1].strip().splitlines()
    assert lines[0].split() == ["ENGINE", "USABLE", "VERSION", "ENVIRONMENT"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) >= {"llamacpp", "llama-cpp-python", "vllm", "mlx", "echo"}
    assert "own environment:" in rows["vllm"] and ".engines/vllm/bin/python" in rows["vllm"]
    assert "built by kz: " in rows["llamacpp"]  # the llama-server binary, its build, its origin
    assert rows["llamacpp"].rstrip().endswith(".engines/llamacpp/bin/llama-server")
    assert "this environment" in rows["llama-cpp-python"]


def test_plan_prefers_vllm_for_safetensors_on_cpu_and_says_why_not_the_others(transcript):
    out, _ = transcript
    plan = out[2]
    assert "engine   vllm 0." in plan and "safetensors model on CPU only" in plan
    assert "not llamacpp: gguf only; the model offers safetensors" in plan
    assert "not mlx: vllm is preferred on CPU only" in plan


@pytest.mark.parametrize(("deploy", "chat", "stop"), [(3, 4, 5), (6, 7, 8), (9, 10, 11)])
def test_every_engine_deploys_chats_and_stops(transcript, deploy, chat, stop):
    out, _ = transcript
    assert "DEPLOYED" in out[deploy] and "is ready: OpenAI endpoint" in out[deploy]
    assert out[chat].strip()
    assert "is STOPPED" in out[stop]


def test_a_stopped_deployment_can_be_forgotten(transcript):
    out, _ = transcript
    lines = out[11].strip().splitlines()
    assert lines[0] == "'e' is STOPPED and removed from the list."
    assert not any(line.split()[0] == "e" for line in lines[1:])  # %kz ps lists m and v only


def test_answers_come_from_the_engines(transcript):
    out, _ = transcript
    assert "Paris" in out[4] and "Paris" in out[7]  # MLX and vLLM, same weights
    assert out[10].strip().splitlines()[0].strip() == "echo: hello there"


def test_bad_engine_commands_are_one_line_errors(transcript):
    _, err = transcript
    assert "kz: name the engine: %kz engines install vllm" in err[12]
    known = "echo, llama-cpp-python, llamacpp, mlx, vllm"
    assert f"kz: No engine named 'nonesuch'. Known engines: {known}." in err[13]
    assert "kz: " in err[14] and "llamacpp" in err[14]


def test_install_creates_the_engine_environment_with_progress(tmp_path):
    envs = tmp_path / "envs"
    out, err = run_session(
        tmp_path,
        ["%load_ext kz_jupyter", "%kz engines", "%kz engines install mlx", "%kz engines"],
        KZ_ENGINE_ENVS_DIR=str(envs),
    )
    before = {line.split()[0]: line for line in out[1].strip().splitlines()[1:]}
    assert before["mlx"].split()[1] == "no"
    assert "mlx: mlx-lm is not installed in its environment: %kz engines install mlx" in out[1]
    assert f"Creating the environment {envs / 'mlx'}" in out[2]
    assert "Successfully installed" in out[2] and f"mlx is installed in {envs / 'mlx'}" in out[2]
    after = {line.split()[0]: line for line in out[3].strip().splitlines()[1:]}
    assert after["mlx"].split()[1] == "yes" and str(envs / "mlx" / "bin" / "python") in after["mlx"]
    assert "Traceback" not in "".join(err.values())
