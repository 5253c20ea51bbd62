"""Jupyternaut (jupyter-ai's chat) offering a hub's kz deployments: written into its model
picker as each user's Jupyter server starts, from that server's config.

In the single-user servers' `jupyter_server_config.py` (`python -m
kz_jupyter.client.jupyternaut_models` adds it):

    from kz_jupyter.client.jupyternaut_models import offer_kz_models
    offer_kz_models(c)

The server finds the kz service as the user's kernels do (`KZ_SERVER_URL`, opened by the hub's
token for the server); every deployment the user may use becomes one of Jupyternaut's custom
models (litellm's `hosted_vllm/NAME` at the service's `/v1`), the token goes into the server's
environment as `HOSTED_VLLM_API_KEY` (never into a file), and with no default model chosen yet
the first deployment is the default."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import uuid
from pathlib import Path

from jupyter_core.paths import jupyter_data_dir

from kz_jupyter.client.connection import find_server
from kz_jupyter.client.jupyter_ai import AiModel, ai_models, give_key
from kz_jupyter.client.rest_client import KzClient
from kz_jupyter.errors import KzError

CONFIG_LINES = (
    "# kz-jupyter: the kz deployments in Jupyternaut's model picker\n"
    "from kz_jupyter.client.jupyternaut_models import offer_kz_models\n"
    "offer_kz_models(c)\n"
)
SERVICE_TIMEOUT_SECONDS = 10.0
log = logging.getLogger(__name__)


def jupyternaut_config_path(config) -> Path:
    """Jupyternaut's config file: `c.ConfigManager.config_path`, else its default."""
    if "config_path" in config.ConfigManager:
        return Path(config.ConfigManager.config_path)
    return Path(jupyter_data_dir()) / "jupyter_ai" / "config.json"


def custom_model(model: AiModel) -> dict:
    """A deployment as one of Jupyternaut's custom models (the same id each time it is written)."""
    stable = uuid.uuid5(uuid.NAMESPACE_URL, model.api_base + "#" + model.deployment)
    owner = f", deployed by {model.owner}" if model.owner else ""
    return {
        "id": f"custom-{stable}/{model.target}",
        "name": f"{model.deployment} (kz)",
        "description": f"{model.model} on kz{owner}",
        "model_id": model.target,
        "params": {"api_base": model.api_base},
    }


def write_custom_models(path: Path, models: list[AiModel], api_base: str) -> dict:
    """Put the deployments first among the file's custom models, in place of the ones this kz
    wrote before (the user's own models are kept); the config as written."""
    config = json.loads(path.read_text()) if path.is_file() and path.stat().st_size else {}
    theirs = config.get("custom_models", [])
    kept = [m for m in theirs if m.get("params", {}).get("api_base") != api_base]
    config["custom_models"] = [custom_model(m) for m in models] + kept
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=4))
    return config


def offer_kz_models(c) -> list[AiModel]:
    """From a Jupyter server's config `c`: offer Jupyternaut the kz deployments the server's
    user may use; a kz service out of reach is a warning, never a server that does not start."""
    connection = find_server()
    if connection is None:
        log.warning("kz: KZ_SERVER_URL is not set, so Jupyternaut is not offered kz deployments")
        return []
    client = KzClient(connection, timeout=SERVICE_TIMEOUT_SECONDS)
    try:
        models = ai_models(client)
    except KzError as error:
        log.warning("kz: Jupyternaut is not offered kz deployments: %s", error)
        return []
    finally:
        client.close()
    give_key(client)
    config = write_custom_models(jupyternaut_config_path(c), models, client.openai_base_url)
    extension = c.JupyternautExtension
    extension.model_parameters = {
        **(extension.model_parameters if "model_parameters" in extension else {}),
        **{m.target: {"api_base": m.api_base} for m in models},
    }
    chosen = config.get("model_provider_id") or "initial_language_model" in extension
    if models and not chosen:
        extension.initial_language_model = models[0].target
    return models


def add_to_server_config(config_dir: Path) -> tuple[Path, bool]:
    """Add the two lines to `jupyter_server_config.py` in config_dir; (its path, whether it
    changed: False when they are there already)."""
    path = config_dir / "jupyter_server_config.py"
    text = path.read_text() if path.is_file() else ""
    if "offer_kz_models(c)" in text:
        return path, False
    config_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(text + ("\n" if text and not text.endswith("\n") else "") + CONFIG_LINES)
    return path, True


def main(argv: list[str] | None = None) -> None:
    """`python -m kz_jupyter.client.jupyternaut_models [--config-dir DIR]`."""
    parser = argparse.ArgumentParser(
        prog="python -m kz_jupyter.client.jupyternaut_models",
        description="Make every Jupyter server of this environment (or of --config-dir) offer "
        "Jupyternaut the hub's kz deployments as it starts.",
    )
    parser.add_argument(
        "--config-dir",
        type=Path,
        default=Path(sys.prefix) / "etc" / "jupyter",
        help="a Jupyter config directory (default: this environment's, %(default)s)",
    )
    path, changed = add_to_server_config(parser.parse_args(argv).config_dir)
    print(f"{path}: {'added' if changed else 'already has'} offer_kz_models(c)")


if __name__ == "__main__":
    main()
