"""jupyter-ai reaching kz deployments with no setup by hand, from an environment of its own
(.venv-ai: jupyter-ai-magic-commands and Jupyternaut, with kz-jupyter): `%kz ai` makes each
deployment an alias of jupyter-ai's own magics, which answer through it; a Jupyter server whose
config has `offer_kz_models(c)` (written by the helper) offers the deployments in Jupyternaut's
model picker, and the model Jupyternaut builds from its config answers."""

from __future__ import annotations

import json
import os
import subprocess

import httpx
import pytest

from kz_jupyter.client import KzClient
from kz_jupyter.client.connection import ServerConnection
from tests.support.kernel_session import start_jupyter_server
from tests.support.magics_run import run_session
from tests.support.paths import ROOT

pytestmark = pytest.mark.slow
AI_PYTHON = ROOT / ".venv-ai" / "bin" / "python"
QUESTION = "What is the capital of France? Answer in one word."
ALIASES = (
    "import json; print(json.dumps(get_ipython().magics_manager.registry['AiMagics'].aliases))"
)
# What Jupyternaut does with the model a user picks (JupyternautPersona.get_agent).
JUPYTERNAUT_CALL = """
import json, sys
from jupyter_ai_jupyternaut.jupyternaut.chat_models import ChatLiteLLM
model = json.loads(sys.argv[1])
chat = ChatLiteLLM(**model["params"], model=model["model_id"], streaming=True, max_tokens=16)
print(chat.invoke(sys.argv[2]).content)
"""


@pytest.fixture(scope="module")
def kz_server(tmp_path_factory):
    """A Jupyter server with kz (this environment), SmolLM2 deployed as 'asked' (temperature 0
    by default, since jupyter-ai's magics send none)."""
    assert AI_PYTHON.exists(), "jupyter-ai's environment is missing: scripts/setup.sh makes it"
    url, token, process = start_jupyter_server(tmp_path_factory.mktemp("kz"))
    client = KzClient(ServerConnection(url, token, "test"))
    client.deploy("smollm2", name="asked", context_length=512, extra_args=["--temp", "0"])
    assert client.wait("asked")["status"] == "DEPLOYED"
    yield url, token, client
    process.terminate()
    process.wait(timeout=60)


def test_kz_ai_makes_each_deployment_an_alias_jupyter_ai_answers_through(
    kz_server, smollm2_path, tmp_path
):
    url, token, client = kz_server
    client.deploy(str(smollm2_path), engine="echo", name="other")
    assert client.wait("other")["status"] == "DEPLOYED"
    cells = [
        "%load_ext kz_jupyter",
        "%kz ai",
        ALIASES,
        f"%%ai kz-asked\n{QUESTION}",
        "print(_.data)",
        "import os\n"
        "print(os.environ['OPENAI_API_KEY'], os.environ['LITELLM_LOCAL_MODEL_COST_MAP'])",
        "from kz_jupyter.client import KzClient; KzClient().stop('other')",
        "%kz ai",
        ALIASES,
    ]
    out, err = run_session(
        tmp_path, cells, python=str(AI_PYTHON), KZ_SERVER_URL=url, KZ_TOKEN=token,
        OPENAI_API_KEY="the user's own key",
    )  # fmt: skip
    assert not any("Traceback" in text or "kz:" in text for text in err.values()), err
    assert "kz-asked  smollm2" in out[1] and "kz-other" in out[1], out[1]
    assert "%%ai kz-asked" in out[1] or "%%ai kz-other" in out[1]
    aliases = json.loads(out[2].split("\n=== OK")[0])
    assert aliases["kz-asked"] == {
        "target": "hosted_vllm/asked", "api_base": url + "kz/v1", "api_key_name": None
    }  # fmt: skip
    assert "Paris" in out[4], out[4]  # jupyter-ai's own %%ai, answered by the deployment
    assert "the user's own key True" in out[5]  # the token went where hosted_vllm reads it
    remaining = json.loads(out[8].split("\n=== OK")[0])
    assert "kz-asked" in remaining and "kz-other" not in remaining  # a stopped one is gone


def test_jupyternaut_is_offered_the_deployments_by_the_server_config(kz_server, tmp_path):
    url, token, _ = kz_server
    config_dir, data_dir = tmp_path / "config", tmp_path / "data"
    own = {"id": "custom-1/openai/mine", "name": "mine", "model_id": "openai/mine", "params": {}}
    (data_dir / "jupyter_ai").mkdir(parents=True)
    (data_dir / "jupyter_ai" / "config.json").write_text(json.dumps({"custom_models": [own]}))
    helper = subprocess.run(
        [AI_PYTHON, "-m", "kz_jupyter.client.jupyternaut_models", "--config-dir", config_dir],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "added offer_kz_models(c)" in helper.stdout
    # a hub's single-user server: KZ_SERVER_URL and the hub's token for the server
    environment = {"JUPYTER_CONFIG_DIR": str(config_dir), "JUPYTER_DATA_DIR": str(data_dir),
                   "KZ_SERVER_URL": url, "JUPYTERHUB_API_TOKEN": token, "KZ_TOKEN": "",
                   "LITELLM_LOCAL_MODEL_COST_MAP": "True"}  # fmt: skip
    naut_url, naut_token, process = start_jupyter_server(
        tmp_path, python=str(AI_PYTHON), **environment
    )
    try:
        headers = {"Authorization": f"token {naut_token}"}
        config = httpx.get(naut_url + "api/jupyternaut/config", headers=headers).json()
        secrets = httpx.get(naut_url + "api/jupyternaut/secrets", headers=headers).json()
    finally:
        process.terminate()
        process.wait(timeout=60)
    offered = {m["name"]: m for m in config["custom_models"]}
    assert offered["asked (kz)"]["model_id"] == "hosted_vllm/asked"
    assert offered["asked (kz)"]["params"] == {"api_base": url + "kz/v1"}
    assert offered["mine"] == {**own, "description": None}  # the user's own model is kept
    assert config["model_provider_id"] == "hosted_vllm/asked"  # the default, as none was chosen
    assert "HOSTED_VLLM_API_KEY" in secrets["static_secrets"]  # in the server's environment
    assert token not in (data_dir / "jupyter_ai" / "config.json").read_text()  # not in a file
    answer = subprocess.run(
        [AI_PYTHON, "-c", JUPYTERNAUT_CALL, json.dumps(offered["asked (kz)"]), QUESTION],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "HOSTED_VLLM_API_KEY": token, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
    )  # fmt: skip
    assert "Paris" in answer.stdout, answer.stdout + answer.stderr
