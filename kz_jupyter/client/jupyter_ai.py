"""kz deployments as jupyter-ai models: litellm's model ids, the proxy's URL and the key's name."""

from __future__ import annotations

import os
from dataclasses import dataclass

from kz_jupyter.client.rest_client import KzClient

# litellm's provider for a self-hosted OpenAI-compatible server: it takes `api_base` and reads
# its key from a variable of its own, so a kz alias never replaces the user's OPENAI_API_KEY.
LITELLM_PROVIDER = "hosted_vllm"
KEY_VARIABLE = "HOSTED_VLLM_API_KEY"
ALIAS_PREFIX = "kz-"
# A deployment that will answer (an unloaded one is loaded again by its first request).
ANSWERING = {"REQUESTED", "DEPLOYING", "INITIALIZING", "DEPLOYED", "UNLOADED", "ERROR"}


@dataclass(frozen=True)
class AiModel:
    """One chat deployment, as jupyter-ai and litellm name and reach it."""

    deployment: str
    model: str
    owner: str
    api_base: str

    @property
    def alias(self) -> str:
        """The name of its `%%ai` alias: kz-NAME."""
        return ALIAS_PREFIX + self.deployment

    @property
    def target(self) -> str:
        """litellm's model id of the deployment."""
        return f"{LITELLM_PROVIDER}/{self.deployment}"


def ai_models(client: KzClient) -> list[AiModel]:
    """The chat deployments the user can see and use (not stopped, failed or embedding ones)."""
    return [
        AiModel(d["name"], d["model"], d.get("owner", ""), client.openai_base_url)
        for d in client.deployments()
        if d["status"] in ANSWERING and (d.get("plan") or {}).get("task", "generate") == "generate"
    ]


def give_key(client: KzClient) -> None:
    """Put the token that opens the proxy where litellm reads it, in this process."""
    os.environ[KEY_VARIABLE] = client.connection.token
