"""The OpenAPI description matches the routes the extension registers, and is served."""

from __future__ import annotations

import json
import re

from kz_jupyter.server_ext.api.openapi import openapi
from kz_jupyter.server_ext.app import KzApp

METHODS = ("get", "post", "put", "patch", "delete")


def registered() -> set[tuple[str, str]]:
    """(path template, method) for every route and HTTP method the extension serves."""
    app = KzApp()
    app.initialize_handlers()
    routes = set()
    for pattern, handler in app.handlers:
        template = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern.replace("|[^/]+", ""))
        for method in METHODS:
            owner = next(c for c in handler.__mro__ if method in c.__dict__)
            if owner.__module__.startswith("kz_jupyter"):
                routes.add((template, method))
    return routes


def described() -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in openapi()["paths"].items()
        for method in item
        if method in METHODS
    }


def test_the_description_lists_exactly_the_registered_routes():
    routes = registered()
    assert len(routes) == 29  # 24 paths
    assert described() == routes, (described() - routes, routes - described())


def test_the_description_is_valid_openapi():
    from openapi_spec_validator import validate

    validate(openapi())


async def test_it_is_served_with_auth(jp_fetch):
    document = json.loads((await jp_fetch("kz/api/openapi.json")).body)
    assert document["openapi"].startswith("3.1") and "/kz/v1/chat/completions" in document["paths"]
