"""A deploy request as this server accepts it: the options validated (kz_jupyter's one deploy
schema), the model reference resolved once, local files inside the allowed folders, a name."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kz_jupyter.deploy_options import (
    NAME_PATTERN,
    DeployOptionError,
    DeployOptions,
    invalid_name,
    validate_options,
    validate_share,
)
from kz_jupyter.models.references import (
    LocalPath,
    ModelReference,
    ModelReferenceError,
    expand_home,
    is_local_path,
)
from kz_jupyter.planning.provisioning import Resolved, resolve


class DeployRequestError(ValueError):
    """A deploy request that cannot be accepted; `status` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class DeployRequest:
    """What a user asked to deploy (or plan, or pull): the options, its name filled in, and the
    model reference they resolve to."""

    options: DeployOptions
    resolved: Resolved

    @property
    def name(self) -> str:
        """The deployment's name."""
        return self.options.name or ""

    def with_options(self, **changes: object) -> DeployRequest:
        """The same request with some options changed (the reference stays resolved)."""
        return DeployRequest(self.options.model_copy(update=changes), self.resolved)


def check_model_root(reference: ModelReference, roots: tuple[str, ...]) -> None:
    """Refuse a local path outside the allowed folders (when any are configured)."""
    if not roots or not isinstance(reference, LocalPath):
        return
    path = Path(os.path.realpath(reference.path))
    if not any(path.is_relative_to(os.path.realpath(root)) for root in roots):
        raise DeployRequestError(
            f"{reference.path} is outside the folders models may be loaded from "
            f"({', '.join(roots)}; c.KzApp.model_roots): move the model there or use a Hub repo."
        )


def parse_deploy_request(body: object, model_roots: tuple[str, ...] = ()) -> DeployRequest:
    """Validate a POST body into a DeployRequest, or raise DeployRequestError saying why."""
    try:
        options = validate_options(body)
        resolved = resolve(options.model, options.revision)
    except (DeployOptionError, ModelReferenceError) as error:
        raise DeployRequestError(str(error)) from None
    check_model_root(resolved.reference, model_roots)
    companions = [("LoRA adapter", path) for path in options.lora_adapters.values()]
    if options.draft_model and is_local_path(options.draft_model):
        companions.append(("Draft model", options.draft_model))
    for kind, path in companions:
        try:
            check_model_root(LocalPath(expand_home(path)), model_roots)
        except ModelReferenceError as error:
            raise DeployRequestError(f"{kind}: {error}") from None
    if options.name is None:  # named after the model, which must make a valid name
        name = resolved.reference.short_name
        if not NAME_PATTERN.match(name):
            raise DeployRequestError(invalid_name(name))
        options = options.model_copy(update={"name": name})
    return DeployRequest(options, resolved)


def parse_share_field(body: dict) -> tuple[str, ...]:
    """The 'share' field of a PATCH body, validated as the deploy schema validates it."""
    try:
        return validate_share(body.get("share"))
    except DeployOptionError as error:
        raise DeployRequestError(str(error)) from None
