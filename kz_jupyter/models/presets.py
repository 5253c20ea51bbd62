"""Presets: known-good models with default engine parameters (models/presets.toml)."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from importlib.resources import files

PRESET_KEYS = {"model", "description", "engine", "context_length", "extra_args"}


class PresetError(ValueError):
    """A preset file entry that cannot be used."""


@dataclass(frozen=True)
class Preset:
    """A named model with the parameters it deploys with unless the user says otherwise."""

    name: str
    model: str
    description: str = ""
    engine: str | None = None
    context_length: int | None = None
    extra_args: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        """Return JSON-ready data."""
        return {
            "name": self.name,
            "model": self.model,
            "description": self.description,
            "engine": self.engine,
            "context_length": self.context_length,
            "extra_args": list(self.extra_args),
        }


def parse_presets(text: str) -> dict[str, Preset]:
    """Parse a presets TOML document."""
    presets = {}
    for name, values in tomllib.loads(text).items():
        unknown = set(values) - PRESET_KEYS
        if unknown or "model" not in values:
            raise PresetError(f"Preset '{name}': needs 'model'; unknown keys {sorted(unknown)}.")
        presets[name] = Preset(
            name=name,
            model=values["model"],
            description=values.get("description", ""),
            engine=values.get("engine"),
            context_length=values.get("context_length"),
            extra_args=tuple(values.get("extra_args", ())),
        )
    return presets


@functools.lru_cache(maxsize=1)
def builtin_presets() -> dict[str, Preset]:
    """The presets shipped with kz-jupyter."""
    return parse_presets(files("kz_jupyter.models").joinpath("presets.toml").read_text())


def find_preset(name: str) -> Preset | None:
    """The preset called name, if there is one."""
    return builtin_presets().get(name.strip())
