"""Engine planning: which engine serves a model here, with what settings, and why."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from kz_jupyter.engine_api import Engine, load_engines
from kz_jupyter.gguf_meta import GgufReadError, read_gguf_metadata
from kz_jupyter.hardware import HardwareProfile
from kz_jupyter.model_files import LocatedModel
from kz_jupyter.states import ErrorCode

DEFAULT_CONTEXT_LENGTH = 4096
ENGINE_EXTRAS = {"llamacpp": "llamacpp", "vllm": "vllm", "mlx": "mlx"}


@dataclass(frozen=True)
class Plan:
    """Everything needed to launch a model, with the reason behind each choice."""

    model: str
    model_path: str
    format: str
    engine: str
    engine_reason: str
    context_length: int
    architecture: str = ""
    chat_format: str | None = None
    can_chat: bool = True
    chat_reason: str = ""
    weights_bytes: int = 0
    replicas: int = 1
    extra_args: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        """Return JSON-ready data."""
        data = dataclasses.asdict(self)
        data["extra_args"] = list(self.extra_args)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Plan:
        """Rebuild a plan from `to_dict` output."""
        values = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}
        values["extra_args"] = tuple(values.get("extra_args", ()))
        return cls(**values)


class PlanError(ValueError):
    """No workable plan; the message says what to change, `code` is the lifecycle error."""

    def __init__(self, message: str, code: ErrorCode = ErrorCode.RUNTIME_ERROR):
        super().__init__(message)
        self.code = code


def _install_hint(engine: str) -> str:
    """Say how to install an engine."""
    extra = ENGINE_EXTRAS.get(engine, engine)
    return f"pip install 'kz-jupyter[{extra}]'"


def choose_engine(
    fmt: str, hardware: HardwareProfile, engines: dict[str, Engine], requested: str | None
) -> tuple[Engine, str]:
    """Pick the engine for a model format on this hardware; explain the choice."""
    if requested:
        if requested not in engines:
            known = ", ".join(sorted(engines)) or "none"
            raise PlanError(f"Unknown engine '{requested}'. Known engines: {known}.")
        engine = engines[requested]
        if fmt not in engine.formats:
            raise PlanError(
                f"Engine '{requested}' cannot serve {fmt} models "
                f"(it serves {', '.join(engine.formats)})."
            )
        available, _, reason = engine.availability()
        if not available:
            raise PlanError(f"Engine '{requested}' is not usable here: {reason}.")
        return engine, f"engine '{requested}' was requested"
    candidates = [e for e in engines.values() if fmt in e.formats]
    if not candidates:
        raise PlanError(f"No installed engine serves {fmt} models.")
    usable = [e for e in candidates if e.availability()[0]]
    if not usable:
        names = ", ".join(f"{e.name} ({_install_hint(e.name)})" for e in candidates)
        raise PlanError(f"No engine for {fmt} models is installed here; install one of: {names}.")
    engine = usable[0]
    where = "Apple Silicon" if hardware.apple_silicon else f"{len(hardware.gpus)} NVIDIA GPU(s)"
    if not hardware.gpus and not hardware.apple_silicon:
        where = "CPU only"
    return engine, f"{fmt} model on {where}: {engine.name} serves {fmt}"


def plan_deployment(
    model: str,
    located: LocatedModel,
    hardware: HardwareProfile,
    engine: str | None = None,
    context_length: int | None = None,
    replicas: int = 1,
) -> Plan:
    """Plan how to serve a located model on this hardware."""
    chosen, reason = choose_engine(located.format, hardware, load_engines(), engine)
    architecture, model_context, has_template, weights = "", 0, True, 0
    if located.format == "gguf":
        try:
            meta = read_gguf_metadata(located.path)
        except GgufReadError as error:
            raise PlanError(str(error), ErrorCode.MODEL_LOADING_FAILURE) from None
        architecture, model_context = meta.architecture, meta.context_length
        has_template, weights = meta.has_chat_template, meta.size_bytes
    wanted = context_length or min(model_context or DEFAULT_CONTEXT_LENGTH, DEFAULT_CONTEXT_LENGTH)
    if model_context and wanted > model_context:
        raise PlanError(
            f"Context length {wanted} exceeds the model's maximum ({model_context}): "
            f"use --context {model_context} or less."
        )
    chat_format, can_chat, chat_reason = chosen.plan_chat(architecture, has_template)
    return Plan(
        model=model,
        model_path=str(located.path),
        format=located.format,
        engine=chosen.name,
        engine_reason=reason,
        context_length=wanted,
        architecture=architecture,
        chat_format=chat_format,
        can_chat=can_chat,
        chat_reason=chat_reason,
        weights_bytes=weights,
        replicas=replicas,
    )
