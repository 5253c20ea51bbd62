"""Jupyternaut's kz models without a server: the config file keeps the user's own models and
replaces the ones kz wrote before, the server config lines are added once, a kz service out of
reach leaves the server starting with a warning, and `%kz ai` without jupyter-ai says what to
install (before looking for a kz server)."""

from __future__ import annotations

import json
import logging

from traitlets.config import Config

from kz_jupyter.client.jupyter_ai import AiModel
from kz_jupyter.client.jupyternaut_models import (
    add_to_server_config,
    main,
    offer_kz_models,
    write_custom_models,
)
from tests.support.magics_run import run_session

BASE = "http://127.0.0.1:8000/services/kz/kz/v1"


def model(name: str, owner: str = "alice") -> AiModel:
    """A deployment as jupyter-ai sees it."""
    return AiModel(name, "smollm2", owner, BASE)


def test_the_deployments_replace_what_kz_wrote_and_the_users_models_stay(tmp_path):
    path = tmp_path / "jupyter_ai" / "config.json"
    own = {"id": "custom-1/openai/mine", "name": "mine", "model_id": "openai/mine", "params": {}}
    path.parent.mkdir()
    path.write_text(json.dumps({"model_provider_id": "openai/mine", "custom_models": [own]}))
    write_custom_models(path, [model("a"), model("b")], BASE)
    first = json.loads(path.read_text())
    assert [m["name"] for m in first["custom_models"]] == ["a (kz)", "b (kz)", "mine"]
    assert first["model_provider_id"] == "openai/mine"
    a = first["custom_models"][0]
    assert a["model_id"] == "hosted_vllm/a" and a["params"] == {"api_base": BASE}
    assert a["id"].startswith("custom-") and a["id"].endswith("/hosted_vllm/a")
    assert a["description"] == "smollm2 on kz, deployed by alice"
    write_custom_models(path, [model("a")], BASE)  # b was stopped since
    again = json.loads(path.read_text())["custom_models"]
    assert [m["name"] for m in again] == ["a (kz)", "mine"]
    assert again[0]["id"] == a["id"]  # the same model each time, for the picker's selection


def test_the_server_config_lines_are_added_once(tmp_path, capsys, monkeypatch):
    existing = tmp_path / "jupyter_server_config.py"
    existing.write_text("c.ServerApp.open_browser = False")
    main(["--config-dir", str(tmp_path)])
    main(["--config-dir", str(tmp_path)])
    printed = capsys.readouterr().out
    assert "added offer_kz_models(c)" in printed and "already has offer_kz_models(c)" in printed
    text = existing.read_text()
    assert text.startswith("c.ServerApp.open_browser = False\n") and text.count("offer_kz") == 2
    monkeypatch.delenv("KZ_SERVER_URL", raising=False)
    exec(compile(text, str(existing), "exec"), {"c": Config()})  # as the server runs it
    assert add_to_server_config(tmp_path / "new") == (tmp_path / "new" / existing.name, True)


def test_a_kz_service_out_of_reach_is_a_warning(monkeypatch, tmp_path, caplog):
    c = Config()
    c.ConfigManager.config_path = str(tmp_path / "config.json")
    monkeypatch.delenv("KZ_SERVER_URL", raising=False)
    with caplog.at_level(logging.WARNING):
        assert offer_kz_models(c) == []
    assert "KZ_SERVER_URL is not set" in caplog.text
    monkeypatch.setenv("KZ_SERVER_URL", "http://127.0.0.1:9/services/kz/")
    with caplog.at_level(logging.WARNING):
        assert offer_kz_models(c) == []
    assert "Jupyternaut is not offered kz deployments: Cannot reach the kz server" in caplog.text
    assert "JupyternautExtension" not in c and not (tmp_path / "config.json").exists()


def test_kz_ai_without_jupyter_ai_says_what_to_install(tmp_path):
    out, err = run_session(tmp_path, ["%load_ext kz_jupyter", "%kz ai"])
    assert "kz: jupyter-ai's magics are not installed" in err[1]
    assert "pip install jupyter-ai-magic-commands" in err[1] and "Traceback" not in err[1]
    assert not (tmp_path / "state").exists()  # no embedded kz server was started for it
