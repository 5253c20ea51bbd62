"""From what a user typed to files on disk: resolve (presets too), plan, download, verify."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from kz_jupyter.engine_envs import EngineEnvironments
from kz_jupyter.hardware import HardwareProfile
from kz_jupyter.hub import HubSettings, ProgressCallback, RemoteFile, download_files
from kz_jupyter.model_files import ModelNotFoundError
from kz_jupyter.model_sources import ModelSource, open_source, redownload_hint
from kz_jupyter.planner import Overrides, Plan, plan_deployment
from kz_jupyter.presets import Preset, find_preset
from kz_jupyter.references import HubRepo, ModelReference, parse_reference
from kz_jupyter.states import ErrorCode
from kz_jupyter.verify import verify_files


def resolve(text: str, revision: str | None = None) -> tuple[ModelReference, Preset | None]:
    """Parse a model reference; a preset name resolves to its model."""
    preset = find_preset(text)
    return parse_reference(preset.model if preset else text, revision), preset


def with_preset(overrides: Overrides, preset: Preset | None) -> Overrides:
    """Fill what the user left unset from the preset's defaults."""
    if preset is None:
        return overrides
    return dataclasses.replace(
        overrides,
        engine=overrides.engine or preset.engine,
        context_length=overrides.context_length or preset.context_length,
        extra_args=overrides.extra_args or preset.extra_args,
    )


def prepare(
    text: str,
    hardware: HardwareProfile,
    settings: HubSettings,
    overrides: Overrides | None = None,
    revision: str | None = None,
    environments: EngineEnvironments | None = None,
) -> tuple[Plan, ModelSource]:
    """Resolve and plan without downloading weights (Hub headers are read by ranged reads)."""
    reference, preset = resolve(text, revision)
    source = open_source(reference, settings)
    overrides = with_preset(overrides or Overrides(), preset)
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
