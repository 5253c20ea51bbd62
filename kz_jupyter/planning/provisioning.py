"""From what a user typed to files on disk: resolve (presets too), plan, download, verify."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple

from kz_jupyter.deploy_options import EngineOptions
from kz_jupyter.models.hub import HubSettings, ProgressCallback, RemoteFile, download_files
from kz_jupyter.models.local_files import ModelNotFoundError
from kz_jupyter.models.presets import Preset, find_preset
from kz_jupyter.models.references import HubRepo, ModelReference, parse_reference
from kz_jupyter.models.sources import ModelSource, open_source, redownload_hint
from kz_jupyter.models.verification import verify_files
from kz_jupyter.planning.engine_environments import EngineEnvironments
from kz_jupyter.planning.machine import HardwareProfile
from kz_jupyter.planning.plan import Plan
from kz_jupyter.planning.planner import plan_deployment
from kz_jupyter.states import ErrorCode


class Resolved(NamedTuple):
    """What a model text names: the model reference, and the preset it came from, if any."""

    reference: ModelReference
    preset: Preset | None


def resolve(text: str, revision: str | None = None) -> Resolved:
    """Parse a model reference; a preset name resolves to its model."""
    preset = find_preset(text)
    return Resolved(parse_reference(preset.model if preset else text, revision), preset)


def with_preset(overrides: EngineOptions, preset: Preset | None) -> EngineOptions:
    """Fill what the user left unset from the preset's defaults."""
    if preset is None:
        return overrides
    return overrides.model_copy(
        update={
            "engine": overrides.engine or preset.engine,
            "context_length": overrides.context_length or preset.context_length,
            "extra_args": overrides.extra_args or preset.extra_args,
        }
    )


def prepare(
    text: str,
    hardware: HardwareProfile,
    settings: HubSettings,
    overrides: EngineOptions | None = None,
    revision: str | None = None,
    environments: EngineEnvironments | None = None,
) -> tuple[Plan, ModelSource]:
    """Resolve and plan without downloading weights (Hub headers are read by ranged reads)."""
    return plan_resolved(resolve(text, revision), text, hardware, settings, overrides, environments)


def plan_resolved(
    resolved: Resolved,
    text: str,
    hardware: HardwareProfile,
    settings: HubSettings,
    overrides: EngineOptions | None = None,
    environments: EngineEnvironments | None = None,
) -> tuple[Plan, ModelSource]:
    """Plan a model already resolved from what the user typed (text), without downloading."""
    source = open_source(resolved.reference, settings)
    overrides = with_preset(overrides or EngineOptions(), resolved.preset)
    plan = plan_deployment(text, source, hardware, overrides, environments)
    return plan, source


def fetch(
    plan: Plan,
    source: ModelSource,
    report: ProgressCallback | None = None,
    redownload: bool = False,
) -> Plan:
    """Download the plan's missing files (all with redownload), verify them, return the plan
    with its model path."""
    if not source.is_hub:
        return plan
    ref = source.reference
    assert isinstance(ref, HubRepo)
    candidate = next(c for c in source.candidates if tuple(f.path for f in c.files) == plan.files)
    files = list(candidate.files)
    missing = files if redownload else source.missing(candidate)
    if missing:
        root = download_files(
            ref.repo_id, ref.revision, missing, source.settings, report, force=redownload
        )
        source.root = root
    if source.root is None:
        raise ModelNotFoundError(
            f"No files of '{ref.repo_id}' are cached.", ErrorCode.MUST_REDOWNLOAD
        )
    check_files(source.root, files, redownload_hint(ref))
    model_path = source.root / candidate.entry if candidate.entry else source.root
    return dataclasses.replace(plan, model_path=str(model_path), download_bytes=0)


def check_files(root: Path, files: list[RemoteFile], hint: str) -> None:
    """Raise MUST_REDOWNLOAD naming the files that are missing or corrupt, and what to do."""
    problems = verify_files(root, files)
    if problems:
        listed = "; ".join(str(p) for p in problems[:3])
        raise ModelNotFoundError(f"{listed}. {hint}", ErrorCode.MUST_REDOWNLOAD)
