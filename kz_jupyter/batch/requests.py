"""What a batch asks of a deployment: the prompt template filled in for each row, the chat
request it becomes (with a JSON schema as the response format, for structured extraction), and
how an answer is read back (text, or the schema's fields)."""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kz_jupyter.errors import KzError

TEXT_FIELD = "text"  # the placeholder (and result column) of a single value per row


def placeholders(template: str) -> list[str]:
    """The `{name}` fields a template fills in, in order (format specs and `{{` left out)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise KzError(
            f"The prompt template does not parse ({error}): write {{{{ for a {{."
        ) from None
    return [name for _, name, _, _ in parsed if name is not None]


def schema_of(schema: object) -> tuple[str, dict] | None:
    """(name, JSON schema) of a pydantic model class or a JSON schema dict; None for none."""
    if schema is None:
        return None
    if isinstance(schema, Mapping):
        return str(schema.get("title") or "fields"), dict(schema)
    json_schema = getattr(schema, "model_json_schema", None)
    if callable(json_schema):
        return schema.__name__, json_schema()
    raise KzError(
        f"schema={schema!r}: give a pydantic model class or a JSON schema dict "
        '(for example {"type": "object", "properties": {"label": {"type": "string"}}}).'
    )


@dataclass(frozen=True)
class BatchSpec:
    """One batch's request, the same for every row but for the filled-in template."""

    deployment: str
    template: str
    system: str | None = None
    schema: object = None
    parameters: dict[str, Any] = field(default_factory=dict)  # max_tokens, temperature, ...

    def prompt(self, row: Mapping[str, Any]) -> str:
        """The template filled in with a row's values."""
        missing = [name for name in placeholders(self.template) if name not in row]
        if missing:
            raise KzError(
                f"The prompt template names {{{missing[0]}}}, which the rows do not have "
                f"(they have: {', '.join(map(str, row)) or 'nothing'})."
            )
        return self.template.format_map(row)

    def body(self, prompt: str) -> dict:
        """The chat completion request for one row's prompt."""
        messages = [{"role": "system", "content": self.system}] if self.system else []
        body = {"model": self.deployment, "messages": [*messages,
                {"role": "user", "content": prompt}], **self.parameters}  # fmt: skip
        named = schema_of(self.schema)
        if named is not None:
            name, json_schema = named
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": json_schema, "strict": True},
            }
        return body

    def fields(self) -> list[str]:
        """The result columns: the schema's properties, or the answer's text."""
        named = schema_of(self.schema)
        if named is None:
            return [TEXT_FIELD]
        return list(named[1].get("properties") or {}) or ["value"]

    def read(self, text: str) -> dict[str, Any]:
        """An answer's values by result column; ValueError when it does not fit the schema."""
        if self.schema is None:
            return {TEXT_FIELD: text}
        validate = getattr(self.schema, "model_validate_json", None)
        if callable(validate):
            return validate(text).model_dump()  # pydantic's ValidationError is a ValueError
        import jsonschema  # only schema batches given as dicts need it

        value = json.loads(text)
        try:
            jsonschema.validate(value, self.schema)
        except jsonschema.ValidationError as error:
            raise ValueError(error.message) from None
        return value if isinstance(value, dict) else {"value": value}
