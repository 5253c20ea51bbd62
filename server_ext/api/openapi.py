"""The OpenAPI 3.1 description of kz-jupyter's REST API and OpenAI-compatible proxy, served at
GET /kz/api/openapi.json (a test keeps it equal to the registered routes)."""

from __future__ import annotations

import json

from jupyter_server.auth.decorator import authorized
from tornado import web

from kz_jupyter.deploy_options import body_schema
from kz_jupyter.server_ext.api.base import KzAPIHandler

OBJECT = {"type": "object", "additionalProperties": True}
LIST = {"type": "array", "items": OBJECT}
TEXT = {"type": "string"}
NUMBER = "^[0-9]+$"
SECONDS = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"}
ERROR = {"$ref": "#/components/schemas/Error"}
OPENAI_ERROR = {"$ref": "#/components/schemas/OpenAIError"}


def answers(*codes: int, ok: dict = OBJECT, openai: bool = False) -> dict:
    """The responses of an operation: ok's JSON on success, an error body otherwise; 403 (no
    or a wrong token, or no XSRF token with a cookie) on every operation."""
    error = OPENAI_ERROR if openai else ERROR
    table = {}
    for code in sorted({*codes, 403}):
        schema = ok if code < 400 else error
        if code == 403 and openai:  # Jupyter's own auth refusal comes first
            schema = {"anyOf": [OPENAI_ERROR, ERROR]}
        text = "success" if code < 400 else "refused, with a message that says what to do"
        table[str(code)] = {"description": text,
                            "content": {"application/json": {"schema": schema}}}  # fmt: skip
    return table


def query(name: str, schema: dict, text: str) -> dict:
    """A query parameter."""
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": text}


SPAN_QUERY = [
    query("span", SECONDS, "seconds of series to answer (30-600, default 300)"),
    query("step", SECONDS, "seconds per point of the series (1-60, default 10)"),
]


def path_name(name: str = "name") -> dict:
    """The NAME path parameter."""
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def body(schema: dict, required: bool = True) -> dict:
    """A JSON request body."""
    return {"required": required, "content": {"application/json": {"schema": schema}}}


BOOLEAN_TEXT = {"type": "string", "enum": ["true", "false", "1", "0", "yes", "no"]}
CHAT = {
    "type": "object",
    "required": ["model"],
    "additionalProperties": True,
    "properties": {
        "model": {"type": "string"},
        "messages": {"type": "array"},
        "stream": {"type": "boolean"},
        "max_tokens": {"type": "integer"},
    },
}


def paths() -> dict:
    """Every route and method, the deploy body as the deploy schema describes it."""
    deploy = body_schema()
    return {
        "/kz/api/openapi.json": {"get": {"summary": "This description", "responses": answers(200)}},
        "/kz/api/deployments": {
            "get": {
                "summary": "The deployments this user can see",
                "responses": answers(200, ok=LIST),
            },
            "post": {
                "summary": "Deploy a model",
                "requestBody": body(deploy),
                "responses": answers(202, 400, 409),
            },
        },
        "/kz/api/deployments/{name}": {
            "parameters": [path_name()],
            "get": {"summary": "One deployment", "responses": answers(200, 404)},
            "patch": {
                "summary": "Share it",
                "responses": answers(200, 400, 404),
                "requestBody": body(
                    {
                        "type": "object",
                        "required": ["share"],
                        "properties": {"share": deploy["properties"]["share"]},
                    }
                ),
            },
            "delete": {
                "summary": "Stop it (its record stays, STOPPED, with its history)",
                "responses": answers(200, 400, 404),
                "parameters": [query("forget", BOOLEAN_TEXT, "also remove its record")],
            },
        },
        "/kz/api/deployments/{name}/logs": {
            "parameters": [path_name()],
            "get": {
                "summary": "Its engine logs",
                "responses": {
                    **answers(200, 400, 404),
                    "200": {
                        "description": "the lines; with follow, NDJSON events until it stops",
                        "content": {
                            "application/json": {"schema": OBJECT},
                            "application/x-ndjson": {"schema": {"type": "string"}},
                        },
                    },  # fmt: skip
                },
                "parameters": [
                    query("lines", {"type": "string", "pattern": NUMBER}, "how many"),
                    query("follow", BOOLEAN_TEXT, "stream new lines (NDJSON)"),
                ],
            },
        },
        "/kz/api/deployments/{name}/restart": {
            "parameters": [path_name()],
            "post": {"summary": "Restart it", "responses": answers(202, 404, 409)},
        },
        "/kz/api/hardware": {
            "get": {
                "summary": "CPU, RAM, GPUs, engines",
                "responses": answers(200, 400),
                "parameters": [query("engines", BOOLEAN_TEXT, "also probe the engines")],
            },
        },
        "/kz/api/audit": {
            "get": {
                "summary": "The audit log (admins)",
                "responses": answers(200, 400, ok=LIST),
                "parameters": [
                    query("limit", {"type": "string", "pattern": NUMBER}, "lines"),
                    query("user", {"type": "string"}, "one user's actions"),
                ],
            },
        },
        "/kz/api/search": {
            "get": {
                "summary": "Search models",
                "responses": answers(200, 400, 502),
                "parameters": [
                    query("q", {"type": "string", "maxLength": 200}, "text (none: all here)")
                ],
            },
        },
        "/kz/api/plan": {
            "post": {
                "summary": "Plan a deployment without starting it",
                "requestBody": body(deploy),
                "responses": answers(200, 400, 404, 422, 503),
            },
        },
        "/kz/api/pulls": {
            "get": {"summary": "Downloads", "responses": answers(200, ok=LIST)},
            "post": {
                "summary": "Download a model",
                "requestBody": body(
                    {
                        **deploy,
                        "properties": {
                            **deploy["properties"],
                            "redownload": {"type": "boolean"},
                        },
                    }
                ),
                "responses": answers(202, 400),
            },
        },
        "/kz/api/pulls/{job_id}": {
            "parameters": [path_name("job_id") | {"schema": {"type": "string", "pattern": NUMBER}}],
            "get": {"summary": "One download", "responses": answers(200, 404)},
        },
        "/kz/api/models": {"get": {"summary": "Cached models", "responses": answers(200, ok=LIST)}},
        "/kz/api/models/{name}": {
            "parameters": [path_name()],
            "delete": {
                "summary": "Delete a cached model (admins)",
                "responses": answers(200, 400, 404, 409),
                "parameters": [query("dry_run", BOOLEAN_TEXT, "only say what would go")],
            },
        },
        "/kz/api/engines": {
            "get": {"summary": "Engines, usable or not", "responses": answers(200, ok=LIST)}
        },
        "/kz/api/engines/{name}/install": {
            "parameters": [path_name()],
            "get": {"summary": "The latest installation", "responses": answers(200, 404)},
            "post": {"summary": "Install it (admins)", "responses": answers(202, 404, 409)},
        },
        "/kz/v1/models": {
            "get": {"summary": "OpenAI: models", "responses": answers(200, openai=True)}
        },
        "/kz/api/stats": {
            "get": {
                "summary": "Figures of the deployments you see, now and per step (panels)",
                "responses": answers(200, 400),
                "parameters": SPAN_QUERY,
            },
        },
        "/kz/api/stats/{name}": {
            "parameters": [path_name()],
            "get": {
                "summary": "One deployment's figures",
                "responses": answers(200, 400, 404),
                "parameters": SPAN_QUERY,
            },
        },
        "/kz/api/usage": {
            "get": {
                "summary": "Requests and tokens per user and deployment (admins: every user)",
                "responses": answers(200),
            },
        },
        "/kz/metrics": {
            "get": {
                "summary": "The proxy's metrics in Prometheus' text format (also to the scrape "
                "token, Authorization: Bearer TOKEN)",
                "responses": answers(200)
                | {"200": {"description": "success", "content": {"text/plain": {"schema": TEXT}}}},
            }
        },
        "/kz/v1/chat/completions": {
            "post": {
                "summary": "OpenAI: chat",
                "requestBody": body(CHAT),
                "responses": answers(200, 400, 404, 429, 502, 503, openai=True),
            },
        },
        "/kz/v1/completions": {
            "post": {
                "summary": "OpenAI: completions",
                "requestBody": body(CHAT),
                "responses": answers(200, 400, 404, 429, 502, 503, openai=True),
            },
        },
        "/kz/v1/embeddings": {
            "post": {
                "summary": "OpenAI: embeddings",
                "requestBody": body(CHAT),
                "responses": answers(200, 400, 404, 429, 502, 503, openai=True),
            },
        },
        "/kz/v1/rerank": {
            "post": {
                "summary": "Rerank documents for a query (Jina/Cohere form) with a reranker GGUF",
                "requestBody": body(CHAT),
                "responses": answers(200, 400, 404, 429, 502, 503, openai=True),
            },
        },
    }


def openapi(base_url: str = "/") -> dict:
    """The OpenAPI document, its server at base_url."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "kz-jupyter",
            "version": "1",
            "description": "Deploy, watch and use local LLMs from Jupyter.",
        },  # fmt: skip
        "servers": [{"url": base_url.rstrip("/") or "/"}],
        "security": [{"token": []}],
        "paths": paths(),
        "components": {
            "securitySchemes": {
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`token <Jupyter or JupyterHub API token>`",
                },  # fmt: skip
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["message"],
                    "properties": {
                        "message": {"type": "string"},
                        "reason": {"type": ["string", "null"]},
                    },
                },  # fmt: skip
                "OpenAIError": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["message"],
                            "properties": {"message": {"type": "string"}},
                        }
                    },
                },  # fmt: skip
            },
        },
    }


class OpenAPIHandler(KzAPIHandler):
    """GET /kz/api/openapi.json: this API's OpenAPI description."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """The document, its server at this server's base URL."""
        self.finish(json.dumps(openapi(self.base_url)))


OPENAPI_HANDLERS = [(r"/kz/api/openapi.json", OpenAPIHandler)]
