"""Engine planning: which engine and files serve a model here, whether it fits, and why."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from kz_jupyter.deploy_options import EngineOptions, deploy_fields
from kz_jupyter.models.companions import CompanionError, Companions, check_companions
from kz_jupyter.models.references import HubRepo
from kz_jupyter.models.shapes import ModelShape
from kz_jupyter.models.sources import Candidate, ModelSource
from kz_jupyter.planning.engine_contract import Engine, load_engines
from kz_jupyter.planning.engine_environments import EngineEnvironments
from kz_jupyter.planning.machine import HardwareProfile
from kz_jupyter.planning.memory import MemoryEstimate, fit_suggestions, human_bytes
from kz_jupyter.planning.plan import Plan
from kz_jupyter.states import ErrorCode

DEFAULT_CONTEXT_LENGTH = 4096
# Models that do not generate text: what they are, and where they answer.
TASK_MODELS = {"embed": "embedding", "rerank": "reranking"}
TASK_ROUTES = {
    "embed": "it is an embedding model: use /v1/embeddings",
    "rerank": "it is a reranking model: use /v1/rerank",
}
# Parallel requests per replica for engines with slots, most first. More slots cost only KV
# cache: the planner takes the most whose estimate leaves half of the free memory to others
# (SLOT_SHARE), else the most that fit at all.
SLOT_LADDER = (8, 4, 2, 1)
SLOT_SHARE = 0.5
# Engine preference per kind of machine (the Kamiwaza rules): vLLM on NVIDIA, MLX on Apple
# Silicon, llama.cpp on CPU; engines from plugins come after these.
PREFERENCE = {
    "nvidia": ("vllm", "llamacpp", "mlx"),
    "apple": ("mlx", "llamacpp", "vllm"),
    "cpu": ("llamacpp", "vllm", "mlx"),
}


class PlanError(ValueError):
    """No workable plan; the message says what to change, `code` is the lifecycle error."""

    def __init__(self, message: str, code: ErrorCode = ErrorCode.RUNTIME_ERROR):
        super().__init__(message)
        self.code = code


def _install_hint(engine: str) -> str:
    """Say how to install an engine."""
    return f"%kz engines install {engine}"


def machine_kind(hardware: HardwareProfile) -> str:
    """'nvidia', 'apple' or 'cpu'."""
    if hardware.gpus:
        return "nvidia"
    return "apple" if hardware.apple_silicon else "cpu"


def _where(hardware: HardwareProfile) -> str:
    """The machine in a few words."""
    kind = machine_kind(hardware)
    if kind == "nvidia":
        return f"{len(hardware.gpus)} NVIDIA GPU(s)"
    return "Apple Silicon" if kind == "apple" else "CPU only"


def rank_engines(
    formats: tuple[str, ...],
    hardware: HardwareProfile,
    engines: dict[str, Engine],
    requested: str | None = None,
    environments: EngineEnvironments | None = None,
    tasks: dict[str, str] | None = None,
) -> tuple[list[tuple[Engine, str, str, str | None]], dict[str, str]]:
    """Engines that can serve one of formats here, best first, and why each other cannot.

    tasks says what the model does in each format ('generate' when absent). Each usable engine
    comes as (engine, format, version, interpreter of its environment).
    """
    tasks = tasks or {}
    environments = environments or EngineEnvironments()
    if requested and requested not in engines:
        known = ", ".join(sorted(engines)) or "none"
        raise PlanError(f"Unknown engine '{requested}'. Known engines: {known}.")
    order = PREFERENCE[machine_kind(hardware)]
    names = sorted(engines, key=lambda n: (order.index(n) if n in order else len(order), n))
    usable, rejected = [], {}
    for name in names:
        engine = engines[name]
        served = [f for f in formats if f in engine.formats]
        if requested and name != requested:
            rejected[name] = f"engine '{requested}' was requested"
            continue
        if not served:
            offered = ", ".join(formats) or "nothing"
            rejected[name] = f"{' and '.join(engine.formats)} only; the model offers {offered}"
            continue
        unserved = [tasks.get(f, "generate") for f in served]
        served = [f for f in served if tasks.get(f, "generate") in engine.tasks]
        if not served:
            rejected[name] = f"serves no {TASK_MODELS.get(unserved[0], 'text')} models"
            continue
        check = engine.check(environments)
        if not check.available:
            rejected[name] = f"not usable here: {check.reason or _install_hint(name)}"
        else:
            usable.append((engine, served[0], check.version, check.program))
    if requested and not usable:
        raise PlanError(
            f"Engine '{requested}' cannot serve this model here: {rejected[requested]}."
        )
    if not usable:
        details = "; ".join(f"{n}: {why}" for n, why in rejected.items()) or "no engines"
        raise PlanError(f"No engine here can serve this model ({details}).")
    for engine, *_ in usable[1:]:
        rejected[engine.name] = f"{usable[0][0].name} is preferred on {_where(hardware)}"
    return usable, rejected


def check_parameters(engine: Engine, overrides: EngineOptions) -> None:
    """Refuse engine parameters the chosen engine does not take, rather than ignore them."""
    flags = {n: o.flag for n, o in deploy_fields().items() if o.engine_parameter}
    refused = [flags[n] for n in overrides.given() if n in flags and n not in engine.parameters]
    if refused:
        takes = ", ".join(flags[n] for n in sorted(engine.parameters)) or "none"
        raise PlanError(
            f"{engine.name} does not take {', '.join(refused)} (it takes: {takes}; engine "
            "arguments go in --arg). For GGUF the quantization is the file's: pick a quant."
        )


def companions_of(engine: Engine, overrides: EngineOptions) -> Companions:
    """The LoRA adapters and draft model the deployment loads, checked for the engine."""
    try:
        return check_companions(overrides.lora_adapters, engine.lora_format, overrides.draft_model)
    except CompanionError as error:
        raise PlanError(str(error)) from None


def estimate_with_companions(
    engine: Engine,
    shape: ModelShape,
    context: int,
    hardware: HardwareProfile,
    parallel: int,
    companions: Companions,
    kv_cache_type: str | None = None,
) -> MemoryEstimate:
    """The engine's estimate for `parallel` requests, plus the draft model (its weights,
    cache and buffers for as many requests) and GGUF adapters, with the KV-cache type."""
    estimate = engine.estimate_memory(shape, context, hardware, parallel)
    if companions.draft is not None:
        draft = engine.estimate_memory(companions.draft.shape, context, hardware, parallel)
        estimate = estimate.with_second_model(draft)
    estimate = dataclasses.replace(estimate, weights=estimate.weights + companions.adapter_bytes)
    return estimate.with_cache_type(kv_cache_type) if kv_cache_type else estimate


def _context_for(shape: ModelShape, requested: int | None) -> int:
    """The context to serve: the requested one within the model's limit, else a default."""
    limit = shape.context_length
    wanted = requested or min(limit or DEFAULT_CONTEXT_LENGTH, DEFAULT_CONTEXT_LENGTH)
    if limit and wanted > limit:
        raise PlanError(
            f"Context length {wanted} exceeds the model's maximum ({limit}): "
            f"use --context {limit} or less."
        )
    return wanted


def slot_choices(engine: Engine, overrides: EngineOptions) -> tuple[int, ...]:
    """Parallel requests to try per replica, most first: the user's number, else as many as
    the engine serves well down to one; 1 for engines without slots."""
    if "parallel" not in engine.parameters:
        return (1,)
    if overrides.parallel:
        return (overrides.parallel,)
    return SLOT_LADDER


def _choose_candidate(
    source: ModelSource,
    engine: Engine,
    fmt: str,
    hardware: HardwareProfile,
    overrides: EngineOptions,
    companions: Companions,
) -> tuple[Candidate, ModelShape, int, int, MemoryEstimate]:
    """The first candidate of fmt (quant ladder order) and the most slots whose estimate fits;
    OOM if none. Returns (candidate, shape, context per request, slots, estimate)."""
    tried = []
    for candidate in (c for c in source.candidates if c.format == fmt):
        shape = source.shape(candidate)
        context = _context_for(shape, overrides.context_length)
        choices = slot_choices(engine, overrides)
        estimates = [
            estimate_with_companions(
                engine, shape, context, hardware, n, companions, overrides.kv_cache_type
            )
            for n in choices
        ]
        modest = [
            (n, e) for n, e in zip(choices, estimates, strict=True)
            if e.fits and e.total <= e.available * SLOT_SHARE
        ]  # fmt: skip
        fitting = [(n, e) for n, e in zip(choices, estimates, strict=True) if e.fits]
        chosen = modest or fitting or ([(choices[0], estimates[0])] if overrides.force else [])
        if chosen:
            slots, estimate = chosen[0]
            return candidate, shape, context, slots, estimate
        tried.append((candidate, shape, context, estimates[-1]))
    candidate, shape, context, estimate = min(tried, key=lambda t: t[3].total)
    labels = ", ".join(f"{c.label} {human_bytes(e.total)}" for c, _, _, e in tried)
    ideas = "; ".join(fit_suggestions(estimate, shape, context))
    raise PlanError(
        f"Will not fit: {estimate.summary()}. Tried {labels}. Try {ideas}.", ErrorCode.OOM
    )


def plan_deployment(
    model: str,
    source: ModelSource,
    hardware: HardwareProfile,
    overrides: EngineOptions | None = None,
    environments: EngineEnvironments | None = None,
) -> Plan:
    """Plan how to serve a model on this hardware: engine, files, context, memory, reasons."""
    overrides = overrides or EngineOptions()
    tasks = {fmt: source.task(fmt) for fmt in source.formats()}
    usable, rejected = rank_engines(
        source.formats(), hardware, load_engines(), overrides.engine, environments, tasks
    )
    engine, fmt, version, program = usable[0]
    check_parameters(engine, overrides)
    companions = companions_of(engine, overrides)
    reason = (
        f"engine '{engine.name}' was requested"
        if overrides.engine
        else f"{fmt} model on {_where(hardware)}: {engine.name} serves {fmt}"
    )
    candidate, shape, context, slots, estimate = _choose_candidate(
        source, engine, fmt, hardware, overrides, companions
    )
    chat_format, can_chat, chat_reason = engine.plan_chat(
        shape.architecture, shape.has_chat_template
    )
    if shape.task in TASK_ROUTES:
        can_chat, chat_reason = False, TASK_ROUTES[shape.task]
    local = source.local_path(candidate)
    ref = source.reference
    return Plan(
        model=model,
        model_path=str(local) if local and not source.missing(candidate) else "",
        format=fmt,
        engine=engine.name,
        engine_reason=reason,
        context_length=context,
        parallel=slots,
        task=shape.task,
        architecture=shape.architecture,
        chat_format=chat_format,
        can_chat=can_chat,
        chat_reason=chat_reason,
        weights_bytes=shape.weights_bytes,
        weights_dtype=shape.dtype,
        replicas=overrides.replicas,
        extra_args=overrides.extra_args,
        source=ref.kind,
        repo_id=ref.repo_id if isinstance(ref, HubRepo) else "",
        revision=ref.revision if isinstance(ref, HubRepo) else None,
        files=tuple(f.path for f in candidate.files),
        entry=candidate.entry,
        variant=candidate.label,
        download_bytes=sum(f.size for f in source.missing(candidate)),
        memory=estimate.to_dict(),
        rejected=rejected,
        forced=overrides.force and not estimate.fits,
        gpu_layers=overrides.gpu_layers,
        dtype=overrides.dtype,
        quantization=overrides.quantization,
        tensor_parallel=overrides.tensor_parallel,
        resources=dict(overrides.resources),
        # An engine that holds the model in GPU memory gets its GPUs from Ray, which then
        # sets CUDA_VISIBLE_DEVICES for it.
        num_gpus=overrides.num_gpus
        or (overrides.tensor_parallel if estimate.device == "GPU" else 0),
        gpu_memory_utilization=overrides.gpu_memory_utilization,
        lora_adapters={n: str(Path(p).expanduser()) for n, p in overrides.lora_adapters.items()},
        lora_rank=companions.lora_rank,
        draft_model_path=companions.draft.path if companions.draft else "",
        kv_cache_type=overrides.kv_cache_type,
        engine_version=version,
        engine_program=program,
    )
