"""The sidebar's TypeScript type of a deploy request, written from the deploy schema:
`python -m kz_jupyter.server_ext.api.typescript_types` rewrites labextension/src/deployRequest.ts
(a test keeps the committed file equal to what this writes)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kz_jupyter.deploy_options import body_schema

TS_FILE = Path("labextension/src/deployRequest.ts")


def typescript_type(schema: dict) -> str:
    """A TypeScript type for a JSON Schema of this API (strings, numbers, booleans, arrays,
    maps, enums, unions)."""
    if "anyOf" in schema or "oneOf" in schema:
        parts = [typescript_type(s) for s in schema.get("anyOf", schema.get("oneOf"))]
        return " | ".join(dict.fromkeys(parts))
    if "enum" in schema:
        return " | ".join(f"'{value}'" for value in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        return f"{typescript_type(schema.get('items', {}))}[]"
    if kind == "object":
        return f"Record<string, {typescript_type(schema.get('additionalProperties', {}))}>"
    return {"string": "string", "integer": "number", "number": "number", "boolean": "boolean",
            "null": "null"}.get(kind, "unknown")  # fmt: skip


def bounds(schema: dict) -> dict[str, float]:
    """A number option's bounds in its schema (minimum, maximum), if any."""
    found: dict[str, float] = {}
    for part in [schema, *schema.get("anyOf", [])]:
        found |= {key: part[key] for key in ("minimum", "maximum") if key in part}
    return found


def deploy_request_module() -> str:
    """The TypeScript module: the IDeployRequest interface, one member per option, and the
    bounds of the number options (so the sidebar's fields check what the server checks)."""
    schema = body_schema()
    members, limits = [], []
    for name, prop in schema["properties"].items():
        optional = "" if name in schema["required"] else "?"
        members.append(f"  {name}{optional}: {typescript_type(prop)};")
        if found := bounds(prop):
            pairs = ", ".join(f"{key}: {json.dumps(value)}" for key, value in found.items())
            limits.append(f"  {name}: {{ {pairs} }},")
    return "\n".join(
        [
            "// Written by `python -m kz_jupyter.server_ext.api.typescript_types` from the deploy",
            "// schema (kz_jupyter/deploy_options.py): do not edit.",
            "",
            "/** A body for `POST /kz/api/deployments` (and /kz/api/plan): null means default. */",
            "export interface IDeployRequest {",
            *members,
            "}",
            "",
            "/** The bounds of each number option, as the server checks them. */",
            "export interface IBounds {",
            "  minimum?: number;",
            "  maximum?: number;",
            "}",
            "",
            "export const DEPLOY_BOUNDS: Record<string, IBounds> = {",
            *limits,
            "};",
            "",
        ]
    )


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else TS_FILE
    path.write_text(deploy_request_module())
