"""`%kz ai`: each kz deployment the user can see as an alias of jupyter-ai's magics, kz-NAME."""

from __future__ import annotations

import importlib.util
import os

from kz_jupyter.client import KzClient
from kz_jupyter.client.jupyter_ai import ALIAS_PREFIX, AiModel, ai_models, give_key
from kz_jupyter.errors import KzError

MAGICS_EXTENSION = "jupyter_ai_magic_commands"
MAGICS_CLASS = "AiMagics"


def jupyter_ai_magics(shell) -> object:
    """jupyter-ai's magics of this shell, loading their extension when it is installed."""
    registry = shell.magics_manager.registry
    if MAGICS_CLASS not in registry:
        if importlib.util.find_spec(MAGICS_EXTENSION) is None:
            raise KzError(
                "jupyter-ai's magics are not installed in this kernel's environment: "
                "pip install jupyter-ai-magic-commands, then run %kz ai again."
            )
        # litellm otherwise fetches its price list from the internet as it is imported, and
        # waits for it on a machine offline; the list it ships is enough for local models.
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        shell.extension_manager.load_extension(MAGICS_EXTENSION)
    return registry[MAGICS_CLASS]


def register_aliases(ai_magics, client: KzClient) -> list[AiModel]:
    """Make kz-NAME an alias of each deployment in jupyter-ai's magics (the ones gone since are
    removed), with the proxy's URL, and give litellm the token in its key variable."""
    aliases = ai_magics.aliases
    base = client.openai_base_url
    for alias in [a for a, v in aliases.items() if a.startswith(ALIAS_PREFIX)]:
        if aliases[alias].get("api_base") == base:
            del aliases[alias]
    models = ai_models(client)
    for model in models:
        aliases[model.alias] = {"target": model.target, "api_base": base, "api_key_name": None}
    give_key(client)
    return models


def format_aliases(models: list[AiModel]) -> str:
    """The aliases registered, one a line, and how to use them."""
    if not models:
        return "No deployment to ask yet: %kz deploy MODEL, then %kz ai."
    width = max(len(m.alias) for m in models)
    lines = [
        f"{m.alias:<{width}}  {m.model}" + (f"  (deployed by {m.owner})" if m.owner else "")
        for m in models
    ]
    example = models[0].alias
    return "\n".join(
        ["jupyter-ai aliases of your kz deployments:", *lines,
         f"Ask one in a cell: %%ai {example} (run %kz ai again after a deploy or a stop)."]
    )  # fmt: skip
