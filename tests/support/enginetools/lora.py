"""A small PEFT LoRA adapter for SmolLM2, written offline (numpy + safetensors)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file


def write_lora_adapter(base: Path, destination: Path, rank: int = 8, seed: int = 0) -> Path:
    """Write a LoRA adapter on q_proj and v_proj of every layer of the model in base.

    The B matrices are small random values, so the adapter changes the answers a little: a real
    adapter for the engine to load and apply, not a copy of the base model.
    """
    config = json.loads((base / "config.json").read_text())
    hidden, layers = config["hidden_size"], config["num_hidden_layers"]
    head_dim = config.get("head_dim") or hidden // config["num_attention_heads"]
    outputs = {
        "q_proj": config["num_attention_heads"] * head_dim,
        "v_proj": config["num_key_value_heads"] * head_dim,
    }
    random = np.random.default_rng(seed)
    tensors = {}
    for layer in range(layers):
        for module, out in outputs.items():
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            tensors[f"{prefix}.lora_A.weight"] = random.normal(0, 0.02, (rank, hidden)).astype(
                np.float32
            )
            tensors[f"{prefix}.lora_B.weight"] = random.normal(0, 0.02, (out, rank)).astype(
                np.float32
            )
    destination.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(destination / "adapter_model.safetensors"))
    (destination / "adapter_config.json").write_text(
        json.dumps(
            {
                "peft_type": "LORA",
                "task_type": "CAUSAL_LM",
                "base_model_name_or_path": str(base),
                "r": rank,
                "lora_alpha": 2 * rank,
                "lora_dropout": 0.0,
                "target_modules": sorted(outputs),
                "bias": "none",
                "fan_in_fan_out": False,
                "modules_to_save": None,
            },
            indent=2,
        )
    )
    return destination
