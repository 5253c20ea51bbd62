"""A plan: everything needed to launch a model (engine, files, context, memory, engine
parameters), with the reason behind each choice; the planner makes it, the engines read it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Plan:
    """Everything needed to launch a model, with the reason behind each choice."""

    model: str
    model_path: str
    format: str
    engine: str
    engine_reason: str
    context_length: int  # per request
    parallel: int = 1  # requests each replica serves at once, each with context_length tokens
    task: str = "generate"  # or "embed"
    architecture: str = ""
    chat_format: str | None = None
    can_chat: bool = True
    chat_reason: str = ""
    weights_bytes: int = 0
    weights_dtype: str = ""
    replicas: int = 1
    extra_args: tuple[str, ...] = field(default=())
    source: str = "local"
    repo_id: str = ""
    revision: str | None = None
    files: tuple[str, ...] = field(default=())
    entry: str = ""
    variant: str = ""
    download_bytes: int = 0
    memory: dict = field(default_factory=dict)
    rejected: dict = field(default_factory=dict)
    forced: bool = False
    gpu_layers: int | None = None
    dtype: str | None = None
    quantization: str | None = None
    tensor_parallel: int = 1
    resources: dict = field(default_factory=dict)
    num_gpus: float = 0
    gpu_memory_utilization: float | None = None
    # LoRA adapters served beside the base model: name -> folder or GGUF file, and the
    # largest rank (of PEFT folders).
    lora_adapters: dict = field(default_factory=dict)
    lora_rank: int = 0
    draft_model_path: str = ""  # the GGUF of the speculative-decoding draft, if any
    kv_cache_type: str | None = None
    engine_version: str = ""
    # The interpreter or binary that runs the engine; None: the Python running the replica.
    engine_program: str | None = None

    def to_dict(self) -> dict:
        """Return JSON-ready data."""
        data = dataclasses.asdict(self)
        data["extra_args"] = list(self.extra_args)
        data["files"] = list(self.files)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Plan:
        """Rebuild a plan from `to_dict` output."""
        values = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}
        values["extra_args"] = tuple(values.get("extra_args", ()))
        values["files"] = tuple(values.get("files", ()))
        return cls(**values)
