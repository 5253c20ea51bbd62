"""Presets: the shipped catalog parses, names resolve, user values win over preset defaults."""

from __future__ import annotations

import pytest

from kz_jupyter.deploy_options import EngineOptions
from kz_jupyter.models.presets import PresetError, builtin_presets, parse_presets
from kz_jupyter.models.references import HubRepo, PipShippedModel
from kz_jupyter.planning.provisioning import resolve, with_preset


def test_shipped_presets_parse_and_include_the_offline_model():
    presets = builtin_presets()
    assert presets["smollm2"].engine == "llamacpp" and presets["smollm2"].context_length == 4096
    assert all(p.description for p in presets.values())


def test_a_preset_name_resolves_to_its_model():
    reference, preset = resolve("smollm2")
    assert isinstance(reference, PipShippedModel) and preset.name == "smollm2"
    reference, preset = resolve("gemma3-270m-it")
    assert isinstance(reference, HubRepo) and reference.quant == "Q8_0"


def test_user_values_override_preset_defaults():
    preset = builtin_presets()["smollm2"]
    merged = with_preset(EngineOptions(context_length=1024), preset)
    assert (merged.context_length, merged.engine) == (1024, "llamacpp")
    assert with_preset(EngineOptions(), preset).context_length == 4096


def test_a_bad_preset_file_is_refused_with_the_reason():
    with pytest.raises(PresetError, match="needs 'model'"):
        parse_presets('[broken]\ndescription = "x"\n')
    with pytest.raises(PresetError, match="unknown keys \\['gpu'\\]"):
        parse_presets('[x]\nmodel = "m"\ngpu = 1\n')
