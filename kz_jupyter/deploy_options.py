"""The deploy options, written once: one pydantic model from which `%kz plan/deploy`'s flags and
help, the REST API's validation (bounds and messages), the OpenAPI description and the
sidebar's TypeScript types are all derived. `null` (or leaving an option out) means its default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic.fields import FieldInfo

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
MAX_MODEL_TEXT = 4096  # longer than any path or repo id; a longer text is refused whole
EVERYONE = "*"
NOT_AN_OBJECT = 'The body must be a JSON object like {"model": "smollm2"}.'
# Bytes per cached value of the KV-cache types llama.cpp takes: quantized types store blocks
# of 32 values with an f16 scale (and an f16 minimum for q4_1 and q5_1).
KV_CACHE_TYPES = {
    "f32": 4.0, "f16": 2.0, "bf16": 2.0, "q8_0": 34 / 32, "q5_1": 24 / 32, "q5_0": 22 / 32,
    "q4_1": 20 / 32, "q4_0": 18 / 32, "iq4_nl": 18 / 32,
}  # fmt: skip


@dataclass(frozen=True)
class Option:
    """How one deploy option is typed and explained: its `%kz` flag (None: REST only), what a
    valid value is (the error messages say it), the flag's metavar and help, whether the flag
    repeats (a list, or NAME=VALUE pairs for a mapping) and whether only deploy takes it."""

    must: str
    flag: str | None = None
    metavar: str | None = None
    help: str = ""
    repeat: bool = False
    deploy_only: bool = False
    pair_default: str = ""  # the VALUE of a NAME=VALUE pair given as NAME alone
    engine_parameter: bool = False  # an engine takes it only when it says so (Engine.parameters)


class DeployOptionError(ValueError):
    """A deploy option that is not valid; the message names it as the user wrote it."""


def parse_share(value: object) -> tuple[str, ...]:
    """'private', 'all', 'group:NAME' (or a list of groups) -> who it is shared with:
    () private, ('*',) everyone, else group names. ValueError saying the forms otherwise."""
    items = value if isinstance(value, list | tuple) else [value]
    shared: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(item)
        item = item.strip()
        if item == "private":
            continue
        if item == "all":
            shared.append(EVERYONE)
        elif item.startswith("group:") and item[6:].strip():
            shared.append(item[6:].strip())
        else:
            raise ValueError(item)
    return tuple(dict.fromkeys(shared))


def visibility(shared_with: list[str] | tuple[str, ...]) -> str:
    """How a deployment is shared, in the form `--share` takes."""
    if not shared_with:
        return "private"
    if EVERYONE in shared_with:
        return "all"
    return ",".join(f"group:{group}" for group in shared_with)


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN.pattern)]
KvCacheType = Literal[tuple(KV_CACHE_TYPES)]
ADAPTERS_SCHEMA = {
    "type": "object",
    "propertyNames": {"pattern": NAME_PATTERN.pattern},
    "additionalProperties": {"type": "string", "minLength": 1},
}
SHARE_SCHEMA = {
    "oneOf": [
        {"type": "string", "pattern": r"^\s*(private|all|group:.*\S)\s*$"},
        {"type": "array", "items": {"type": "string", "pattern": r"^group:.*\S"}},
    ]
}


def option_of(field: FieldInfo) -> Option:
    """The Option of a deploy field."""
    return next(m for m in field.metadata if isinstance(m, Option))


def _integer(low: int, high: int) -> str:
    """What an integer option must be."""
    return f"an integer from {low} to {high}"


class EngineOptions(BaseModel):
    """What a user may set instead of the planner: engine, context and engine parameters."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    engine: Annotated[
        Text | None,
        Option("a string such as 'llamacpp'", "--engine", "E", "llamacpp, vllm, mlx or a plugin"),
    ] = None
    context_length: Annotated[
        int | None,
        Field(ge=64, le=1_048_576),
        Option(_integer(64, 1_048_576), "--context", "N", "tokens per request"),
    ] = None
    replicas: Annotated[
        int,
        Field(ge=1, le=16),
        Option(_integer(1, 16), "--replicas", "N", "copies of the engine, requests spread"),
    ] = 1
    gpu_layers: Annotated[
        int | None,
        Field(ge=-1, le=100_000),
        Option(
            _integer(-1, 100_000),
            "--gpu-layers",
            "N",
            "layers on the GPU (-1: all)",
            engine_parameter=True,
        ),
    ] = None
    # Requests served at once by each replica (llama.cpp's slots); None: as many as fit.
    parallel: Annotated[
        int | None,
        Field(ge=1, le=256),
        Option(
            _integer(1, 256),
            "--parallel",
            "N",
            "requests each replica serves at once",
            engine_parameter=True,
        ),
    ] = None
    dtype: Annotated[
        Text | None,
        Option(
            "a string such as 'bfloat16'",
            "--dtype",
            "D",
            "vLLM's weight type",
            engine_parameter=True,
        ),
    ] = None
    quantization: Annotated[
        Text | None,
        Option(
            "a string such as 'awq'",
            "--quantization",
            "Q",
            "vLLM's quantization method",
            engine_parameter=True,
        ),
    ] = None
    tensor_parallel: Annotated[
        int,
        Field(ge=1, le=64),
        Option(
            _integer(1, 64),
            "--tensor-parallel",
            "N",
            "GPUs one replica spans (vLLM)",
            engine_parameter=True,
        ),
    ] = 1
    gpu_memory_utilization: Annotated[
        float | None,
        Field(gt=0, le=1),
        Option(
            "a fraction of GPU memory above 0 and at most 1, like 0.85",
            "--gpu-memory-utilization", "F", "vLLM's share of GPU memory",
            engine_parameter=True,
        ),
    ] = None  # fmt: skip
    lora_adapters: Annotated[
        dict[Name, Text],
        WithJsonSchema(ADAPTERS_SCHEMA),
        Option(
            "a map of adapter names (lowercase letters, digits, '.', '_', '-') to adapter "
            'folders, like {"french": "/models/french-lora"}',
            "--lora", "NAME=PATH",
            "PEFT folder (vllm) or GGUF (llamacpp): chat as NAME/ADAPTER",
            repeat=True, engine_parameter=True,
        ),
    ] = {}  # fmt: skip
    draft_model: Annotated[
        Text | None,
        Option(
            "a string such as '/models/draft-Q8_0.gguf'",
            "--draft", "MODEL", "a smaller GGUF of the family drafts tokens",
            engine_parameter=True,
        ),
    ] = None  # fmt: skip
    kv_cache_type: Annotated[
        KvCacheType | None,
        Option(
            f"one of {', '.join(KV_CACHE_TYPES)} (q8_0 halves the cache, q4_0 quarters it)",
            "--kv-cache-type", "TYPE", "the KV cache's type (default f16)",
            engine_parameter=True,
        ),
    ] = None  # fmt: skip
    extra_args: Annotated[
        tuple[str, ...],
        Field(strict=False),
        Option(
            "a list of strings like ['--seed', '1']",
            "--arg", "ENGINE_ARG", "passed to the engine as is", repeat=True,
        ),
    ] = ()  # fmt: skip
    force: Annotated[
        bool, Option("true or false", "--force", help="deploy even when it will not fit")
    ] = False
    resources: Annotated[
        dict[str, Annotated[float, Field(gt=0)]],
        Option(
            'a map of Ray resource names to positive amounts, like {"gpu_node": 1}',
            "--resource", "NAME=AMOUNT", "a Ray resource each replica needs",
            repeat=True, pair_default="1",
        ),
    ] = {}  # fmt: skip
    num_gpus: Annotated[
        float,
        Field(ge=0),
        Option("a number of GPUs, 0 or more", "--gpus", "N", "GPUs each replica needs from Ray"),
    ] = 0

    @model_validator(mode="before")
    @classmethod
    def _null_is_default(cls, data: Any) -> Any:
        """An option sent as null takes its default."""
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data

    def given(self) -> dict[str, Any]:
        """The engine options set to something other than their default."""
        defaults = EngineOptions()
        names = EngineOptions.model_fields
        return {n: getattr(self, n) for n in names if getattr(self, n) != getattr(defaults, n)}


class DeployOptions(EngineOptions):
    """A whole deploy (or plan, or pull) request: the model, its name and who may use it, and
    the engine options."""

    model: Annotated[
        str,
        Field(min_length=1, max_length=MAX_MODEL_TEXT, description="path, pip model or repo id"),
        StringConstraints(strip_whitespace=True),
        Option("a local path, pip-shipped model or repo id"),
    ]
    name: Annotated[
        Name | None,
        Option(
            "lowercase letters, digits, '.', '_' or '-' (at most 63 characters, starting with a "
            "letter or digit)",
            "--name", "N", "its name (default: from the model)", deploy_only=True,
        ),
    ] = None  # fmt: skip
    revision: Annotated[
        Text | None, Option("a string such as 'main'", "--revision", "R", "a Hub revision")
    ] = None
    keep_alive: Annotated[
        int | None,
        Field(ge=-1, le=30 * 86400),
        Option(
            _integer(-1, 30 * 86400), "--keep-alive", "S",
            "unload after S idle seconds (-1: never)",
            deploy_only=True,
        ),
    ] = None  # fmt: skip
    pin: Annotated[
        bool,
        Option(
            "true or false", "--pin", help="never unload it to make room for another deployment",
            deploy_only=True,
        ),
    ] = False  # fmt: skip
    share: Annotated[
        Any,
        AfterValidator(parse_share),
        WithJsonSchema(SHARE_SCHEMA),
        Option(
            "'private', 'all' or 'group:NAME' (or a list of 'group:NAME')",
            "--share", "all|private|group:NAME", "in JupyterHub, who else sees and uses it",
            repeat=True, deploy_only=True,
        ),
    ] = ()  # fmt: skip

    def to_body(self) -> dict:
        """The request as a POST body (what is kept to deploy it again after a restart)."""
        body = self.model_dump(mode="json", exclude_none=True)
        return body | {"share": visibility(self.share).split(",")}


def deploy_fields(command: str = "deploy") -> dict[str, Option]:
    """The options `%kz <command>` takes as flags, by field name, in the schema's order."""
    fields = DeployOptions.model_fields.items()
    options = {name: option_of(field) for name, field in fields}
    return {
        name: option
        for name, option in options.items()
        if option.flag and (command == "deploy" or not option.deploy_only)
    }


def option_type(name: str) -> Any:
    """The type annotation of the deploy option called name."""
    return DeployOptions.model_fields[name].annotation


def invalid_name(name: object) -> str:
    """Why a deployment name is refused, and what a valid one is."""
    must = option_of(DeployOptions.model_fields["name"]).must
    return f"Invalid deployment name {name!r}: use {must}."


def first_error(error: ValidationError, flags: bool = False) -> str:
    """One sentence for the first problem of a validation error, naming the option as the user
    wrote it: its flag when flags, else its REST key in quotes."""
    problem = error.errors()[0]
    name = str(problem["loc"][0]) if problem["loc"] else ""
    field = DeployOptions.model_fields.get(name)
    if field is None:
        return NOT_AN_OBJECT
    option = option_of(field)
    said = option.flag if flags and option.flag else f"'{name}'"
    blank = problem["loc"] == ("model",) and not str(problem["input"]).strip()
    if problem["type"] == "missing" or blank:
        return f"{said} is required: {option.must}."
    if problem["type"] == "string_too_long":
        return (
            f"{said} is {len(problem['input'])} characters long (at most {MAX_MODEL_TEXT}): "
            f"give {option.must}."
        )
    if name == "name":
        return invalid_name(problem["input"])
    return f"{said} must be {option.must}."


def validate_options(body: object, flags: bool = False) -> DeployOptions:
    """Validate a deploy request into DeployOptions, or raise DeployOptionError with one
    sentence that names the option as the user wrote it (the flag when flags, else the key)."""
    if not isinstance(body, dict):
        raise DeployOptionError(NOT_AN_OBJECT)
    try:
        return DeployOptions.model_validate(body)
    except ValidationError as error:
        raise DeployOptionError(first_error(error, flags)) from None


def validate_share(value: object) -> tuple[str, ...]:
    """Who a deployment is shared with, from a 'share' value; DeployOptionError if it is not
    one of the forms."""
    try:
        return parse_share(value)
    except ValueError:
        must = option_of(DeployOptions.model_fields["share"]).must
        raise DeployOptionError(f"'share' must be {must}.") from None


def body_schema() -> dict:
    """The JSON Schema (2020-12, as OpenAPI 3.1 takes it) of a deploy request body: every
    option may also be null (its default)."""
    schema = DeployOptions.model_json_schema()
    properties = {}
    required_first = sorted(schema["properties"].items(), key=lambda item: item[0] != "model")
    for name, prop in required_first:
        prop = {k: v for k, v in prop.items() if k not in ("title", "default", "x-kz-flag")}
        options = prop.pop("anyOf", [prop])
        options = [o for o in options if o.get("type") != "null"]
        prop = {k: v for k, v in prop.items() if k == "description"}
        if name == "model":
            properties[name] = options[0] | prop
        else:
            properties[name] = {"anyOf": [*options, {"type": "null"}]} | prop
    return {"type": "object", "required": ["model"], "properties": properties}
